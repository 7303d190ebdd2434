"""OIP v2 over gRPC against a real ``tabserve serve --grpc-port`` process, driven by Triton's own
gRPC client and by perf_analyzer -i grpc; answers equal the REST ones for the same rows."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException

from tabserve.local_server import free_port
from tabserve.modeldir import ModelDir
from tabserve.serving.codecs.v2_model import input_datatype
from tabserve.tools.perf_analyzer import PerfAnalyzer, PerfAnalyzerUnavailable, ensure_perf_analyzer
from tabserve.tools.perf_data import write_input_data
from tests.fixtures.servers import ServerProcess, running_server
from tests.integration.test_v2_perf_analyzer import SHORT_WINDOWS, _throughput

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(titanic_model_dir: Path) -> Iterator[tuple[ServerProcess, int]]:
    port = free_port()
    with running_server(titanic_model_dir, "--grpc-port", str(port)) as process:
        yield process, port


@pytest.fixture(scope="module")
def client(served: tuple[ServerProcess, int]) -> Iterator[tgrpc.InferenceServerClient]:
    c = tgrpc.InferenceServerClient(f"127.0.0.1:{served[1]}")
    yield c
    c.close()


def _inputs(model_dir: Path, n: int) -> tuple[list[tgrpc.InferInput], list[dict]]:
    model = ModelDir(model_dir)
    spec, sample = model.spec(), model.reference_sample()
    rows = [{f.name: sample[f.name][i] for f in spec.features} for i in range(n)]
    inputs = []
    for f in spec.features:
        values = [r[f.name] for r in rows]
        datatype = input_datatype(f)
        if datatype == "BYTES":
            array = np.array([["" if v is None else str(v)] for v in values], dtype=object)
        elif datatype == "FP64":
            array = np.array([[np.nan if v is None else v] for v in values], dtype=np.float64)
        else:
            array = np.array([[v] for v in values], dtype=np.int64)
        tensor = tgrpc.InferInput(f.name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs, rows


def test_health_metadata_and_config(client: tgrpc.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("titanic") and not client.is_model_ready("nope")
    meta = client.get_model_metadata("titanic", as_json=True)
    assert meta["name"] == "titanic" and meta["platform"] == "onnxruntime_onnx"
    assert {i["name"] for i in meta["inputs"]} >= {"Pclass", "Sex", "Age"}
    config = client.get_model_config("titanic", as_json=True)["config"]
    assert int(config["max_batch_size"]) > 0 and config["input"][0]["dims"] == ["1"]


def test_infer_matches_rest(
    client: tgrpc.InferenceServerClient, served: tuple[ServerProcess, int], titanic_model_dir: Path
) -> None:
    inputs, rows = _inputs(titanic_model_dir, 30)
    result = client.infer("titanic", inputs, request_id="grpc-1")
    labels, probs = result.as_numpy("label"), result.as_numpy("probabilities")
    rest = httpx.post(f"{served[0].url}/predict", json=rows).json()["predictions"]
    assert labels.tolist() == [p["prediction"] for p in rest]
    np.testing.assert_allclose(probs[:, 1], [p["probabilities"]["1"] for p in rest], atol=1e-12)
    assert result.get_response().id == "grpc-1"


def test_errors_are_the_grpc_status_for_the_http_one(
    client: tgrpc.InferenceServerClient, titanic_model_dir: Path
) -> None:
    inputs, _ = _inputs(titanic_model_dir, 2)
    sex = next(i for i in inputs if i.name() == "Sex")
    sex.set_data_from_numpy(np.array([["robot"], ["male"]], dtype=object))
    with pytest.raises(InferenceServerException) as bad:
        client.infer("titanic", inputs)
    assert "INVALID_ARGUMENT" in str(bad.value.status()) and "Sex" in bad.value.message()
    with pytest.raises(InferenceServerException) as missing:
        client.infer("other-model", inputs)
    assert "NOT_FOUND" in str(missing.value.status())


@pytest.fixture(scope="module")
def perf_analyzer() -> PerfAnalyzer:
    try:
        return ensure_perf_analyzer()
    except PerfAnalyzerUnavailable as exc:
        pytest.skip(f"perf_analyzer cannot run on this machine: {exc}")


def test_perf_analyzer_over_grpc(
    perf_analyzer: PerfAnalyzer,
    served: tuple[ServerProcess, int],
    titanic_model_dir: Path,
    tmp_path: Path,
) -> None:
    data = write_input_data(ModelDir(titanic_model_dir), tmp_path / "rows.json", limit=50)
    argv = [str(perf_analyzer.binary), "-m", "titanic", "-u", f"127.0.0.1:{served[1]}",
            "-i", "grpc", "--input-data", str(data), *SHORT_WINDOWS]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=perf_analyzer.env(),
                          timeout=120)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert _throughput(output) > 0
