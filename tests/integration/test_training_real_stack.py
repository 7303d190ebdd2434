"""Train into the real stack (mlflow server + PostgreSQL + S3) and resolve the model back."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from rich.console import Console

from tabserve import registry
from tabserve.errors import ServiceUnavailable
from tabserve.settings import Settings
from tabserve.training.config import load_experiment
from tabserve.training.train import train
from tests.fixtures.mlflow_stack import MlflowServer, _boto_kwargs

pytestmark = pytest.mark.integration
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_train_register_resolve_through_server(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, tracking_uri=mlflow_server.url)
    config = load_experiment(CONFIGS / "titanic.yaml")
    config.cv_folds = 3
    config.registered_model = "titanic-stack"
    result = train(config, None, settings, Console(quiet=True))
    assert result.decision.moved and result.export.parity_ok

    model = registry.resolve("models:/titanic-stack@champion", settings)
    assert model.has_onnx and model.has_sklearn and model.version == result.version
    assert model.path.is_relative_to(tmp_path / ".tabserve" / "models")

    # The artifacts really are in S3 (not on the server's disk).
    s3 = boto3.client("s3", endpoint_url=mlflow_server.s3.endpoint, **_boto_kwargs())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=mlflow_server.s3.bucket)["Contents"]]
    assert any(k.endswith("model/model.onnx") for k in keys)
    assert any(k.endswith("model/feature_spec.json") for k in keys)

    # The registered directory is a servable MLflow model: this is the request path of
    # `mlflow models serve` (JSON body → schema enforcement → pyfunc predict).
    from mlflow.models import validate_serving_input

    body = (model.path / "serving_input_example.json").read_text()
    predictions = validate_serving_input(str(model.path), body)
    assert len(predictions) == 5


def test_dead_server_is_named(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9")
    with pytest.raises(ServiceUnavailable, match=r"127\.0\.0\.1:9"):
        registry.resolve("models:/titanic@champion", settings)
