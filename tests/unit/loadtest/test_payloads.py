"""Payloads drawn from a FeatureSpec or a CSV, and their v1/v2 encodings."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest

from tabserve.errors import UserError
from tabserve.loadtest.payloads import (
    build_payloads,
    make_payloads,
    records_from_csv,
    records_from_spec,
)
from tabserve.spec import FeatureSpec
from tabserve.training.profile import build_spec


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    n = 200
    frame = pd.DataFrame(
        {
            "Pclass": [1 + i % 3 for i in range(n)],
            "Sex": ["male" if i % 4 else "female" for i in range(n)],  # 75 % male
            "Age": [None if i % 5 == 0 else 1.0 + i % 70 for i in range(n)],  # 20 % missing
            "Fare": [5.0 + i for i in range(n)],
            "Alone": [i % 10 != 0 for i in range(n)],  # 90 % True
            "Code": [10 + i % 2 for i in range(n)],
            "Survived": [i % 2 for i in range(n)],
        }
    )
    return build_spec(frame, "Survived", kinds={"Code": "categorical"})


def test_spec_records_follow_the_training_profile(spec: FeatureSpec) -> None:
    records = records_from_spec(spec, 4000, seed=1)
    assert all(list(r) == spec.names for r in records)
    classes = {r["Pclass"] for r in records}
    assert classes <= {1, 2, 3} and all(isinstance(c, int) for c in classes)
    fares = [r["Fare"] for r in records]
    assert min(fares) >= 5.0 and max(fares) <= 204.0  # type: ignore[type-var]
    assert {r["Sex"] for r in records} == {"male", "female"}
    male = sum(r["Sex"] == "male" for r in records) / len(records)
    assert 0.70 < male < 0.80
    alone = sum(r["Alone"] is True for r in records) / len(records)
    assert 0.86 < alone < 0.94
    # Nulls only where the training data had them, at about the training rate.
    ages = [r["Age"] for r in records]
    assert 0.16 < sum(a is None for a in ages) / len(ages) < 0.24
    assert all(r["Fare"] is not None and r["Sex"] is not None for r in records)
    # An int-coded categorical goes out with its JSON type, not as the profile's string key.
    assert {r["Code"] for r in records} == {10, 11}


def test_spec_records_are_reproducible(spec: FeatureSpec) -> None:
    assert records_from_spec(spec, 50, seed=3) == records_from_spec(spec, 50, seed=3)
    assert records_from_spec(spec, 50, seed=3) != records_from_spec(spec, 50, seed=4)


def test_csv_records_are_typed_by_the_spec_and_invalid_rows_skipped(
    spec: FeatureSpec, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        "Survived,Pclass,Sex,Age,Fare,Alone,Code,Extra\n"
        "1,3,male,22,7.25,true,10,x\n"
        "0,1,female,,71.3,0,11,y\n"  # null Age is fine: Age is nullable
        "0,2,male,30,,1,10,z\n"  # null Fare is not: skipped
        "1,two,male,30,8.0,1,10,z\n"  # wrong type: skipped
    )
    records = records_from_csv(path, spec, 10)
    assert len(records) == 10  # two valid rows, cycled
    assert {tuple(sorted(r.items())) for r in records} == {
        tuple(
            sorted(
                {
                    "Pclass": 3,
                    "Sex": "male",
                    "Age": 22.0,
                    "Fare": 7.25,
                    "Alone": True,
                    "Code": 10,
                }.items()
            )
        ),
        tuple(
            sorted(
                {
                    "Pclass": 1,
                    "Sex": "female",
                    "Age": None,
                    "Fare": 71.3,
                    "Alone": False,
                    "Code": 11,
                }.items()
            )
        ),
    }


def test_csv_without_a_feature_column_is_a_user_error(spec: FeatureSpec, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("Pclass,Sex\n3,male\n")
    with pytest.raises(UserError, match="missing feature column"):
        records_from_csv(path, spec, 5)
    with pytest.raises(UserError, match="no such file"):
        records_from_csv(tmp_path / "nope.csv", spec, 5)


def test_v1_bodies_single_and_batched(spec: FeatureSpec) -> None:
    records = records_from_spec(spec, 10, seed=0)
    single = build_payloads(spec, records, protocol="v1")
    assert single.path == "/predict"
    assert [orjson.loads(b) for b in single.bodies] == records
    batched = build_payloads(spec, records, protocol="v1", batch_size=3)
    assert len(batched.bodies) == 3  # the incomplete tail is dropped
    assert orjson.loads(batched.bodies[1]) == records[3:6]


def test_v2_bodies_are_one_tensor_per_feature_in_spec_order(spec: FeatureSpec) -> None:
    records = records_from_spec(spec, 4, seed=0)
    payloads = build_payloads(spec, records, protocol="v2", batch_size=2, model="titanic")
    assert payloads.path == "/v2/models/titanic/infer"
    body = orjson.loads(payloads.bodies[0])
    assert [t["name"] for t in body["inputs"]] == spec.names
    by_name = {t["name"]: t for t in body["inputs"]}
    assert by_name["Fare"]["shape"] == [2, 1]
    assert by_name["Fare"]["datatype"] == "FP64"
    assert by_name["Pclass"]["datatype"] == "INT64"
    assert by_name["Sex"]["datatype"] == "BYTES"
    assert by_name["Alone"]["datatype"] == "BOOL"
    assert by_name["Sex"]["data"] == [records[0]["Sex"], records[1]["Sex"]]


def test_v2_needs_a_model_name_and_batches_need_enough_records(spec: FeatureSpec) -> None:
    records = records_from_spec(spec, 2, seed=0)
    with pytest.raises(UserError, match="model name"):
        build_payloads(spec, records, protocol="v2")
    with pytest.raises(UserError, match="at least 5"):
        build_payloads(spec, records, batch_size=5)
    with pytest.raises(UserError):
        build_payloads(spec, records, batch_size=0)


def test_make_payloads_pool_is_distinct_bodies(spec: FeatureSpec) -> None:
    payloads = make_payloads(spec, pool_size=64, batch_size=4)
    assert len(payloads.bodies) == 64
    assert len(set(payloads.bodies)) > 60
