"""The one model every server serves: trained, registered, pickled, and its answers known.

Every server in the run gets the same Titanic pipeline: tabserve and ``mlflow models serve``
from the registry (``models:/titanic@champion``), the hand-written server and MLServer from a
joblib pickle of the very same pipeline object. The expected labels come from that pipeline's
own ``predict`` on the same records, so each server's answers can be compared with them.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabserve.settings import Settings
from tabserve.spec import FeatureSpec

MODEL_NAME = "titanic"
ALIAS = "champion"
MODEL_URI = f"models:/{MODEL_NAME}@{ALIAS}"
PICKLE_FILE = "model.joblib"

Record = dict[str, Any]


@dataclass(frozen=True)
class Workbench:
    """Everything the servers and the checks need, all under one temporary directory."""

    home: Path  # TABSERVE_HOME: mlflow.db, mlartifacts/, model cache
    model_dir: Path  # the tabserve model directory as trained
    pickle_path: Path  # joblib dump of the sklearn pipeline (hand-written server, MLServer)
    spec: FeatureSpec
    records: list[Record]  # distinct single records, no missing values
    labels: list[Any]  # the sklearn pipeline's predicted label for each record
    positive_proba: list[float]  # its probability of the last class, for a stricter check
    family: str

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home)

    @property
    def tracking_uri(self) -> str:
        return self.settings.resolved_tracking_uri()


def prepare_workbench(root: Path, *, family: str, pool: int, seed: int = 0) -> Workbench:
    """Train, register as champion, warm the registry cache, pickle, and predict the pool."""
    import joblib
    import mlflow.sklearn

    from tabserve.datasets import DATASETS, load_builtin, materialize
    from tabserve.loadtest.payloads import records_from_csv
    from tabserve.registry import register_model_dir, resolve
    from tabserve.training import fit_model_dir

    if root.exists():
        shutil.rmtree(root)
    home = root / "home"
    home.mkdir(parents=True)
    settings = Settings(home=home)
    trained = fit_model_dir(
        load_builtin(MODEL_NAME), DATASETS[MODEL_NAME].target, root / "model", family,
        name=MODEL_NAME, seed=seed,
    )  # fmt: skip
    if not trained.has_onnx:
        raise RuntimeError(f"the Titanic model has no ONNX export: {trained.info()}")
    register_model_dir(trained.path, MODEL_NAME, settings, alias=ALIAS)
    # The first `tabserve serve` would otherwise pay the artifact download in its cold start.
    resolve(MODEL_URI, settings)
    spec = trained.spec()
    pipeline = mlflow.sklearn.load_model(str(trained.path))
    pickle_path = root / PICKLE_FILE
    joblib.dump(pipeline, pickle_path)
    # Complete rows only: MLServer's JSON codec has no missing-number token, and every server
    # must get the same records.
    csv = materialize(MODEL_NAME, root / "data")
    records = _distinct(records_from_csv(csv, spec, pool * 4, seed=seed, allow_null=False))[:pool]
    labels, proba = expected_answers(pipeline, spec, records)
    return Workbench(home, trained.path, pickle_path, spec, records, labels, proba, family)


def _distinct(records: list[Record]) -> list[Record]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in records:
        key = tuple(r.values())
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def expected_answers(
    pipeline: Any, spec: FeatureSpec, records: list[Record]
) -> tuple[list[Any], list[float]]:
    """The sklearn pipeline's labels and last-class probabilities for ``records``."""
    import pandas as pd

    from tabserve.training.pipeline import prepare_frame

    frame = prepare_frame(pd.DataFrame(records, columns=spec.names), spec)
    labels = [v.item() if hasattr(v, "item") else v for v in pipeline.predict(frame)]
    proba = [float(row[-1]) for row in pipeline.predict_proba(frame)]
    return labels, proba


def model_input_record(spec: FeatureSpec, record: Record) -> Record:
    """A record as the pickled pipeline's signature wants it (MLflow serve, MLServer).

    The same encoding as tabserve's ``prepare_frame``: numbers as floats, categories as strings.
    """
    out: Record = {}
    for f in spec.features:
        value = record[f.name]
        if f.kind == "categorical":
            out[f.name] = "" if value is None else str(value)
        elif value is None:
            out[f.name] = math.nan
        else:
            out[f.name] = float(value)
    return out
