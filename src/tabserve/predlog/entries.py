"""Log entries (one per request, on the wire) and rows (one per record, in the database).

The serving process turns a request into one JSON line, ``encode_entry``: the inputs *as the
client sent them* (its records, or its columns for v2), the predictions, the probabilities.
That costs the request path one orjson call in C and nothing per record. The writer process
turns entries into rows, ``rows_of``, in store.COLUMNS order: ``inputs`` / ``probabilities`` as
dicts, ``ts`` in epoch seconds.

An entry line is a JSON array:
    [n_rows, ts, request_id, client_request_id, model, version, inputs, predictions,
     probabilities, classes, latency_ms, status]
``inputs`` is a list of n_rows records ({feature: value}) or {feature: [n_rows values]}.
``n_rows`` comes first so the writer can queue the line as bytes, reading only its row count
(``row_count``), and parse it when it stores it: a queued line costs its bytes, not a tree of
Python objects ten times their size.

Why inputs as received, not as validated: the log is a record of what came in. Validation's
columns are the model's encoding (a missing category is "", a boolean is 1.0); another tool
reading the log would take "" for a category of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

Row = list[Any]
# The longest X-Request-ID a client may send (longer ones are a 400 at the server): the
# prediction log keeps it in a column of this width.
CLIENT_ID_MAX = 200
KEYS = (
    "request_id", "record_index", "ts", "model_name", "model_version",
    "inputs", "prediction", "probabilities", "latency_ms", "status", "client_request_id",
)  # fmt: skip
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    """What orjson cannot write natively: object arrays (strings), numpy scalars. (numpy is
    imported here, not at the top: the writer process reads entries and never needs it.)"""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot log a value of type {type(value).__name__}")


def encode_entry(
    request_id: str,
    client_request_id: str | None,
    model: str,
    version: str,
    n_rows: int,
    inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    predictions: Any,
    probabilities: Any = None,
    classes: Sequence[Any] | None = None,
    latency_ms: float | None = None,
    status: str = "ok",
) -> bytes:
    """One request as one JSON line (see the module docstring)."""
    entry = [
        n_rows, time.time(), request_id, client_request_id, model, version, inputs,
        predictions, probabilities, classes, latency_ms, status,
    ]  # fmt: skip
    return orjson.dumps(entry, default=_default, option=_OPTIONS) + b"\n"


def row_count(line: bytes) -> int:
    """The ``n_rows`` of an entry line without parsing the rest; ValueError if it has none."""
    if not line.startswith(b"["):
        raise ValueError("not an entry line")
    end = line.find(b",", 1, 32)
    n = int(line[1:end]) if end > 0 else -1
    if n < 1:
        raise ValueError("not an entry line")
    return n


def _flat(values: Any) -> list[Any]:
    """[n] or [n, 1] predictions as a flat list."""
    if values and isinstance(values[0], list) and len(values[0]) == 1:
        return [v[0] for v in values]
    return list(values)


def rows_of(entry: Sequence[Any]) -> list[Row]:
    """The rows of one decoded entry; ValueError when its parts disagree on the row count."""
    n_rows, ts, request_id, client_id, model, version, inputs, preds, probs, classes, lat, st = (
        entry
    )
    if isinstance(inputs, Mapping):
        names = list(inputs)
        for name in names:
            if len(inputs[name]) != n_rows:
                raise ValueError(f"input {name!r} has {len(inputs[name])} values for {n_rows} rows")
        columns = [list(inputs[name]) for name in names]
        records = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
        if not names:
            records = [{} for _ in range(n_rows)]
    else:
        records = list(inputs)
    if len(records) != n_rows:
        raise ValueError(f"{len(records)} records for {n_rows} rows")
    predictions = _flat(preds) if preds is not None else [None] * n_rows
    if len(predictions) != n_rows:
        raise ValueError(f"{len(predictions)} predictions for {n_rows} rows")
    if probs is not None:
        if len(probs) != n_rows:
            raise ValueError(f"{len(probs)} probability rows for {n_rows} rows")
        keys = [str(c) for c in (classes if classes is not None else range(len(probs[0])))]
        probabilities: list[dict[str, Any] | None] = [
            dict(zip(keys, row, strict=True)) for row in probs
        ]
    else:
        probabilities = [None] * n_rows
    latency = None if lat is None or not math.isfinite(lat) else float(lat)
    return [
        [request_id, i, ts, model, version, records[i], predictions[i], probabilities[i],
         latency, st, client_id]
        for i in range(n_rows)
    ]  # fmt: skip


def to_spool(row: Row) -> dict[str, Any]:
    """A row as a spool line object."""
    return dict(zip(KEYS, row, strict=True))


def from_spool(obj: Mapping[str, Any]) -> Row:
    """A spool line object back into a row (lines written before client_request_id existed
    have none)."""
    return [obj.get(key) for key in KEYS]
