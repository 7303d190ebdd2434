"""The app in-process: /predict answers and errors, limits, /ready, /spec, /docs, /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tabserve.serving.app import create_app
from tabserve.settings import Settings
from tests.helpers.prometheus import sample_sum

RECORD = {
    "Pclass": 3,
    "Sex": "male",
    "Age": 22,
    "SibSp": 1,
    "Parch": 0,
    "Fare": 7.25,
    "Embarked": "S",
}


def settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(home=tmp_path, log_db="off", **changes)  # type: ignore[arg-type]


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "model never became ready"
        time.sleep(0.02)


@pytest.fixture
def client(titanic_model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings(tmp_path, max_rows=5, max_body_bytes=4096), titanic_model_dir)
    with TestClient(app) as c:
        wait_ready(c)
        yield c


def metric(client: TestClient, name: str, **labels: str) -> float:
    return sample_sum(client.get("/metrics").text, name, **labels)


def test_one_record(client: TestClient) -> None:
    r = client.post("/predict", json=RECORD)
    assert r.status_code == 200
    body = r.json()
    assert body["prediction"] in (0, 1)
    assert set(body["probabilities"]) == {"0", "1"}
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6
    assert body["model"] == "titanic" and "version" in body and "warnings" not in body


def test_array_of_records(client: TestClient) -> None:
    r = client.post("/predict", json=[RECORD, {**RECORD, "Sex": "female", "Age": None}])
    assert r.status_code == 200
    body = r.json()
    assert len(body["predictions"]) == 2 and body["model"] == "titanic"
    assert set(body["predictions"][1]) == {"prediction", "probabilities"}


def test_validation_error_body_and_metric(client: TestClient) -> None:
    before = metric(client, "tabserve_validation_errors_total", field="Age", reason="wrong_type")
    r = client.post("/predict", json=[RECORD, {**RECORD, "Age": "22", "Sex": "robot"}])
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"error", "details"} and body["error"] == "validation failed"
    assert [{k: v for k, v in d.items() if k != "message"} for d in body["details"]] == [
        {"record": 1, "field": "Sex", "reason": "unknown_category"},
        {"record": 1, "field": "Age", "reason": "wrong_type"},
    ]
    assert all(d["message"] for d in body["details"])
    assert len(r.content) < 600  # names the problems; echoes neither the payload nor the schema
    after = metric(client, "tabserve_validation_errors_total", field="Age", reason="wrong_type")
    assert after == before + 1


def test_a_nullable_feature_may_be_omitted(client: TestClient) -> None:
    # The reference project's request, verbatim: no Embarked (missing in training, so nullable).
    reference_request = {
        "Pclass": 3,
        "Sex": "male",
        "Age": 22,
        "SibSp": 1,
        "Parch": 0,
        "Fare": 7.25,
    }
    assert client.post("/predict", json=reference_request).status_code == 200
    both = client.post(
        "/predict", json=[reference_request, {**reference_request, "Embarked": None}]
    )
    assert both.status_code == 200
    first, second = both.json()["predictions"]
    assert first == second  # omitted and null are the same missing value
    # A misspelled optional feature is still an extra field, and required ones stay required.
    typo = client.post("/predict", json={**reference_request, "Embarkd": "S"}).json()["details"]
    assert [(d["field"], d["reason"]) for d in typo] == [("Embarkd", "extra_field")]
    no_fare = {k: v for k, v in reference_request.items() if k != "Fare"}
    missing = client.post("/predict", json=no_fare).json()["details"]
    assert [(d["field"], d["reason"]) for d in missing] == [("Fare", "missing")]


def test_ood_warning_in_answer_and_metric(client: TestClient) -> None:
    before = metric(client, "tabserve_ood_warnings_total", field="Age", model="titanic")
    body = client.post("/predict", json={**RECORD, "Age": 300}).json()
    assert body["warnings"] and "Age" in body["warnings"][0]
    assert metric(client, "tabserve_ood_warnings_total", field="Age", model="titanic") == before + 1


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"42", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"[]", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 415),
        ({"content": b"{}"}, 415),
        ({"json": [RECORD] * 6}, 413),  # over max_rows=5
        (
            {"content": b"[" + b" " * 5000 + b"]", "headers": {"content-type": "application/json"}},
            413,
        ),
    ],
)
def test_client_mistakes_get_4xx(
    client: TestClient, kwargs: dict[str, object], status: int
) -> None:
    r = client.post("/predict", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status
    assert "error" in r.json()


def test_chunked_body_over_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_ready_is_503_before_the_model_loads(titanic_model_dir: Path, tmp_path: Path) -> None:
    app = create_app(settings(tmp_path), titanic_model_dir)
    client = TestClient(app)  # no lifespan: the model never loads
    assert client.get("/ready").status_code == 503
    assert client.get("/health").status_code == 200
    assert client.post("/predict", json=RECORD).status_code == 503


def test_spec_and_docs_come_from_the_model(client: TestClient, titanic_model_dir: Path) -> None:
    assert client.get("/spec").content == (titanic_model_dir / "feature_spec.json").read_bytes()
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    # Age and Embarked had missing values in training: nullable, so optional in the schema.
    assert record["required"] == ["Pclass", "Sex", "SibSp", "Parch", "Fare"]
    assert set(record["properties"]["Sex"]["enum"]) == {"male", "female"}
    assert record["properties"]["Age"]["type"] == ["number", "null"]
    assert set(record["example"]) == set(record["properties"])
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["one record"]["value"] == record["example"]
    assert client.get("/docs").status_code == 200


def test_metrics_count_requests_batches_and_classes(client: TestClient) -> None:
    before = metric(
        client, "tabserve_requests_total", route="/predict", status="200", model="titanic"
    )
    classes_before = metric(client, "tabserve_predictions_total")
    client.post("/predict", json=[RECORD, RECORD, RECORD])
    text = client.get("/metrics").text
    assert (
        metric(client, "tabserve_requests_total", route="/predict", status="200", model="titanic")
        == before + 1
    )
    assert metric(client, "tabserve_predictions_total") == classes_before + 3
    assert "tabserve_batch_rows_bucket" in text and "tabserve_queue_delay_seconds_bucket" in text
    assert 'tabserve_model_info{model="titanic"' in text
    assert "tabserve_request_duration_seconds_bucket" in text


class ListSink:
    """A PredictionSink that keeps what it is given (the real one is tabserve.predlog)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def submit(self, request_id: str, model_name: str, model_version: str, inputs: object,
               n_rows: int, predictions: object, **kwargs: object) -> bool:  # fmt: skip
        self.calls.append({"request_id": request_id, "model": model_name, "n_rows": n_rows,
                           "inputs": inputs, "predictions": predictions, **kwargs})  # fmt: skip
        return True


def test_prediction_log_hook_gets_every_answer(titanic_model_dir: Path, tmp_path: Path) -> None:
    sink = ListSink()
    app = create_app(settings(tmp_path), titanic_model_dir, prediction_log=sink)
    with TestClient(app) as client:
        wait_ready(client)
        client.post("/predict", json=RECORD, headers={"x-request-id": "req-7"})
        client.post("/predict", json=[RECORD, {**RECORD, "Embarked": None}])
        client.post("/predict", json={**RECORD, "Age": "x"})  # rejected: nothing to log
        client.post("/predict", json=RECORD, headers={"x-request-id": "req-7"})  # reused id
    assert [c["n_rows"] for c in sink.calls] == [1, 2, 1]
    first = sink.calls[0]
    # The key is the server's own (unique); the client's id is kept beside it.
    assert first["client_request_id"] == "req-7" and first["model"] == "titanic"
    assert len({c["request_id"] for c in sink.calls}) == 3
    assert sink.calls[2]["client_request_id"] == "req-7"
    # The inputs as received: the client's records, a null category stays null.
    assert first["inputs"] == [RECORD]
    assert sink.calls[1]["inputs"] == [RECORD, {**RECORD, "Embarked": None}]
    assert first["classes"] == [0, 1] and first["probabilities"].shape == (1, 2)  # type: ignore[attr-defined]


def test_request_ids_the_client_sends_are_checked_and_echoed(client: TestClient) -> None:
    mine = client.post("/predict", json=RECORD, headers={"x-request-id": "trace-42"})
    assert mine.status_code == 200 and mine.headers["x-request-id"] == "trace-42"
    ours = client.post("/predict", json=RECORD)
    assert len(ours.headers["x-request-id"]) > 20  # the server's own id when none was sent
    for bad in ("x" * 201, "tab\there"):
        r = client.post("/predict", json=RECORD, headers={"x-request-id": bad})
        assert r.status_code == 400 and "X-Request-ID" in r.json()["error"]
        assert len(r.headers["x-request-id"]) > 20  # refused as sent: the server's own


def test_error_answers_carry_the_request_id_too(client: TestClient) -> None:
    # A client matches a 400 to the server's log lines by the id, as it does an answer.
    bad = client.post("/predict", json={**RECORD, "Age": "old"}, headers={"x-request-id": "t-9"})
    assert bad.status_code == 400 and bad.headers["x-request-id"] == "t-9"
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and len(missing.headers["x-request-id"]) > 20


def test_draining_turns_ready_503_and_keeps_answering(client: TestClient) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    state.draining = True  # what SIGTERM sets (lifecycle._drain_on_sigterm)
    try:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        assert client.get("/v2/health/ready").status_code == 503
        assert client.post("/predict", json=RECORD).status_code == 200  # already on its way
    finally:
        state.draining = False
