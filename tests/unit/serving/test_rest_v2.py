"""v2 routes in-process on the real app (Starlette's TestClient runs the lifespan, so the model
really loads): readiness before load, output selection, limits, regression outputs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tabserve.modeldir import ModelDir
from tabserve.serving.app import create_app
from tabserve.serving.codecs.v2_model import input_datatype
from tabserve.settings import Settings

READY_TIMEOUT_S = 60


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(home=tmp_path, log_db="off", **overrides)


def _loaded(client: TestClient) -> TestClient:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while client.get("/v2/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "model did not load"
        time.sleep(0.05)
    return client


@pytest.fixture
def titanic(titanic_model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(_settings(tmp_path, max_rows=5), titanic_model_dir, prediction_log=None)
    with TestClient(app) as client:
        yield _loaded(client)


def _request(model_dir: Path, rows: int = 1, **extra: Any) -> dict[str, Any]:
    model = ModelDir(model_dir)
    sample = model.reference_sample()
    inputs = []
    for f in model.spec().features:
        values = sample[f.name][:rows]
        if input_datatype(f) == "BYTES":
            values = ["" if v is None else str(v) for v in values]
        inputs.append(
            {"name": f.name, "datatype": input_datatype(f), "shape": [rows], "data": values}
        )
    return {"inputs": inputs, **extra}


def titanic_record() -> dict[str, Any]:
    return {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25,
            "Embarked": "S"}  # fmt: skip


def _infer(client: TestClient, model: str, body: dict[str, Any]) -> Any:
    return client.post(f"/v2/models/{model}/infer", content=orjson.dumps(body))


def test_not_ready_until_the_model_is_loaded(titanic_model_dir: Path, tmp_path: Path) -> None:
    # Without entering the lifespan the model never loads: the state a server is in at start.
    client = TestClient(create_app(_settings(tmp_path), titanic_model_dir, prediction_log=None))
    assert client.get("/v2/health/live").status_code == 200
    for path in ("/v2/health/ready", "/v2/models/titanic", "/v2/models/titanic/ready"):
        response = client.get(path)
        assert response.status_code == 503 and "error" in response.json()


def test_requested_outputs_and_binary_choice(titanic: TestClient, titanic_model_dir: Path) -> None:
    body = _request(titanic_model_dir, outputs=[{"name": "probabilities"}])
    response = _infer(titanic, "titanic", body)
    assert response.status_code == 200
    assert [o["name"] for o in response.json()["outputs"]] == ["probabilities"]

    body = _request(titanic_model_dir, parameters={"binary_data_output": True})
    response = _infer(titanic, "titanic", body)
    header_length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:header_length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert len(response.content) == header_length + sum(sizes)
    assert sizes == [8, 16]  # one INT64 label, two FP64 probabilities

    response = _infer(titanic, "titanic", _request(titanic_model_dir, outputs=[{"name": "nope"}]))
    assert response.status_code == 400 and "nope" in response.json()["error"]


def test_row_limits(titanic: TestClient, titanic_model_dir: Path) -> None:
    # The same limit and status as v1 (the data plane enforces it once for every protocol).
    too_many = _infer(titanic, "titanic", _request(titanic_model_dir, rows=6))
    assert too_many.status_code == 413 and "5-record limit" in too_many.json()["error"]
    v1 = titanic.post("/predict", json=[titanic_record()] * 6)
    assert v1.status_code == 413 and v1.json()["error"] == too_many.json()["error"]
    empty = _infer(titanic, "titanic", _request(titanic_model_dir, rows=0))
    assert empty.status_code == 400 and "no records" in empty.json()["error"]
    assert titanic.get("/v2/models/titanic/config").json()["max_batch_size"] == 5


def test_validation_error_names_fields_and_keeps_details(
    titanic: TestClient, titanic_model_dir: Path
) -> None:
    body = _request(titanic_model_dir, rows=2)
    for tensor in body["inputs"]:
        if tensor["name"] == "Sex":
            tensor["data"] = ["male", "robot"]
    body["inputs"].append({"name": "Cabin", "datatype": "BYTES", "shape": [2], "data": ["", ""]})
    response = _infer(titanic, "titanic", body)
    assert response.status_code == 400
    error = response.json()
    assert "Sex" in error["error"] and "row 1" in error["error"] and "Cabin" in error["error"]
    reasons = {(d["field"], d["reason"]) for d in error["details"]}
    assert reasons == {("Sex", "unknown_category"), ("Cabin", "extra_field")}


def test_regression_outputs_a_prediction(diabetes_model_dir: Path, tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), diabetes_model_dir, prediction_log=None)
    with TestClient(app) as client:
        _loaded(client)
        meta = client.get("/v2/models/diabetes").json()
        assert meta["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        response = _infer(client, "diabetes", _request(diabetes_model_dir, rows=3))
        assert response.status_code == 200, response.text
        (output,) = response.json()["outputs"]
        assert output["name"] == "prediction" and output["shape"] == [3]
        assert all(isinstance(v, float) for v in output["data"])
