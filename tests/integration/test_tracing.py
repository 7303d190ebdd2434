"""OpenTelemetry tracing against a real ``tabserve serve --tracing`` process and a real OTLP/HTTP
receiver on 127.0.0.1 (tests/helpers/otlp_receiver.py decodes the exporter's protobuf).

Clients send W3C ``traceparent``/``tracestate``; the spans must arrive in the client's trace
under the client's span, with the request id the answer's X-Request-ID names, the model and
version, the child spans of each step, one span per model call linked to every request it ran
(a queue delay makes several requests share one call), error status on the step that failed —
over REST and gRPC. With tracing off no span arrives and the server process never imported
OpenTelemetry (its module list, written at exit by tests/helpers/modules_at_exit).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tritonclient.grpc as tgrpc

from tabserve.local_server import free_port
from tests.helpers.otlp_receiver import OtlpReceiver, Span
from tests.integration.test_v2_grpc import _inputs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# The otel extra (the server's SDK and exporter) and opentelemetry-proto (the receiver's
# decoder) are dev dependencies: a skip here fails under CI=true (tests/fixtures/ci.py).
pytest.importorskip("opentelemetry.sdk", reason="tabserve[otel] is not installed")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="tabserve[otel] is missing")
pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto is a dev dependency")

MODULES_AT_EXIT = Path(__file__).resolve().parents[1] / "helpers" / "modules_at_exit"
RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
STEPS = {"decode", "validate", "queue_wait", "log_enqueue", "encode"}
CONCURRENT = 6


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def _env(receiver: OtlpReceiver, tmp_path: Path) -> dict[str, str]:
    modules = tmp_path / "modules"
    modules.mkdir()
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not 5 s
        "OTEL_SERVICE_NAME": "tabserve-under-test",
        "TABSERVE_LOG_DB": f"sqlite:///{tmp_path}/predictions.db",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(MODULES_AT_EXIT), os.environ.get("PYTHONPATH")])
        ),
        "TABSERVE_TEST_MODULES_DIR": str(modules),
    }


def _server_modules(tmp_path: Path) -> list[str]:
    dumps = list((tmp_path / "modules").glob("*-server.py.json"))
    assert len(dumps) == 1, f"expected one module list from the server process: {dumps}"
    return json.loads(dumps[0].read_text())


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-01"


def _concurrent_predictions(url: str) -> list[dict[str, Any]]:
    """CONCURRENT requests at once (a barrier), each in its own client trace."""
    barrier = threading.Barrier(CONCURRENT)
    sent: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        trace_id, parent_id, header = _traceparent()
        headers = {"traceparent": header, "tracestate": f"tabtest=r{i}"}
        with httpx.Client(timeout=30) as client:
            barrier.wait(10)
            r = client.post(f"{url}/predict", json={**RECORD, "Age": 20 + i}, headers=headers)
        with lock:
            sent.append({"trace_id": trace_id, "parent_id": parent_id, "i": i, "answer": r})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(sent) == CONCURRENT
    assert all(s["answer"].status_code == 200 for s in sent), [s["answer"].text for s in sent]
    return sent


def _by(spans: list[Span], **match: Any) -> list[Span]:
    return [s for s in spans if all(s[k] == v for k, v in match.items())]


def test_rest_and_grpc_requests_arrive_as_traces_with_steps_and_linked_model_calls(
    titanic_model_dir: Path, serve_model: Any, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    grpc_port = free_port()
    server = serve_model(
        titanic_model_dir, "--tracing", "--max-queue-delay-us", "50000",
        "--grpc-port", str(grpc_port), env=_env(receiver, tmp_path),
    )  # fmt: skip
    sent = _concurrent_predictions(server.url)
    bad_trace, bad_parent, bad_header = _traceparent()
    bad = httpx.post(f"{server.url}/predict", json={**RECORD, "Age": "x-secret-value"},
                     headers={"traceparent": bad_header}, timeout=30)  # fmt: skip
    assert bad.status_code == 400
    grpc_trace, grpc_parent, grpc_header = _traceparent()
    client = tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    inputs, _ = _inputs(titanic_model_dir, 1)
    client.infer("titanic", inputs, headers={"traceparent": grpc_header})
    client.close()

    wanted = {s["trace_id"] for s in sent} | {bad_trace, grpc_trace}

    def complete(spans: list[Span]) -> bool:
        servers = {s["trace_id"] for s in spans if s["kind"] == 2 and s["trace_id"] in wanted}
        linked = {link["span_id"] for s in _by(spans, name="infer") for link in s["links"]}
        ours = [s for s in spans if s["kind"] == 2 and s["trace_id"] in wanted]
        return servers == wanted and all(
            s["span_id"] in linked for s in ours if s["trace_id"] != bad_trace
        )

    spans = receiver.wait_for(complete, timeout=20)
    calls = _by(spans, name="infer")
    links_of = {link["span_id"]: call for call in calls for link in call["links"]}

    # REST: the client's trace and parent, the answer's request id, the model, every step.
    for request in sent:
        [span] = _by(spans, trace_id=request["trace_id"], kind=2)
        assert span["parent_span_id"] == request["parent_id"]
        assert span["trace_state"] == f"tabtest=r{request['i']}"
        assert span["name"] == "POST /predict"
        attributes = span["attributes"]
        assert attributes["tabserve.request_id"] == request["answer"].headers["x-request-id"]
        assert attributes["tabserve.model.name"] == "titanic"
        assert attributes["tabserve.model.version"] == request["answer"].json()["version"]
        assert attributes["http.route"] == "/predict"
        assert attributes["http.response.status_code"] == 200
        assert span["resource"]["service.name"] == "tabserve-under-test"
        children = {s["name"]: s for s in _by(spans, parent_span_id=span["span_id"])}
        assert set(children) == STEPS, sorted(children)
        for child in children.values():
            assert child["trace_id"] == request["trace_id"]
            assert span["start_ns"] <= child["start_ns"] <= child["end_ns"] <= span["end_ns"]
        assert children["decode"]["end_ns"] <= children["validate"]["start_ns"]
        assert children["queue_wait"]["end_ns"] <= children["encode"]["start_ns"]
        assert children["log_enqueue"]["attributes"]["tabserve.log.queued"] is True
        # The model call that ran this request: its own trace, linked to this server span,
        # and this request's queue_wait links back to it.
        call = links_of[span["span_id"]]
        assert call["trace_id"] != request["trace_id"] and call["parent_span_id"] == ""
        assert [link["span_id"] for link in children["queue_wait"]["links"]] == [call["span_id"]]
        assert children["queue_wait"]["end_ns"] <= call["start_ns"] + 1_000_000
    rest_calls = {id(links_of[s["span_id"]]) for s in spans if s["trace_id"] in
                  {r["trace_id"] for r in sent} and s["kind"] == 2}  # fmt: skip
    assert len(rest_calls) < CONCURRENT, "no model call served two requests: nothing batched"
    for call in calls:
        assert call["attributes"]["tabserve.batch.requests"] == len(call["links"])
        assert call["attributes"]["tabserve.batch.rows"] == len(call["links"])  # 1 row each
        assert call["attributes"]["tabserve.runtime"] == "onnx"
        assert call["attributes"]["tabserve.model.name"] == "titanic"
        request_ids = {link["attributes"]["tabserve.request_id"] for link in call["links"]}
        assert all(request_ids)

    # A validation failure: the validate step is ERROR and names field and reason, never the
    # value sent; the server span carries the 400 and stays unset (the client's mistake).
    [span] = _by(spans, trace_id=bad_trace, kind=2)
    assert span["parent_span_id"] == bad_parent
    assert span["attributes"]["http.response.status_code"] == 400
    assert span["status_code"] == 0
    steps = {s["name"]: s for s in _by(spans, parent_span_id=span["span_id"])}
    assert set(steps) == {"decode", "validate"}
    assert steps["validate"]["status_code"] == 2
    assert "Age: wrong_type" in steps["validate"]["status_message"]
    assert "x-secret-value" not in json.dumps(spans)

    # gRPC: the parent from the call's metadata, the same steps and link.
    [span] = _by(spans, trace_id=grpc_trace, kind=2)
    assert span["parent_span_id"] == grpc_parent
    assert span["name"] == "inference.GRPCInferenceService/ModelInfer"
    assert span["attributes"]["rpc.system"] == "grpc"
    assert span["attributes"]["rpc.grpc.status_code"] == 0
    assert span["attributes"]["tabserve.model.name"] == "titanic"
    assert span["attributes"]["tabserve.request_id"]
    steps = {s["name"] for s in _by(spans, parent_span_id=span["span_id"])}
    assert steps == STEPS
    assert span["span_id"] in links_of

    assert server.stop() == 0
    assert any(m.startswith("opentelemetry.sdk") for m in _server_modules(tmp_path))


def test_tracing_off_sends_nothing_and_never_imports_opentelemetry(
    titanic_model_dir: Path, serve_model: Any, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    server = serve_model(titanic_model_dir, env=_env(receiver, tmp_path))
    for _ in range(5):
        r = httpx.post(f"{server.url}/predict", json=RECORD,
                       headers={"traceparent": _traceparent()[2]}, timeout=30)  # fmt: skip
        assert r.status_code == 200
    time.sleep(1.0)  # more than ten export intervals of a traced server
    assert server.stop() == 0
    assert receiver.snapshot() == [] and receiver.requests == 0
    modules = _server_modules(tmp_path)
    assert "tabserve.serving.app" in modules  # the list is the server's own
    assert [m for m in modules if m.split(".")[0] == "opentelemetry"] == []
    assert "tabserve.serving.tracing" not in modules
