"""Runtimes: ONNX (default) and sklearn (fallback) give the same answers on the same columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tabserve.errors import UserError
from tabserve.modeldir import ModelDir
from tabserve.serving.runtimes import OnnxRuntime, SklearnRuntime, load_runtime
from tabserve.serving.validation import ValidationOptions, validate_columns


def reference_columns(model: ModelDir, n: int = 200) -> tuple[dict[str, np.ndarray], int]:
    sample = model.reference_sample()
    n = min(n, len(next(iter(sample.values()))))
    columns = {name: sample[name][:n] for name in model.spec().names}
    batch = validate_columns(model.spec(), columns, n, ValidationOptions(coerce=True))
    return batch.columns, n


@pytest.mark.parametrize("fixture", ["titanic_model_dir", "heart_model_dir"])
def test_onnx_and_sklearn_agree_on_classifiers(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    model = ModelDir(Path(request.getfixturevalue(fixture)))
    columns, n = reference_columns(model)
    onnx = OnnxRuntime(model).predict(columns)
    sk = SklearnRuntime(model).predict(columns)
    assert onnx.probabilities is not None and sk.probabilities is not None
    assert onnx.probabilities.shape == (n, len(model.spec().target.classes or []))
    np.testing.assert_allclose(onnx.probabilities, sk.probabilities, atol=1e-5)
    assert (onnx.labels == sk.labels).mean() > 0.99  # ties at p=0.5 may break either way


def test_onnx_and_sklearn_agree_on_regression(diabetes_model_dir: Path) -> None:
    model = ModelDir(diabetes_model_dir)
    columns, n = reference_columns(model)
    onnx = OnnxRuntime(model).predict(columns)
    sk = SklearnRuntime(model).predict(columns)
    assert onnx.probabilities is None and onnx.labels.shape == (n,)
    np.testing.assert_allclose(onnx.labels, sk.labels, rtol=1e-4)


def test_missing_onnx_is_a_user_error_that_says_why(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(titanic_model_dir, copy)
    (copy / "model.onnx").unlink()
    # What training records when the export fails (tabserve.json "onnx_reason").
    reason = "parity failed on 179 test rows: 3 label mismatches"
    ModelDir(copy).write_info(onnx=False, onnx_reason=reason)
    with pytest.raises(UserError, match="--runtime native") as exc:
        load_runtime(ModelDir(copy), "onnx")
    assert reason in str(exc.value)
    assert load_runtime(ModelDir(copy), "sklearn").name == "sklearn"
