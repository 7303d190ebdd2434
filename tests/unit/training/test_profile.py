"""FeatureSpec inference: kinds, dtypes, nullability, ID-like exclusion, JSON round trip."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from tabserve.datasets import load_builtin
from tabserve.spec import FeatureSpec
from tabserve.training.profile import build_spec


def _kinds(spec: FeatureSpec) -> dict[str, str]:
    return {f.name: f.kind for f in spec.features}


def test_titanic_kinds_and_id_like_exclusion() -> None:
    spec = build_spec(load_builtin("titanic"), "Survived")
    assert _kinds(spec) == {
        "Pclass": "numeric",
        "Sex": "categorical",
        "Age": "numeric",
        "SibSp": "numeric",
        "Parch": "numeric",
        "Fare": "numeric",
        "Embarked": "categorical",
    }
    assert {e.name for e in spec.excluded} == {"PassengerId", "Name", "Ticket", "Cabin"}
    assert spec.feature("Age").nullable and not spec.feature("Sex").nullable
    assert spec.feature("Embarked").nullable
    assert spec.target.task == "classification" and spec.target.classes == [0, 1]
    assert set(spec.feature("Sex").categories or []) == {"male", "female"}


def test_id_like_column_can_be_forced_in() -> None:
    frame = load_builtin("titanic")
    spec = build_spec(frame, "Survived", features=["PassengerId", "Sex", "Age"])
    assert spec.names == ["PassengerId", "Sex", "Age"]
    assert spec.excluded == []


def test_heart_bom_and_kind_overrides() -> None:
    frame = load_builtin("heart")
    assert frame.columns[0] == "age"  # the BOM is not part of the first column name
    spec = build_spec(frame, "target", kinds={"cp": "categorical"})
    assert spec.feature("cp").kind == "categorical" and spec.feature("age").kind == "numeric"
    assert sorted(spec.feature("cp").categories or []) == ["0", "1", "2", "3"]
    assert spec.target.classes == [0, 1]


def test_iris_string_labels_and_diabetes_regression() -> None:
    iris = build_spec(load_builtin("iris"), "species")
    assert iris.target.classes == ["setosa", "versicolor", "virginica"]
    assert "sepal length (cm)" in iris.names
    diabetes = build_spec(load_builtin("diabetes"), "target")
    assert diabetes.target.task == "regression" and diabetes.target.classes is None
    assert all(f.kind == "numeric" for f in diabetes.features)


@pytest.fixture()
def awkward() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "monthly income (€)": rng.normal(3000, 500, n),
            "a.b.c": rng.integers(0, 5, n),
            "größe": rng.choice(["klein", "mittel", "groß"], n),
            "has pet?": rng.choice([True, False], n),
            "maybe bool": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
            "sparse num": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
            "city name": np.where(rng.random(n) < 0.2, None, rng.choice(["Oslo", "Rom"], n)),
            "label": rng.choice(["yes", "no"], n),
        }
    )


def test_awkward_names_missing_values_and_booleans(awkward: pd.DataFrame) -> None:
    spec = build_spec(awkward, "label")
    assert _kinds(spec) == {
        "monthly income (€)": "numeric",
        "a.b.c": "numeric",
        "größe": "categorical",
        "has pet?": "boolean",
        "maybe bool": "boolean",
        "sparse num": "numeric",
        "city name": "categorical",
    }
    assert spec.feature("a.b.c").dtype == "int64"
    assert spec.feature("has pet?").dtype == "bool" and not spec.feature("has pet?").nullable
    assert spec.feature("maybe bool").nullable
    assert spec.feature("sparse num").nullable and spec.feature("sparse num").dtype == "float64"
    assert spec.feature("city name").nullable
    assert spec.feature("city name").profile.missing > 0  # type: ignore[union-attr]
    assert spec.target.classes == ["no", "yes"]


def test_json_round_trip_is_equal(awkward: pd.DataFrame) -> None:
    for spec in (build_spec(awkward, "label"), build_spec(load_builtin("titanic"), "Survived")):
        again = FeatureSpec.from_json(spec.to_json())
        assert again == spec
        assert again.to_json() == spec.to_json()


def test_schema_version_mismatch_is_refused() -> None:
    spec = build_spec(load_builtin("iris"), "species")
    raw = spec.to_json().replace(b'"schema_version": 2', b'"schema_version": 99')
    with pytest.raises(ValueError, match="schema_version"):
        FeatureSpec.from_json(raw)


def test_a_version_1_spec_still_loads_with_its_categories() -> None:
    # Models registered before schema 2 kept categories only in the profile.
    spec = build_spec(load_builtin("titanic"), "Survived")
    old = orjson.loads(spec.to_json())
    old["schema_version"] = 1
    for feature in old["features"]:
        feature.pop("categories"), feature.pop("example")
    old.pop("sources")
    loaded = FeatureSpec.from_json(orjson.dumps(old))
    assert loaded.feature("Sex").categories == spec.feature("Sex").categories
    assert loaded.schema_version == 2
