"""Validation from the FeatureSpec: every reason, arrays, coercion, the OOD guard, columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tabserve.serving.errors import ValidationFailed
from tabserve.serving.validation import (
    ValidationOptions,
    validate_columns,
    validate_records,
)
from tabserve.spec import FeatureSpec
from tabserve.training.profile import build_spec

STRICT = ValidationOptions()
LENIENT = ValidationOptions(coerce=True)


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    n = 40
    frame = pd.DataFrame(
        {
            "age": [float(20 + i) if i % 5 else None for i in range(n)],  # nullable float
            "rooms": [1 + i % 4 for i in range(n)],  # int64, not nullable
            "city": ["a", "b", "c", "a"] * 10,  # categorical string
            "grade": [1, 2, 3, 2] * 10,  # int-coded category (kind forced below)
            "member": [True, False] * 20,  # boolean
            "y": [0, 1] * 20,
        }
    )
    return build_spec(frame, "y", kinds={"grade": "categorical"})


def good() -> dict[str, object]:
    return {"age": 30.5, "rooms": 2, "city": "b", "grade": 3, "member": True}


def reasons(exc: pytest.ExceptionInfo[ValidationFailed]) -> set[tuple[str, str]]:
    return {(d["field"], d["reason"]) for d in exc.value.details}


def test_valid_record_becomes_contract_columns(spec: FeatureSpec) -> None:
    batch = validate_records(spec, [good(), {**good(), "age": None, "member": False}], STRICT)
    assert batch.n_rows == 2
    assert list(batch.columns) == spec.names
    assert batch.columns["age"].dtype == np.float64
    assert math.isnan(batch.columns["age"][1])
    assert batch.columns["rooms"].tolist() == [2.0, 2.0]
    assert batch.columns["member"].tolist() == [1.0, 0.0]
    assert batch.columns["city"].dtype == object and batch.columns["city"][0] == "b"
    assert batch.columns["grade"].tolist() == ["3", "3"]  # int codes as strings (the contract)
    assert batch.warnings == []


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"rooms": "2"}, "rooms", "wrong_type"),  # "22" for a number: no silent coercion
        ({"rooms": True}, "rooms", "wrong_type"),  # bool where a number is expected
        ({"member": 1}, "member", "wrong_type"),  # 1 where a bool is expected
        ({"rooms": 2.5}, "rooms", "wrong_type"),  # fraction for an integer feature
        ({"rooms": None}, "rooms", "null"),  # null where not nullable
        ({"city": "zzz"}, "city", "unknown_category"),
        ({"grade": 9}, "grade", "unknown_category"),
        ({"grade": "3"}, "grade", "wrong_type"),  # a code sent as text
        ({"city": 3}, "city", "wrong_type"),
        ({"age": float("inf")}, "age", "not_finite"),
        ({"age": [1]}, "age", "wrong_type"),
        ({"extra": 1}, "extra", "extra_field"),
    ],
)
def test_each_reason_names_the_field(
    spec: FeatureSpec, change: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_records(spec, [{**good(), **change}], STRICT, indexed=False)
    assert reasons(exc) == {(field, reason)}
    detail = exc.value.details[0]
    assert set(detail) == {"field", "reason", "message"}  # one object: no record index
    assert field in detail["message"]


def test_missing_field(spec: FeatureSpec) -> None:
    record = good()
    del record["city"]
    with pytest.raises(ValidationFailed) as exc:
        validate_records(spec, [record], STRICT)
    assert reasons(exc) == {("city", "missing")}


def test_array_lists_every_problem_with_its_record_index(spec: FeatureSpec) -> None:
    records = [
        good(),
        {**good(), "rooms": "x", "extra": 1},
        "not an object",
        {**good(), "city": None},
    ]
    with pytest.raises(ValidationFailed) as exc:
        validate_records(spec, records, STRICT)  # type: ignore[list-item]
    got = {(d["record"], d["field"], d["reason"]) for d in exc.value.details}
    assert got == {
        (1, "rooms", "wrong_type"),
        (1, "extra", "extra_field"),
        (2, None, "wrong_type"),
        (3, "city", "null"),
    }


def test_message_does_not_echo_a_huge_value(spec: FeatureSpec) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate_records(spec, [{**good(), "city": "x" * 10_000}], STRICT)
    assert len(exc.value.details[0]["message"]) < 200


def test_coerce_accepts_text_numbers_and_01_booleans(spec: FeatureSpec) -> None:
    batch = validate_records(
        spec, [{**good(), "rooms": "2", "member": 0, "grade": "3", "age": "31.5"}], LENIENT
    )
    assert batch.columns["rooms"][0] == 2.0
    assert batch.columns["member"][0] == 0.0
    assert batch.columns["grade"][0] == "3"
    assert batch.columns["age"][0] == 31.5
    with pytest.raises(ValidationFailed) as exc:
        validate_records(spec, [{**good(), "member": 2, "rooms": "two"}], LENIENT)
    assert reasons(exc) == {("member", "wrong_type"), ("rooms", "wrong_type")}


def test_ood_guard_off_warn_reject(spec: FeatureSpec) -> None:
    far = [{**good(), "age": 500.0}]
    assert validate_records(spec, far, STRICT).warnings == []
    warned = validate_records(spec, far, ValidationOptions(ood="warn"), indexed=False)
    assert len(warned.warnings) == 1 and "age" in warned.warnings[0]
    assert warned.ood_fields == ["age"]
    with pytest.raises(ValidationFailed) as exc:
        validate_records(spec, far, ValidationOptions(ood="reject"))
    assert reasons(exc) == {("age", "out_of_range")}
    # NaN (a null) is never out of range.
    missing_age = validate_records(spec, [{**good(), "age": None}], ValidationOptions(ood="reject"))
    assert missing_age.warnings == [] and math.isnan(missing_age.columns["age"][0])


def test_columns_from_arrays_and_lists(spec: FeatureSpec) -> None:
    # The v2 codec hands validation 1-D columns: decoded text for BYTES, arrays for binary.
    columns = {
        "age": np.array([30.0, np.nan]),
        "rooms": np.array([1, 2], dtype=np.int64),
        "city": ["a", "c"],
        "grade": [1, 2],
        "member": np.array([True, False]),
    }
    batch = validate_columns(spec, columns, 2, STRICT)
    assert batch.columns["rooms"].tolist() == [1.0, 2.0]
    assert batch.columns["city"].tolist() == ["a", "c"]
    assert batch.columns["grade"].tolist() == ["1", "2"]
    assert batch.columns["member"].tolist() == [1.0, 0.0]


def test_columns_report_row_problems(spec: FeatureSpec) -> None:
    columns = {
        "age": np.array([30.0, np.inf]),
        "rooms": np.array([1.0, np.nan]),
        "city": ["a", "nowhere"],
        "member": [True, "yes"],
        "other": [1, 2],
    }
    with pytest.raises(ValidationFailed) as exc:
        validate_columns(spec, columns, 2, STRICT)
    got = {(d.get("record"), d["field"], d["reason"]) for d in exc.value.details}
    assert got == {
        (1, "age", "not_finite"),
        (1, "rooms", "null"),
        (1, "city", "unknown_category"),
        (1, "member", "wrong_type"),
        (None, "grade", "missing"),
        (None, "other", "extra_field"),
    }


def test_a_column_of_the_wrong_length_is_a_caller_bug(spec: FeatureSpec) -> None:
    # The codec checks every input's length against the shape; in-process callers get a
    # ValueError, never a 400 blaming the client.
    columns = {"age": [1.0], "rooms": [1, 2], "city": ["a", "b"], "grade": [1, 2],
               "member": [True, False]}  # fmt: skip
    with pytest.raises(ValueError, match="age"):
        validate_columns(spec, columns, 2, STRICT)
