"""Queued requests → log rows, column-wise: one ``tolist()`` per column per batch, not per record.

The writer thread shares the GIL with the request thread, so every microsecond spent here per
row is taken from serving. Requests are grouped (same features, same classes), each column is
concatenated across the group and turned into Python values once, and a row is a plain list in
``store.COLUMNS`` order: ``ts`` in epoch seconds, ``inputs`` / ``probabilities`` as dicts. The
store sends a whole batch to the database as one JSON document (store.RowInserter); the spool
writes the same rows as JSON lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# One queued request: (epoch_s, request_id, model, version, columns, n_rows, predictions,
# probabilities, classes, latency_ms, status).
Item = tuple[Any, ...]
Row = list[Any]

KEYS = (
    "request_id", "record_index", "ts", "model_name", "model_version",
    "inputs", "prediction", "probabilities", "latency_ms", "status",
)  # fmt: skip


def _flat(values: Any) -> np.ndarray:
    """A 1-D array of one request's values ([n, 1] predictions are flattened)."""
    arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def _check(item: Item) -> None:
    """Raise ValueError if the item's arrays do not all have n_rows records."""
    _, _, _, _, columns, n_rows, preds, probs, _, _, _ = item
    for name, values in columns.items():
        if len(values) != n_rows:
            raise ValueError(f"column {name!r} has {len(values)} values for {n_rows} records")
    if preds is not None and len(preds) != n_rows:
        raise ValueError(f"{len(preds)} predictions for {n_rows} records")
    if probs is not None and len(probs) != n_rows:
        raise ValueError(f"{len(probs)} probability rows for {n_rows} records")


def _group_key(item: Item) -> tuple[Any, ...]:
    columns, preds, probs, classes = item[4], item[6], item[7], item[8]
    n_classes = len(probs[0]) if probs is not None and len(probs) else 0
    keys = tuple(classes) if classes is not None else None
    return (tuple(columns), preds is None, probs is None, keys, n_classes)


def _concat(parts: list[Any]) -> list[Any]:
    if len(parts) == 1:
        return list(_flat(parts[0]).tolist())
    return list(np.concatenate([_flat(p) for p in parts]).tolist())


def _encode_group(items: list[Item], key: tuple[Any, ...]) -> list[Row]:
    names, no_preds, no_probs, classes, n_classes = key
    total = sum(item[5] for item in items)
    col_lists = [_concat([item[4][n] for item in items]) for n in names]
    inputs: list[Any] = [dict(zip(names, r, strict=True)) for r in zip(*col_lists, strict=True)]
    if not names:
        inputs = [{} for _ in range(total)]
    preds = [None] * total if no_preds else _concat([item[6] for item in items])
    probs: list[Any] = [None] * total
    if not no_probs:
        labels = [str(c) for c in (classes if classes is not None else range(n_classes))]
        matrix = np.concatenate([np.asarray(item[7], dtype=np.float64) for item in items])
        probs = [dict(zip(labels, row, strict=True)) for row in matrix.tolist()]
    rows: list[Row] = []
    k = 0
    for ts, request_id, model, version, _, n_rows, _, _, _, latency, status in items:
        latency_value = None if latency is None or not math.isfinite(latency) else float(latency)
        for i in range(n_rows):
            rows.append(
                [request_id, i, ts, model, version, inputs[k], preds[k], probs[k],
                 latency_value, status]
            )  # fmt: skip
            k += 1
    return rows


def encode(items: Sequence[Item]) -> tuple[list[Row], list[tuple[Item, Exception]]]:
    """Rows of all well-formed items, and the items that could not be turned into rows."""
    groups: dict[tuple[Any, ...], list[Item]] = {}
    bad: list[tuple[Item, Exception]] = []
    for item in items:
        try:
            _check(item)
            groups.setdefault(_group_key(item), []).append(item)
        except Exception as exc:  # a malformed submit must not take the batch with it
            bad.append((item, exc))
    rows: list[Row] = []
    for key, group in groups.items():
        try:
            rows.extend(_encode_group(group, key))
        except Exception:
            # Rare (arrays that do not concatenate): find the culprit request by request.
            for item in group:
                try:
                    rows.extend(_encode_group([item], key))
                except Exception as exc:
                    bad.append((item, exc))
    return rows, bad


def to_spool(row: Row) -> dict[str, Any]:
    """A row as a spool line object (the line format predates rows.py and is unchanged)."""
    return dict(zip(KEYS, row, strict=True))


def from_spool(obj: Mapping[str, Any]) -> Row:
    """A spool line object back into a row."""
    return [obj.get(key) for key in KEYS]
