"""Property tests: any JSON value in any field is accepted or rejected naming that field, the
same way on every path (records one by one, records in bulk, columns), never with another error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabserve.modeldir import ModelDir
from tabserve.serving.errors import ValidationFailed
from tabserve.serving.validation import (
    REASONS,
    ValidationOptions,
    validate_columns,
    validate_records,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
RECORD["Embarked"] = "S"


@pytest.fixture(scope="module")
def spec(titanic_model_dir: Path) -> Any:
    return ModelDir(titanic_model_dir).spec()


OPTIONS = [ValidationOptions(), ValidationOptions(coerce=True), ValidationOptions(ood="reject")]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(list(RECORD)), value=JSON, options=st.sampled_from(OPTIONS),
       rows=st.sampled_from([1, 12]))  # fmt: skip
def test_any_value_in_any_field_is_accepted_or_names_that_field(
    spec: Any, field: str, value: Any, options: ValidationOptions, rows: int
) -> None:
    records = [dict(RECORD) for _ in range(rows)]
    records[-1][field] = value  # 12 rows: the bulk path first
    outcomes = []
    for run in (
        lambda: validate_records(spec, records, options),
        lambda: validate_columns(spec, {k: [r[k] for r in records] for k in RECORD}, rows, options),
    ):
        try:
            batch = run()
        except ValidationFailed as exc:
            assert exc.details and {d["field"] for d in exc.details} == {field}
            assert {d["reason"] for d in exc.details} <= set(REASONS)
            assert all(d["record"] == rows - 1 for d in exc.details)
            assert all(len(d["message"]) < 300 for d in exc.details)  # never the payload
            outcomes.append(("400", tuple(sorted(d["reason"] for d in exc.details))))
        else:
            assert batch.n_rows == rows and list(batch.columns) == list(RECORD)
            outcomes.append(("200", ()))
    assert outcomes[0] == outcomes[1]  # records and columns judge the value alike
