"""Open Inference Protocol v2 against a real ``tabserve serve`` process, driven by Triton's own
Python client (binary tensors by default, and JSON) and by plain HTTP as the kserve spec shows."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tabserve.modeldir import ModelDir
from tabserve.serving.codecs.v2_model import input_datatype
from tabserve.spec import FeatureSpec
from tests.fixtures.servers import ServerProcess, running_server

pytestmark = pytest.mark.integration

MODEL = "titanic"
N_RECORDS = 40


@pytest.fixture(scope="module")
def server(titanic_model_dir: Path) -> Iterator[ServerProcess]:
    with running_server(titanic_model_dir, "--ood", "warn") as process:
        yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    yield c
    c.close()


@pytest.fixture(scope="module")
def spec(titanic_model_dir: Path) -> FeatureSpec:
    return ModelDir(titanic_model_dir).spec()


@pytest.fixture(scope="module")
def records(titanic_model_dir: Path, spec: FeatureSpec) -> list[dict[str, Any]]:
    """Real rows from the training sample, including missing Age and Embarked values."""
    sample = ModelDir(titanic_model_dir).reference_sample()
    rows = [{f.name: sample[f.name][i] for f in spec.features} for i in range(N_RECORDS)]
    rows[0]["Age"] = None
    rows[1]["Embarked"] = None
    return rows


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column(spec: FeatureSpec, name: str, records: list[dict[str, Any]]) -> np.ndarray:
    datatype = input_datatype(spec.feature(name))
    values = [r[name] for r in records]
    if datatype == "BYTES":
        return np.array([["" if _is_missing(v) else str(v)] for v in values], dtype=object)
    if datatype == "FP64":
        return np.array([[np.nan if _is_missing(v) else v] for v in values], dtype=np.float64)
    return np.array([[v] for v in values], dtype=np.int64)


def _inputs(
    spec: FeatureSpec, records: list[dict[str, Any]], binary: bool
) -> list[triton.InferInput]:
    inputs = []
    for f in spec.features:
        array = _column(spec, f.name, records)
        tensor = triton.InferInput(f.name, list(array.shape), input_datatype(f))
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return inputs


def _v1(server: ServerProcess, records: list[dict[str, Any]]) -> tuple[list[Any], np.ndarray]:
    body = [{k: None if _is_missing(v) else v for k, v in r.items()} for r in records]
    answer = httpx.post(f"{server.url}/predict", json=body, timeout=30).json()
    labels = [p["prediction"] for p in answer["predictions"]]
    probs = np.array([list(p["probabilities"].values()) for p in answer["predictions"]])
    return labels, probs


def test_health_and_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    version = client.get_model_metadata(MODEL)["versions"][0]
    assert client.is_model_ready(MODEL, version)
    assert not client.is_model_ready("no-such-model")
    assert not client.is_model_ready(MODEL, "999")


def test_server_metadata_lists_only_what_exists(server: ServerProcess) -> None:
    meta = httpx.get(f"{server.url}/v2").json()
    assert meta["name"] == "tabserve"
    assert set(meta["extensions"]) == {"binary_tensor_data", "model_configuration"}
    stats = httpx.get(f"{server.url}/v2/models/{MODEL}/stats")
    assert stats.status_code == 404 and "error" in stats.json()


def test_metadata_and_config_follow_the_spec(
    client: triton.InferenceServerClient, spec: FeatureSpec
) -> None:
    meta = client.get_model_metadata(MODEL)
    assert meta["name"] == MODEL
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        (f.name, input_datatype(f)) for f in spec.features
    ]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    config = client.get_model_config(MODEL)
    assert config["max_batch_size"] > 0
    assert [i["name"] for i in config["input"]] == spec.names
    assert {o["name"] for o in config["output"]} == {"label", "probabilities"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_agrees_with_predict(
    client: triton.InferenceServerClient,
    server: ServerProcess,
    spec: FeatureSpec,
    records: list[dict[str, Any]],
    binary: bool,
) -> None:
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer(
        MODEL, _inputs(spec, records, binary), outputs=outputs, request_id="req-42"
    )
    assert result.get_response()["id"] == "req-42"
    labels, probs = _v1(server, records)
    assert result.as_numpy("label").tolist() == labels
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=0, atol=1e-9)
    assert result.as_numpy("probabilities").shape == (N_RECORDS, len(spec.target.classes or []))


def test_default_infer_is_all_binary_and_gzip_works(
    client: triton.InferenceServerClient, spec: FeatureSpec, records: list[dict[str, Any]]
) -> None:
    plain = client.infer(MODEL, _inputs(spec, records, True))
    packed = client.infer(MODEL, _inputs(spec, records, True), request_compression_algorithm="gzip")
    assert {o["name"] for o in plain.get_response()["outputs"]} == {"label", "probabilities"}
    assert all("binary_data_size" in o["parameters"] for o in plain.get_response()["outputs"])
    np.testing.assert_array_equal(plain.as_numpy("label"), packed.as_numpy("label"))


def test_errors_reach_tritonclient_with_their_message(
    client: triton.InferenceServerClient, spec: FeatureSpec, records: list[dict[str, Any]]
) -> None:
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no-such-model", _inputs(spec, records[:1], True))
    assert unknown.value.status() == "404" and "no-such-model" in unknown.value.message()

    bad = [dict(records[0], Sex="robot")]
    with pytest.raises(InferenceServerException) as invalid:
        client.infer(MODEL, _inputs(spec, bad, True))
    assert invalid.value.status() == "400"
    assert "Sex" in invalid.value.message() and "robot" in invalid.value.message()

    missing = [t for t in _inputs(spec, records[:1], True) if t.name() != "Fare"]
    with pytest.raises(InferenceServerException) as absent:
        client.infer(MODEL, missing)
    assert absent.value.status() == "400" and "Fare" in absent.value.message()


def _json_request(spec: FeatureSpec, record: dict[str, Any], nested: bool) -> dict[str, Any]:
    inputs = []
    for f in spec.features:
        value = record[f.name]
        datatype = input_datatype(f)
        if _is_missing(value):
            value = "" if datatype == "BYTES" else None
        inputs.append(
            {
                "name": f.name,
                "datatype": datatype,
                "shape": [1, 1] if nested else [1],
                "data": [[value]] if nested else [value],
            }
        )
    return {"id": "plain-1", "inputs": inputs}


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_plain_json_as_the_spec_shows(
    server: ServerProcess, spec: FeatureSpec, records: list[dict[str, Any]], nested: bool
) -> None:
    response = httpx.post(
        f"{server.url}/v2/models/{MODEL}/infer",
        content=orjson.dumps(_json_request(spec, records[0], nested)),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert "inference-header-content-length" not in response.headers
    body = response.json()
    assert body["id"] == "plain-1" and body["model_name"] == MODEL
    outputs = {o["name"]: o for o in body["outputs"]}
    labels, probs = _v1(server, records[:1])
    assert outputs["label"]["data"] == labels
    assert outputs["probabilities"]["shape"] == [1, 2]
    np.testing.assert_allclose(outputs["probabilities"]["data"], probs.ravel(), atol=1e-9)


def test_protocol_errors_are_400_with_error_key(
    server: ServerProcess, spec: FeatureSpec, records: list[dict[str, Any]]
) -> None:
    url = f"{server.url}/v2/models/{MODEL}/infer"
    request = _json_request(spec, records[0], nested=False)
    request["inputs"][0]["shape"] = [1, 3]
    cases = [
        b"{not json",
        orjson.dumps({"inputs": []}),
        orjson.dumps(request),
        gzip.compress(b"x"),  # declared as JSON, is not
    ]
    for body in cases:
        response = httpx.post(url, content=body)
        assert response.status_code == 400, response.text
        assert set(response.json()) >= {"error"}
    wrong_version = httpx.post(
        f"{server.url}/v2/models/{MODEL}/versions/999/infer", content=orjson.dumps(request)
    )
    assert wrong_version.status_code == 404 and "999" in wrong_version.json()["error"]
