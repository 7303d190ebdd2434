"""XGBoost and LightGBM in the grid: fitted on the target's own labels, exported to ONNX with
parity, and served by the ONNX runtime with the same answers as the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tabserve.datasets import DATASETS, load_builtin
from tabserve.serving.runtimes import NativeRuntime, OnnxRuntime
from tabserve.serving.validation import ValidationOptions, validate_columns
from tabserve.training import fit_model_dir
from tabserve.training.init_config import init_configs


@pytest.mark.parametrize(
    ("dataset", "family"),
    [("iris", "xgboost"), ("titanic", "xgboost"), ("iris", "lightgbm"), ("diabetes", "lightgbm")],
)
def test_family_exports_to_onnx_and_answers_like_the_pipeline(
    tmp_path: Path, dataset: str, family: str
) -> None:
    model = fit_model_dir(
        load_builtin(dataset),
        DATASETS[dataset].target,
        tmp_path / "m",
        family,
        {"n_estimators": 30},
    )
    assert model.has_onnx, model.info()
    spec = model.spec()
    sample = model.reference_sample()
    n = 100
    columns = {name: sample[name][:n] for name in spec.names}
    batch = validate_columns(spec, columns, n, ValidationOptions(coerce=True))
    onnx = OnnxRuntime(model).predict(batch.columns)
    native = NativeRuntime(model).predict(batch.columns)
    if spec.target.task == "classification":
        # XGBoost wants labels 0..k-1; the served model answers with the target's own labels.
        assert set(onnx.labels.tolist()) <= set(spec.target.classes or [])
        assert (onnx.labels == native.labels).all()
        np.testing.assert_allclose(onnx.probabilities, native.probabilities, atol=1e-5)  # type: ignore[arg-type]
    else:
        np.testing.assert_allclose(onnx.labels, native.labels, rtol=1e-4)


def test_init_puts_the_installed_boosting_families_in_the_grid(tmp_path: Path) -> None:
    result = init_configs("builtin:heart", "target", tmp_path)
    grid = result.grid.read_text()
    assert "family: xgboost" in grid and "family: lightgbm" in grid
