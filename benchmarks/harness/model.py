"""The one model every server serves: a pipeline logged with plain MLflow, as a team would.

A Titanic Pipeline (ColumnTransformer: imputer + scaler for numbers, OneHotEncoder for
categories; then the family's estimator) is fitted on the raw frame and logged with
``mlflow.sklearn.log_model`` (signature and input example, no tabserve code), registered as
``models:/titanic@champion``. Every server gets that very model: tabserve and
``mlflow models serve`` from the registry (tabserve adopts it: FeatureSpec + ONNX, cached),
the hand-written FastAPI + pickle server and MLServer from a joblib dump of the same object,
the hand-written FastAPI + onnxruntime server from the ONNX file tabserve serves. The expected
labels come from the pipeline's own ``predict`` on the same records.
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


def plain_pipeline(family: str, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    estimators = {
        "logistic": LogisticRegression(max_iter=2000),
        "random_forest": RandomForestClassifier(100, max_depth=8, random_state=seed, n_jobs=1),
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
    }
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    pre = ColumnTransformer([
        ("numeric", numeric, ["Age", "SibSp", "Parch", "Fare"]),
        ("categories", OneHotEncoder(handle_unknown="ignore"), ["Pclass", "Sex", "Embarked"]),
    ])  # fmt: skip
    return Pipeline([("pre", pre), ("model", estimators[family])])


def prepare_workbench(root: Path, *, family: str, pool: int, seed: int = 0) -> Workbench:
    """Fit, log with plain MLflow, register as champion, adopt once (cache), pickle, predict."""
    import joblib
    import mlflow
    import pandas as pd

    from tabserve.adoption import resolve
    from tabserve.datasets import load_builtin, materialize
    from tabserve.loadtest.payloads import records_from_csv

    if root.exists():
        shutil.rmtree(root)
    home = root / "home"
    home.mkdir(parents=True)
    settings = Settings(home=home)
    frame = load_builtin(MODEL_NAME)
    features = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    pipeline = plain_pipeline(family, seed).fit(frame[features], frame["Survived"])
    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            pipeline, name="model", input_example=frame[features].head(5),
            registered_model_name=MODEL_NAME, serialization_format="cloudpickle",
        )  # fmt: skip
    client = mlflow.MlflowClient(settings.resolved_tracking_uri())
    version = client.get_latest_versions(MODEL_NAME)[0].version
    client.set_registered_model_alias(MODEL_NAME, ALIAS, version)
    # Adopt once here (FeatureSpec, ONNX with parity, cached beside the model): the servers'
    # cold start is then the cached start; benchmarks/serving.py measures the first one apart.
    adopted = resolve(MODEL_URI, settings)
    if not adopted.has_onnx:
        raise RuntimeError(f"the Titanic model did not convert to ONNX: {adopted.info()}")
    spec = adopted.spec()
    pickle_path = root / PICKLE_FILE
    joblib.dump(pipeline, pickle_path)
    # Complete rows only: MLServer's JSON codec has no missing-number token, and every server
    # must get the same records.
    csv = materialize(MODEL_NAME, root / "data")
    records = _distinct(records_from_csv(csv, spec, pool * 4, seed=seed, allow_null=False))[:pool]
    rows = pd.DataFrame(records, columns=spec.names)
    labels = [v.item() if hasattr(v, "item") else v for v in pipeline.predict(rows)]
    proba = [float(row[-1]) for row in pipeline.predict_proba(rows)]
    return Workbench(home, adopted.path, pickle_path, spec, records, labels, proba, family)


def _distinct(records: list[Record]) -> list[Record]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in records:
        key = tuple(r.values())
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def model_input_record(spec: FeatureSpec, record: Record) -> Record:
    """A record in the signature's own types (MLflow serve, MLServer): int64 columns as ints,
    float64 as floats, strings as strings — the raw frame the pipeline was fitted on."""
    out: Record = {}
    for f in spec.features:
        value = record[f.name]
        if value is None:
            out[f.name] = math.nan if f.dtype == "float64" else None
        elif f.dtype == "float64":
            out[f.name] = float(value)
        elif f.dtype == "int64":
            out[f.name] = int(value)
        else:
            out[f.name] = value
    return out
