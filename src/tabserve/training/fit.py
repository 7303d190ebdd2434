"""Fitting one pipeline: the train/test split, the target encoding and the quick library path.

``fit_model_dir`` is the shortest way from a DataFrame to a servable model directory (no
MLflow tracking, no grid); tests and notebooks use it, ``tabserve train`` uses the pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabserve.modeldir import ModelDir
from tabserve.spec import FeatureSpec, Kind, Task
from tabserve.training.onnx_export import export_with_parity
from tabserve.training.pipeline import build_pipeline, prepare_frame
from tabserve.training.profile import build_spec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline


def target_values(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The target column as the estimator sees it: labels typed like ``spec.target.classes``."""
    import numpy as np

    series = frame[spec.target.name]
    if spec.target.task == "regression":
        return series.to_numpy(dtype="float64")
    classes = spec.target.classes or []
    if classes and all(isinstance(c, bool) for c in classes):
        return series.astype(bool).to_numpy()
    if classes and all(isinstance(c, int) for c in classes):
        return series.astype("int64").to_numpy()
    if classes and all(isinstance(c, str) for c in classes):
        return np.asarray([str(v) for v in series.tolist()], dtype=object)
    return series.to_numpy()


def split_frame(
    frame: pd.DataFrame, spec: FeatureSpec, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split, stratified on the label for classification when every class can be."""
    from sklearn.model_selection import train_test_split

    frame = frame[frame[spec.target.name].notna()]
    stratify = None
    if spec.target.task == "classification":
        counts = frame[spec.target.name].value_counts()
        if counts.min() >= 2:
            stratify = frame[spec.target.name]
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    return train, test


def fit_pipeline(
    train: pd.DataFrame,
    spec: FeatureSpec,
    family: str,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> Pipeline:
    pipeline = build_pipeline(spec, family, params, seed)
    pipeline.fit(prepare_frame(train, spec), target_values(train, spec))
    return pipeline


def fit_model_dir(
    frame: pd.DataFrame,
    target: str,
    out_dir: Path,
    family: str = "logistic",
    params: dict[str, Any] | None = None,
    *,
    features: list[str] | None = None,
    exclude: list[str] | None = None,
    kinds: dict[str, Kind] | None = None,
    task: Task | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    name: str | None = None,
) -> ModelDir:
    """Profile, split, fit one pipeline, export ONNX with parity and write a model directory."""
    spec = build_spec(frame, target, features=features, exclude=exclude, kinds=kinds, task=task)
    train, test = split_frame(frame, spec, test_size, seed)
    pipeline = fit_pipeline(train, spec, family, params, seed)
    export = export_with_parity(pipeline, spec, test)
    from tabserve.training.artifacts import write_model_dir

    info: dict[str, Any] = {"family": family, "params": params or {}}
    if name:
        info["name"] = name
    return write_model_dir(Path(out_dir), pipeline, spec, export, train, info)
