"""Write a fitted pipeline as a tabserve model directory (see modeldir.py for the layout).

The directory is an MLflow sklearn model (with signature and input example, so
``mlflow models serve`` accepts it) plus feature_spec.json, model.onnx when it passed parity,
reference_sample.json and tabserve.json. The same directory is logged to MLflow as one model.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tabserve.modeldir import INFO_FILE, ONNX_FILE, REFERENCE_FILE, ModelDir
from tabserve.spec import FeatureSpec
from tabserve.training.onnx_export import ExportResult
from tabserve.training.pipeline import prepare_frame

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

REFERENCE_ROWS = 5000
INPUT_EXAMPLE_ROWS = 5


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "scikit-learn", "cloudpickle", "numpy")]


def reference_sample(frame: pd.DataFrame, spec: FeatureSpec, seed: int = 0) -> dict[str, list[Any]]:
    """Columnar JSON sample of the raw training features (the drift reference), ≤ 5000 rows."""
    sample = (
        frame if len(frame) <= REFERENCE_ROWS else frame.sample(REFERENCE_ROWS, random_state=seed)
    )
    out: dict[str, list[Any]] = {}
    for f in spec.features:
        values = sample[f.name].tolist()
        out[f.name] = [None if _missing(v) else _plain(v) for v in values]
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is _NA()


def _NA() -> Any:
    import pandas as pd

    return pd.NA


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_model_dir(
    out_dir: Path,
    pipeline: Pipeline,
    spec: FeatureSpec,
    export: ExportResult,
    train_frame: pd.DataFrame,
    info: dict[str, Any] | None = None,
) -> ModelDir:
    """Save everything into ``out_dir`` (replaced if it exists) and return it as a ModelDir."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    example = prepare_frame(train_frame.head(INPUT_EXAMPLE_ROWS), spec)
    signature = infer_signature(example, pipeline.predict(example))
    # The warning about pickle formats is answered in the comment below; keep output clean.
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    mlflow.sklearn.save_model(
        pipeline,
        str(out_dir),
        signature=signature,
        input_example=example,
        # cloudpickle, not skops (MLflow 3.17's default): skops refuses types every family
        # here holds (each fitted SimpleImputer keeps a ``numpy.dtype`` in ``_fit_dtype``,
        # forests hold ``sklearn.tree._tree.Tree``, which skops flags as unsafe to trust), so
        # skops would need a per-family trust list that defeats its point. Models come from
        # our own registry; treat the registry as trusted code.
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        # Stated, not inferred: inference loads the model in a subprocess (seconds per save).
        pip_requirements=_pip_requirements(),
    )
    spec.save(out_dir)
    if export.onnx_bytes is not None:
        (out_dir / ONNX_FILE).write_bytes(export.onnx_bytes)
    sample = reference_sample(train_frame, spec)
    (out_dir / REFERENCE_FILE).write_bytes(orjson.dumps(sample))
    facts = {"task": spec.target.task, **export.info(), **(info or {})}
    (out_dir / INFO_FILE).write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2))
    return ModelDir(out_dir)
