"""Models tabserve never saw — logged here with plain MLflow, no tabserve code — served by
`tabserve serve models:/...` and answered as MLflow itself answers them, over /predict,
/invocations (MLflow's protocol), /v1/models/{m}:predict (KServe v1) and /v2 (OIP)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tabserve.datasets import load_builtin
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration

TITANIC = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


@dataclass
class Registered:
    uri: str
    name: str
    frame: pd.DataFrame  # rows to send (features only), with missing values where data has them
    target: str


@dataclass
class Store:
    home: Path
    tracking_uri: str
    models: dict[str, Registered]

    def env(self) -> dict[str, str]:
        return {"TABSERVE_HOME": str(self.home), "TABSERVE_TRACKING_URI": self.tracking_uri}


def _titanic_pipeline(extra: Any = None) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    steps = [("impute", SimpleImputer(strategy="median"))]
    if extra is not None:
        steps.append(("custom", extra))
    fares = Pipeline(steps)
    return Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("numeric", numeric, ["Age", "SibSp", "Parch"]),
                        ("fare", fares, ["Fare"]),
                        # Embarked has missing values: the encoder learns NaN as a category.
                        ("categories", OneHotEncoder(handle_unknown="ignore"),
                         ["Pclass", "Sex", "Embarked"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    import lightgbm
    import mlflow
    import xgboost
    from sklearn.preprocessing import FunctionTransformer

    warnings.filterwarnings("ignore")
    home = tmp_path_factory.mktemp("plain-mlflow-home")
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.set_experiment("plain")
    assert experiment.artifact_location
    client = mlflow.MlflowClient(tracking_uri)
    titanic = load_builtin("titanic")
    heart = load_builtin("heart")
    diabetes = load_builtin("diabetes")
    models: dict[str, Registered] = {}

    def register(name: str, info: Any, frame: pd.DataFrame, target: str) -> None:
        version = client.get_latest_versions(name)[0].version
        client.set_registered_model_alias(name, "prod", version)
        models[name] = Registered(f"models:/{name}@prod", name, frame, target)

    x, y = titanic[TITANIC], titanic["Survived"]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            _titanic_pipeline().fit(x, y), name="model", input_example=x.head(5),
            registered_model_name="titanic-plain", skops_trusted_types=["numpy.dtype"],
        )  # fmt: skip
    register("titanic-plain", info, x, "Survived")

    # A step skl2onnx cannot convert: served by its native runtime, and says so.
    custom = FunctionTransformer(np.log1p)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            _titanic_pipeline(custom).fit(x, y), name="model", input_example=x.head(5),
            registered_model_name="titanic-custom", serialization_format="cloudpickle",
        )  # fmt: skip
    register("titanic-custom", info, x, "Survived")

    hx, hy = heart.drop(columns=["target"]), heart["target"]
    with mlflow.start_run():
        clf = xgboost.XGBClassifier(n_estimators=40, max_depth=3).fit(hx, hy)
        info = mlflow.xgboost.log_model(
            clf, name="model", input_example=hx.head(5), registered_model_name="heart-xgb"
        )
    register("heart-xgb", info, hx, "target")

    dx, dy = diabetes.drop(columns=["target"]), diabetes["target"]
    with mlflow.start_run():
        reg = lightgbm.LGBMRegressor(n_estimators=60, verbose=-1).fit(dx, dy)
        info = mlflow.lightgbm.log_model(
            reg, name="model", input_example=dx.head(5), registered_model_name="diabetes-lgbm"
        )
    register("diabetes-lgbm", info, dx, "target")
    yield Store(home, tracking_uri, models)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
    return out


def mlflow_answers(store: Store, model: Registered, rows: pd.DataFrame) -> tuple[list, Any]:
    """What MLflow itself answers: pyfunc labels, and the native model's probabilities."""
    import mlflow

    mlflow.set_tracking_uri(store.tracking_uri)
    labels = np.asarray(mlflow.pyfunc.load_model(model.uri).predict(rows)).reshape(-1).tolist()
    native = mlflow.pyfunc.load_model(model.uri).get_raw_model()
    probabilities = native.predict_proba(rows) if hasattr(native, "predict_proba") else None
    return labels, probabilities


def v2_request(metadata: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = []
    for tensor in metadata["inputs"]:
        values = [r[tensor["name"]] for r in rows]
        inputs.append({"name": tensor["name"], "datatype": tensor["datatype"],
                       "shape": [len(rows), 1], "data": values})  # fmt: skip
    return {"inputs": inputs}


def close(got: list[float], want: list[float], tolerance: float) -> bool:
    return len(got) == len(want) and all(
        abs(a - b) <= tolerance for a, b in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("name", ["titanic-plain", "heart-xgb", "diabetes-lgbm", "titanic-custom"])
def test_served_like_mlflow_over_every_protocol(store: Store, name: str) -> None:
    model = store.models[name]
    # The first rows, and for Titanic the two whose Embarked is missing (a NaN category).
    picked = [*range(50), 61, 829] if name.startswith("titanic") else list(range(60))
    rows = model.frame.iloc[picked].reset_index(drop=True)
    if name.startswith("titanic"):
        assert rows["Embarked"].isna().sum() == 2 and rows["Age"].isna().any()
    want_labels, want_probs = mlflow_answers(store, model, rows)
    body = records(rows)
    with running_server(model.uri, env=store.env(), ready_timeout=120) as server:
        url = server.url
        spec = httpx.get(f"{url}/spec").json()
        metadata = httpx.get(f"{url}/v2/models/{name}").json()

        v1 = httpx.post(f"{url}/predict", json=body, timeout=30).json()["predictions"]
        split = {"columns": list(rows.columns), "data": [list(r.values()) for r in body]}
        mlflow_split = httpx.post(f"{url}/invocations", json={"dataframe_split": split}).json()
        kserve = httpx.post(f"{url}/v1/models/{name}:predict", json={"instances": body}).json()
        v2 = httpx.post(f"{url}/v2/models/{name}/infer", json=v2_request(metadata, body)).json()
        log = server.log()

    tolerance = 1e-5 if spec["target"]["task"] == "classification" else 1e-4
    got_v2 = next(o for o in v2["outputs"] if o["name"] in ("label", "prediction"))["data"]
    for answers in (
        [p["prediction"] for p in v1],
        mlflow_split["predictions"],
        kserve["predictions"],
        got_v2,
    ):
        if spec["target"]["task"] == "classification":
            assert answers == want_labels
        else:
            assert close(answers, want_labels, tolerance * max(1.0, max(map(abs, want_labels))))
    if want_probs is not None:
        keys = [str(c) for c in spec["target"]["classes"]]
        got = np.array([[p["probabilities"][k] for k in keys] for p in v1])
        np.testing.assert_allclose(got, want_probs, atol=1e-5)
    # Where each part of the spec came from, in the answer's metadata.
    assert spec["sources"]["features"].startswith("the MLflow signature")
    assert spec["sources"]["profile"].startswith("none")
    assert metadata["parameters"]["feature_spec_sources"] == spec["sources"]
    if name == "titanic-custom":
        assert metadata["platform"] == "tabserve_sklearn"
        assert "without ONNX" in log and "native sklearn runtime" in log
    else:
        assert metadata["platform"] == "onnxruntime_onnx", log


def test_titanic_spec_from_the_models_own_encoders(store: Store) -> None:
    model = store.models["titanic-plain"]
    titanic_csv = Path(__file__).parents[2] / "src" / "tabserve" / "data" / "titanic.csv"
    args = ("--reference", str(titanic_csv), "--target", "Survived")
    with running_server(model.uri, *args, env=store.env(), ready_timeout=120) as server:
        spec = httpx.get(f"{server.url}/spec").json()
        features = {f["name"]: f for f in spec["features"]}
        # Categories from the OneHotEncoder (Pclass is an integer code), missing ones from
        # what the model learned: Embarked had NaN in training, Sex did not.
        assert features["Pclass"]["categories"] == ["1", "2", "3"]
        assert features["Pclass"]["kind"] == "categorical"
        assert features["Embarked"]["nullable"] and not features["Sex"]["nullable"]
        assert features["Age"]["nullable"]  # an imputer takes it
        assert spec["target"] == {"name": "Survived", "task": "classification", "classes": [0, 1]}
        assert "reference data" in spec["sources"]["profile"]
        assert features["Age"]["profile"]["max"] == 80.0
        # The reference project's request, verbatim (no Embarked), and a bad one.
        request = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
        ok = httpx.post(f"{server.url}/predict", json=request)
        assert ok.status_code == 200
        bad = httpx.post(f"{server.url}/predict", json={**request, "Pclass": 4, "Sex": "robot"})
        assert bad.status_code == 400
        assert {(d["field"], d["reason"]) for d in bad.json()["details"]} == {
            ("Pclass", "unknown_category"), ("Sex", "unknown_category")}  # fmt: skip
        far = httpx.post(f"{server.url}/predict", json={**request, "Age": 300})
        assert far.json()["warnings"]  # a reference gives the out-of-range guard its ranges


def test_second_start_reads_the_adoption_from_the_cache(store: Store) -> None:
    model = store.models["heart-xgb"]
    with running_server(model.uri, env=store.env(), ready_timeout=120) as server:
        assert httpx.get(f"{server.url}/ready").status_code == 200
        log = server.log()
    assert "adopting" not in log  # adopted by the first test's server, cached beside the model


def test_import_a_joblib_pipeline_then_the_champion_rule(store: Store, tmp_path: Path) -> None:
    import joblib

    from tabserve.cli import main  # noqa: F401  (the CLI is what a user runs)

    x, y = store.models["titanic-plain"].frame, load_builtin("titanic")["Survived"]
    path = tmp_path / "pipeline.joblib"
    joblib.dump(_titanic_pipeline().fit(x, y), path)
    data = tmp_path / "train.csv"
    load_builtin("titanic").to_csv(data, index=False)
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tabserve", *args], capture_output=True,
                              text=True, timeout=300, env={**__import__("os").environ,
                                                           **store.env()})  # fmt: skip

    argv = ("import", str(path), "--data", str(data), "--target", "Survived", "--name", "imported")
    first = run(*argv)
    assert first.returncode == 0, first.stderr
    assert "registered imported version 1" in first.stdout and "ONNX: exported" in first.stdout
    assert "no champion yet: version 1 is champion" in first.stdout
    assert "unpickles it, which runs any code" in first.stderr
    second = run(*argv)
    assert second.returncode == 0, second.stderr
    assert "champion stays version 1" in second.stdout and "ties" in second.stdout
    with running_server("models:/imported@champion", env=store.env(), ready_timeout=120) as s:
        spec = httpx.get(f"{s.url}/spec").json()
        assert (
            spec["target"]["name"] == "Survived" and "reference data" in spec["sources"]["profile"]
        )
        answer = httpx.post(f"{s.url}/predict", json=records(x.head(3))).json()
        assert len(answer["predictions"]) == 3 and answer["version"] == "1"
