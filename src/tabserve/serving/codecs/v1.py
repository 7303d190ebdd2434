"""The v1 codec: ``POST /predict`` bodies in, answers out.

A body is one JSON object (a record keyed by feature name) or an array of them. The answer to
one record is ``{"prediction", "probabilities"?, "model", "version", "warnings"?}``; to an array,
``{"predictions": [{"prediction", "probabilities"?}, ...], "model", "version", "warnings"?}``.
``tabserve predict`` writes the same per-row objects for a local model (``encode_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from tabserve.serving.errors import BadRequest


def decode(
    body: bytes, expected: str = "a JSON object (one record) or an array of objects"
) -> tuple[list[Any], bool]:
    """(records, single): single is True when the body was one object rather than an array.
    ``expected`` names what the route takes, for the 400 of a body that is neither."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if type(payload) is dict:
        return [payload], True
    if type(payload) is list:
        return payload, False
    raise BadRequest(f"send {expected}")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def encode_rows(
    class_keys: Sequence[str], labels: np.ndarray, probabilities: np.ndarray | None
) -> list[dict[str, Any]]:
    """One object per row, from two ``tolist()`` calls. A dict literal per row costs half of
    ``dict(zip(keys, row))``, so the usual binary classifier gets one."""
    values = labels.tolist()
    if probabilities is None:
        return [{"prediction": label} for label in values]
    rows = probabilities.tolist()
    if len(class_keys) == 2:
        k0, k1 = class_keys
        return [
            {"prediction": label, "probabilities": {k0: p0, k1: p1}}
            for label, (p0, p1) in zip(values, rows, strict=True)
        ]
    return [
        {"prediction": label, "probabilities": dict(zip(class_keys, row, strict=True))}
        for label, row in zip(values, rows, strict=True)
    ]


def encode(
    *,
    single: bool,
    class_keys: Sequence[str],
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    model: str,
    version: str,
    warnings: list[str],
) -> bytes:
    if single:
        answer: dict[str, Any] = {"prediction": _plain(labels[0])}
        if probabilities is not None:
            row = probabilities[0].tolist()
            answer["probabilities"] = dict(zip(class_keys, row, strict=True))
    else:
        answer = {"predictions": encode_rows(class_keys, labels, probabilities)}
    answer["model"] = model
    answer["version"] = version
    if warnings:
        answer["warnings"] = warnings
    return orjson.dumps(answer)
