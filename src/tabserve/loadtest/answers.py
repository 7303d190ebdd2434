"""Checking prediction answers, so a server that is fast because it is wrong counts as failing.

A status code alone proves little: a constant "{}" or a 200 with an error message would look
like the fastest server in the table. Each answer must parse and carry predictions of the right
kind (a known class label, or a finite number for regression), one per record sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

from tabserve.spec import FeatureSpec, Scalar

# Error kinds beyond "status_<code>", as they appear in the results.
INVALID_JSON = "invalid_json"
WRONG_ANSWER = "wrong_answer"

Checker = Callable[[bytes], str | None]


def _label_key(value: Any) -> str:
    """Compare labels across JSON types: 1, 1.0 and "1" are the same class, True is "True"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _prediction_check(spec: FeatureSpec) -> Callable[[Any], bool]:
    if spec.target.task == "classification":
        labels = {_label_key(c) for c in (spec.target.classes or [])}

        def is_label(value: Any) -> bool:
            return isinstance(value, Scalar) and _label_key(value) in labels

        return is_label

    def is_number(value: Any) -> bool:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )

    return is_number


def v1_checker(spec: FeatureSpec, batch_size: int) -> Checker:
    """Check a /predict answer: ``prediction`` for one record, ``predictions`` for an array."""
    valid = _prediction_check(spec)

    def check(body: bytes) -> str | None:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return INVALID_JSON
        if not isinstance(answer, dict):
            return WRONG_ANSWER
        if batch_size == 1:
            return None if valid(answer.get("prediction")) else WRONG_ANSWER
        items = answer.get("predictions")
        if not isinstance(items, list) or len(items) != batch_size:
            return WRONG_ANSWER
        ok = all(isinstance(i, dict) and valid(i.get("prediction")) for i in items)
        return None if ok else WRONG_ANSWER

    return check


def v2_checker(spec: FeatureSpec, batch_size: int) -> Checker:
    """Check an OIP infer answer: outputs exist, each with one row per record sent.

    The label/variable output (when present) is checked like a v1 prediction.
    """
    valid = _prediction_check(spec)
    primary = "label" if spec.target.task == "classification" else "variable"

    def check(body: bytes) -> str | None:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return INVALID_JSON
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if not isinstance(outputs, list) or not outputs:
            return WRONG_ANSWER
        for output in outputs:
            if not isinstance(output, dict):
                return WRONG_ANSWER
            shape, data = output.get("shape"), output.get("data")
            if not isinstance(shape, list) or not shape or shape[0] != batch_size:
                return WRONG_ANSWER
            if not isinstance(data, list) or len(data) < batch_size:
                return WRONG_ANSWER
            if output.get("name") == primary and not all(valid(v) for v in data[:batch_size]):
                return WRONG_ANSWER
        return None

    return check


def make_checker(spec: FeatureSpec, protocol: str, batch_size: int) -> Checker:
    return v1_checker(spec, batch_size) if protocol == "v1" else v2_checker(spec, batch_size)
