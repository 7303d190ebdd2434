"""The v1 codec: bodies to records, predictions to the documented answer shapes."""

from __future__ import annotations

import contextlib

import numpy as np
import orjson
import pytest

from tabserve.serving.codecs import v1
from tabserve.serving.errors import BadRequest


def test_an_object_is_one_record_and_an_array_many() -> None:
    assert v1.decode(b'{"a": 1}') == ([{"a": 1}], True)
    assert v1.decode(b'[{"a": 1}, {"a": 2}]') == ([{"a": 1}, {"a": 2}], False)
    assert v1.decode(b"[]") == ([], False)  # the data plane says "no records"


NOT_RECORDS = [(b"{", "invalid JSON"), (b"42", "JSON object"), (b'"x"', "JSON object"),
               (b"\xff", "invalid JSON")]  # fmt: skip


@pytest.mark.parametrize(("body", "why"), NOT_RECORDS)
def test_bodies_that_are_not_records_are_400(body: bytes, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        v1.decode(body)


def answer(single: bool, classes: list[str], probs: np.ndarray | None, **kw: object) -> dict:
    labels = np.array([1, 0, 2][: len(probs) if probs is not None else 2])
    encoded = v1.encode(single=single, class_keys=classes, labels=labels, probabilities=probs,
                        model="m", version="3", warnings=kw.get("warnings", []))  # type: ignore[arg-type]  # fmt: skip
    return orjson.loads(encoded)


def test_one_record_answers_flat_with_probabilities_by_class() -> None:
    probs = np.array([[0.25, 0.75]])
    assert answer(True, ["0", "1"], probs) == {
        "prediction": 1, "probabilities": {"0": 0.25, "1": 0.75}, "model": "m", "version": "3",
    }  # fmt: skip


@pytest.mark.parametrize("n_classes", [2, 3])
def test_arrays_answer_one_object_per_row(n_classes: int) -> None:
    keys = ["a", "b", "c"][:n_classes]
    probs = np.full((3, n_classes), 1 / n_classes)
    body = answer(False, keys, probs, warnings=["record 1: x out of range"])
    assert [set(p["probabilities"]) for p in body["predictions"]] == [set(keys)] * 3
    assert [p["prediction"] for p in body["predictions"]] == [1, 0, 2]
    assert body["warnings"] == ["record 1: x out of range"] and body["version"] == "3"


def test_regression_answers_have_no_probabilities() -> None:
    rows = v1.encode_rows([], np.array([1.5, -2.0]), None)
    assert rows == [{"prediction": 1.5}, {"prediction": -2.0}]


def test_odd_csv_for_mlflow_is_records_or_a_400() -> None:
    # Found by schemathesis: a bare CR inside an unquoted field made the csv module raise
    # (a 500). Whatever the bytes, the codec answers records or a 400.
    from tabserve.serving.codecs import mlflow
    from tabserve.spec import CategoricalProfile, Feature, FeatureSpec, Target

    spec = FeatureSpec(
        features=[Feature(name="a", kind="categorical", dtype="string", nullable=False,
                          profile=CategoricalProfile(count=1, missing=0, categories={"x": 1}))],
        target=Target(name="y", task="regression"),
    )  # fmt: skip
    found = b"\r\xc2\x81\xf4\x82\xb2\x86\xc2\xa7u\xf1\x83\x94\xa8h\x0b\xc2\xa7"
    for body in (found, b'a\n"x\ry', b"\xff\xfe", b"a,b\nx,y,z\n"):
        with contextlib.suppress(BadRequest):
            assert isinstance(mlflow.decode(body, "text/csv", spec), list)
