"""The shared model fixtures are what other areas build on: check their contract once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from tabserve.modeldir import ModelDir
from tabserve.settings import Settings


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])


def test_titanic_model_dir_follows_the_onnx_contract(titanic_model_dir: Path) -> None:
    model = ModelDir(titanic_model_dir)
    model.check()
    spec = model.spec()
    assert spec.names == ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    session = _session(titanic_model_dir)
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs["Sex"] == "tensor(string)" and inputs["Age"] == "tensor(double)"
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    feeds = {
        f.name: np.array([[str(f.typical_value())]])
        if f.kind == "categorical"
        else np.array([[float(f.typical_value())]])
        for f in spec.features
    }
    feeds["Age"] = np.array([[np.nan]])  # missing numeric → NaN is imputed, not an error
    feeds["Embarked"] = np.array([[""]])  # missing category → ""
    label, probabilities = session.run(None, feeds)
    assert label.shape == (1,) and probabilities.shape == (1, 2)
    assert abs(float(probabilities.sum()) - 1.0) < 1e-6
    assert model.info()["onnx_parity_ok"] is True
    assert len(model.reference_sample()["Age"]) > 100


def test_regression_fixture_outputs_variable(diabetes_model_dir: Path) -> None:
    session = _session(diabetes_model_dir)
    assert [o.name for o in session.get_outputs()] == ["variable"]
    assert ModelDir(diabetes_model_dir).spec().target.task == "regression"


def test_titanic_registry_resolves_champion(titanic_registry: tuple[Path, Settings]) -> None:
    from tabserve.registry import current_alias_version, resolve

    home, settings = titanic_registry
    model = resolve("models:/titanic@champion", settings)
    assert model.name == "titanic" and model.version == "1" and model.has_onnx
    assert model.path.is_relative_to(home)
    assert current_alias_version("titanic", "champion", settings) == "1"
