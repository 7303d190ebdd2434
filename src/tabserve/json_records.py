"""The JSON shapes a file (or a ``--data`` string) of records may take, as a list of records.

One object is one record; an array is the records; an object of equal-length arrays is columns
(``{"Age": [22, 38], "Sex": ["male", "female"]}``), as pandas' ``to_json(orient="list")`` and
many hand-made files write them. Used by ``tabserve predict --data`` and ``tabserve feedback
FILE`` alike, so both read the same files the same way; each turns the ValueError into its own
one-line message.
"""

from __future__ import annotations

from typing import Any


def records_from_json(value: Any) -> list[Any]:
    """The records in a decoded JSON value; ValueError for a shape that holds none."""
    if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        if len({len(v) for v in value.values()}) != 1:
            raise ValueError("columnar JSON needs lists of one length")
        keys = list(value)
        return [dict(zip(keys, row, strict=True)) for row in zip(*value.values(), strict=True)]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise ValueError("JSON must be an object, an array of objects, or {column: [values]}")
