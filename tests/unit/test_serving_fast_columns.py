"""The column-at-a-time fast path of validate_records gives exactly the per-value path's answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tabserve.serving import validation
from tabserve.serving.fast_columns import records_fast
from tabserve.serving.validation import (
    RequestValidationError,
    ValidationOptions,
    compile_spec,
    validate_records,
)
from tabserve.spec import FeatureSpec, build_spec

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


def outcome(spec: FeatureSpec, records: list[Any], options: ValidationOptions) -> Any:
    try:
        batch = validate_records(spec, records, options)
    except RequestValidationError as exc:
        return ("error", exc.details, exc.total)
    columns = {
        name: (col.dtype.str, [None if v != v else v for v in col.tolist()])  # NaN-aware
        for name, col in batch.columns.items()
    }
    return ("ok", columns, batch.warnings)


def both_paths(
    spec: FeatureSpec, records: list[Any], options: ValidationOptions
) -> tuple[Any, Any]:
    fast = outcome(spec, records, options)
    saved = validation._FAST_MIN_ROWS
    validation._FAST_MIN_ROWS = 10**9  # the per-value path only
    try:
        slow = outcome(spec, records, options)
    finally:
        validation._FAST_MIN_ROWS = saved
    return fast, slow


@pytest.mark.parametrize("options", OPTIONS, ids=["strict", "coerce", "ood"])
@pytest.mark.parametrize("field", ["age", "rooms", "city", "grade", "member"])
def test_any_value_in_any_field_gives_the_per_value_answer(
    spec: FeatureSpec, options: ValidationOptions, field: str
) -> None:
    for value in VALUES:
        records = batch_of()
        records[3][field] = value
        fast, slow = both_paths(spec, records, options)
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
        records = batch_of()
        change(records)
        fast, slow = both_paths(spec, records, options)
        assert fast == slow


def test_clean_batches_take_the_fast_path(spec: FeatureSpec) -> None:
    compiled = compile_spec(spec, ValidationOptions())
    records = batch_of()
    columns = records_fast(compiled, records)
    assert columns is not None and list(columns) == spec.names
    assert columns["grade"].tolist() == ["1", "2", "3"] * 4  # int codes as text (the contract)
    records[0]["age"] = None  # a null where one is allowed stays on the fast path
    with_null = records_fast(compiled, records)
    assert with_null is not None and np.isnan(with_null["age"][0])
    records[1]["city"] = "zz"  # an unknown category goes to the per-value path
    assert records_fast(compiled, records) is None
