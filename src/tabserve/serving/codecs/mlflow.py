"""MLflow's scoring protocol (``POST /invocations``, as ``mlflow models serve`` answers it).

Requests, by content type:
- ``application/json``: exactly one of ``dataframe_split`` (``{"columns", "data"[, "index"]}``),
  ``dataframe_records`` (a list of records), ``instances`` or ``inputs`` (a list of records, a
  list of rows in the model's column order, or ``{column: [values]}``); ``params`` is accepted
  and ignored (tabular models take none);
- ``text/csv``: a header line naming the columns, then one row per record.
The answer is ``{"predictions": [...]}``: one label (classifier) or value (regressor) per row.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import Any

import orjson

from tabserve.serving.codecs.csv_records import records_from_csv
from tabserve.serving.errors import BadRequest, UnsupportedMediaType
from tabserve.spec import FeatureSpec

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def rows_to_records(rows: Any, names: Sequence[str], where: str) -> list[Any]:
    """A list of records, a list of rows in ``names`` order, or ``{column: [values]}``."""
    if isinstance(rows, dict):
        if not all(isinstance(v, list) for v in rows.values()):
            raise BadRequest(f"{where}: a dict of columns needs a list of values per column")
        lengths = {len(v) for v in rows.values()}
        if len(lengths) > 1:
            raise BadRequest(f"{where}: columns of different lengths {sorted(lengths)}")
        keys = list(rows)
        return [dict(zip(keys, values, strict=True)) for values in zip(*rows.values(), strict=True)]
    if not isinstance(rows, list):
        raise BadRequest(f"{where} must be a list of records or rows, or a dict of columns")
    out: list[Any] = []
    for i, row in enumerate(rows):
        if isinstance(row, list):
            if len(row) != len(names):
                raise BadRequest(
                    f"{where} row {i} has {len(row)} values; the model takes {len(names)} "
                    f"columns: {', '.join(names)}"
                )
            out.append(dict(zip(names, row, strict=True)))
        else:
            out.append(row)  # a record (or garbage validation will name)
    return out


def decode(body: bytes, content_type: str, spec: FeatureSpec) -> list[Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        try:
            return records_from_csv(body.decode("utf-8-sig"), spec)
        except (UnicodeDecodeError, ValueError, csv.Error) as exc:
            raise BadRequest(f"invalid CSV: {exc}") from None
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType("send application/json (dataframe_split, ...) or text/csv")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"send a JSON object with one of {', '.join(FORMATS)}")
    given = [k for k in FORMATS if k in payload]
    unknown = [k for k in payload if k not in FORMATS and k != "params"]
    if len(given) != 1 or unknown:
        raise BadRequest(
            f"the body needs exactly one of {', '.join(FORMATS)}"
            + (f"; unknown key(s) {', '.join(map(repr, unknown[:5]))}" if unknown else "")
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise BadRequest("dataframe_split needs {'columns': [...], 'data': [[...], ...]}")
        columns = value.get("columns", spec.names)
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise BadRequest("dataframe_split 'columns' must be a list of column names")
        return rows_to_records(value["data"], columns, "dataframe_split data")
    if key == "dataframe_records" and not isinstance(value, list):
        raise BadRequest("dataframe_records must be a list of records")
    return rows_to_records(value, spec.names, key)


def encode(labels: Any) -> bytes:
    return orjson.dumps({"predictions": labels.tolist()})
