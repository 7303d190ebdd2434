"""Answers are checked for a prediction of the right kind, not only for a 200."""

from __future__ import annotations

import orjson
import pytest

from tabserve.loadtest.answers import INVALID_JSON, WRONG_ANSWER, make_checker
from tabserve.spec import FeatureSpec, Target


def _spec(target: Target) -> FeatureSpec:
    return FeatureSpec(features=[], target=target)


CLASSIFIER = _spec(Target(name="y", task="classification", classes=[0, 1]))
TEXT_CLASSES = _spec(Target(name="y", task="classification", classes=["setosa", "virginica"]))
REGRESSOR = _spec(Target(name="y", task="regression"))


def dumps(value: object) -> bytes:
    return orjson.dumps(value)


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        (dumps({"prediction": 1, "probabilities": {"0": 0.2, "1": 0.8}}), None),
        (dumps({"prediction": 1.0}), None),
        (dumps({"prediction": "0"}), None),
        (dumps({"prediction": 2}), WRONG_ANSWER),
        (dumps({"prediction": None}), WRONG_ANSWER),
        (dumps({"error": "validation failed"}), WRONG_ANSWER),
        (dumps([1]), WRONG_ANSWER),
        (b"<html>oops</html>", INVALID_JSON),
        (b"", INVALID_JSON),
    ],
)
def test_v1_single_classifier(body: bytes, verdict: str | None) -> None:
    assert make_checker(CLASSIFIER, "v1", 1)(body) == verdict


def test_v1_text_labels_and_regression() -> None:
    check = make_checker(TEXT_CLASSES, "v1", 1)
    assert check(dumps({"prediction": "setosa"})) is None
    assert check(dumps({"prediction": "banana"})) == WRONG_ANSWER
    check = make_checker(REGRESSOR, "v1", 1)
    assert check(dumps({"prediction": 151.2})) is None
    assert check(dumps({"prediction": "151"})) == WRONG_ANSWER
    assert check(dumps({"prediction": True})) == WRONG_ANSWER
    assert check(b'{"prediction": NaN}') == INVALID_JSON


def test_v1_batch_needs_one_valid_prediction_per_record() -> None:
    check = make_checker(CLASSIFIER, "v1", 3)
    good = {"predictions": [{"prediction": 0}, {"prediction": 1}, {"prediction": 1}]}
    assert check(dumps(good)) is None
    assert check(dumps({"predictions": good["predictions"][:2]})) == WRONG_ANSWER
    bad = {"predictions": [{"prediction": 0}, {"prediction": 7}, {"prediction": 1}]}
    assert check(dumps(bad)) == WRONG_ANSWER
    assert check(dumps({"prediction": 1})) == WRONG_ANSWER


def test_v2_outputs_must_exist_with_one_row_per_record() -> None:
    check = make_checker(CLASSIFIER, "v2", 2)
    label = {"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 1]}
    probs = {"name": "probabilities", "shape": [2, 2], "datatype": "FP64", "data": [0.1] * 4}
    assert check(dumps({"outputs": [label, probs]})) is None
    assert check(dumps({"outputs": []})) == WRONG_ANSWER
    assert check(dumps({"error": "x"})) == WRONG_ANSWER
    assert check(dumps({"outputs": [{**label, "shape": [1], "data": [0]}]})) == WRONG_ANSWER
    assert check(dumps({"outputs": [{**label, "data": [0, 5]}]})) == WRONG_ANSWER
    regression = make_checker(REGRESSOR, "v2", 1)
    variable = {"name": "variable", "shape": [1, 1], "datatype": "FP64", "data": [3.5]}
    assert regression(dumps({"outputs": [variable]})) is None
