"""Each fast path gives exactly the general path's answer, for both protocols.

Records (v1): the whole-column ``from_values`` path against one ``convert`` per value.
Columns (v2): a numpy tensor through ``from_array`` against the same values as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabserve.serving.errors import ValidationFailed
from tabserve.serving.validation import (
    ValidationOptions,
    validate_columns,
    validate_records,
)
from tabserve.serving.validation import records as record_paths
from tabserve.serving.validation.rules import compile_spec
from tabserve.spec import FeatureSpec
from tabserve.training.profile import build_spec

OPTIONS = [ValidationOptions(), ValidationOptions(coerce=True), ValidationOptions(ood="warn")]
VALUES: list[Any] = [
    0, 1, 2, 3, 2.0, 2.5, -1e300, 2**70, True, False, None, "", "a", "b", "zz", "2",
    "true", float("nan"), float("inf"), float("-inf"), [], {},
]  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    n = 40
    frame = pd.DataFrame(
        {
            "age": [float(20 + i) if i % 5 else None for i in range(n)],  # nullable float
            "rooms": [1 + i % 4 for i in range(n)],  # int64, not nullable
            "city": ["a", "b", "c", "a"] * 10,  # categorical string
            "grade": [1, 2, 3, 2] * 10,  # int-coded category
            "member": [True, False] * 20,  # boolean
            "y": [0, 1] * 20,
        }
    )
    return build_spec(frame, "y", kinds={"grade": "categorical"})


def batch_of(n: int = 12) -> list[Any]:
    return [
        {"age": 20.5 + i, "rooms": 1 + i % 3, "city": "abc"[i % 3], "grade": 1 + i % 3,
         "member": i % 2 == 0}
        for i in range(n)
    ]  # fmt: skip


def outcome(spec: FeatureSpec, rows: list[Any], options: ValidationOptions) -> Any:
    try:
        batch = validate_records(spec, rows, options)
    except ValidationFailed as exc:
        return ("error", exc.details, exc.total)
    columns = {
        name: (col.dtype.str, [None if v != v else v for v in col.tolist()])  # NaN-aware
        for name, col in batch.columns.items()
    }
    return ("ok", columns, batch.warnings)


def both_paths(spec: FeatureSpec, rows: list[Any], options: ValidationOptions) -> tuple[Any, Any]:
    fast = outcome(spec, rows, options)
    saved = record_paths.FAST_MIN_ROWS
    record_paths.FAST_MIN_ROWS = 10**9  # the per-value path only
    try:
        slow = outcome(spec, rows, options)
    finally:
        record_paths.FAST_MIN_ROWS = saved
    return fast, slow


@pytest.mark.parametrize("options", OPTIONS, ids=["strict", "coerce", "ood"])
@pytest.mark.parametrize("field", ["age", "rooms", "city", "grade", "member"])
def test_any_value_in_any_field_gives_the_per_value_answer(
    spec: FeatureSpec, options: ValidationOptions, field: str
) -> None:
    for value in VALUES:
        rows = batch_of()
        rows[3][field] = value
        fast, slow = both_paths(spec, rows, options)
        assert fast == slow, (field, value)


@pytest.mark.parametrize(
    "change",
    [
        lambda rs: rs[5].pop("city"),
        lambda rs: rs[5].update(extra=1),
        lambda rs: rs[5].update(extra=1) or rs[5].pop("age"),  # same key count, one swapped
        lambda rs: rs.__setitem__(2, [1, 2]),
        lambda rs: rs.__setitem__(2, None),
        lambda rs: [r.update(age=None) for r in rs],
        lambda rs: [r.update(grade=True) for r in rs[:6]],  # 1 == True: must not merge
        lambda rs: [r.update(age=1e308) for r in rs],  # finite, but the sum overflows
    ],
)
def test_structural_problems_give_the_per_value_answer(spec: FeatureSpec, change: Any) -> None:
    for options in OPTIONS:
        rows = batch_of()
        change(rows)
        fast, slow = both_paths(spec, rows, options)
        assert fast == slow


def test_clean_batches_take_the_fast_path(spec: FeatureSpec) -> None:
    compiled = compile_spec(spec, ValidationOptions())
    rows = batch_of()
    columns = record_paths.fast_columns(compiled, rows)
    assert columns is not None and list(columns) == spec.names
    assert columns["grade"].tolist() == ["1", "2", "3"] * 4  # int codes as text (the contract)
    rows[0]["age"] = None  # a null where one is allowed stays on the fast path
    with_null = record_paths.fast_columns(compiled, rows)
    assert with_null is not None and np.isnan(with_null["age"][0])
    rows[1]["city"] = "zz"  # an unknown category goes to the per-value path
    assert record_paths.fast_columns(compiled, rows) is None


# ---- columns (v2): numpy tensors against the same values sent as JSON ------------------------

ARRAYS: dict[str, list[np.ndarray]] = {
    "age": [
        np.array([20.0, 31.5, np.nan]),
        np.array([20.0, np.inf, 1.0]),
        np.array([1, 2, 3], dtype=np.int64),
        np.array([-np.inf, 0.0, 3e38], dtype=np.float32),
    ],
    "rooms": [
        np.array([1.0, 2.0, 3.0]),
        np.array([1.0, 2.5, 3.0]),
        np.array([1.0, np.nan, np.inf]),
        np.array([1, 2, 3], dtype=np.int64),
        np.array([7, 0, 2**40], dtype=np.int64),
    ],
    "member": [np.array([True, False, True])],
}


def as_json(array: np.ndarray) -> list[Any]:
    """What a JSON tensor carries for the same values: NaN is sent as null."""
    return [None if isinstance(v, float) and v != v else v for v in array.tolist()]


def column_outcome(spec: FeatureSpec, columns: dict[str, Any]) -> Any:
    try:
        batch = validate_columns(spec, columns, 3, ValidationOptions(ood="warn"))
    except ValidationFailed as exc:
        problems = [(d.get("record"), d["field"], d["reason"], d["message"]) for d in exc.details]
        return ("error", sorted(problems))
    columns = {n: [None if v != v else v for v in c.tolist()] for n, c in batch.columns.items()}
    return ("ok", columns, batch.warnings)


@pytest.mark.parametrize(
    ("field", "index"), [(f, i) for f, a in ARRAYS.items() for i in range(len(a))]
)
def test_numpy_columns_give_the_json_columns_answer(
    spec: FeatureSpec, field: str, index: int
) -> None:
    base: dict[str, Any] = {
        "age": [30.0, 40.0, 50.0], "rooms": [1, 2, 3], "city": ["a", "b", "c"],
        "grade": [1, 2, 3], "member": [True, False, True],
    }  # fmt: skip
    array = ARRAYS[field][index]
    from_array = column_outcome(spec, {**base, field: array})
    from_json = column_outcome(spec, {**base, field: as_json(array)})
    assert from_array == from_json
