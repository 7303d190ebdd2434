"""POST /feedback in-process: 202 with the count, 400 naming record and field, 413, 415, 501
with the log off, 503 when the log cannot keep it, API keys, and answers as documented."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from tabserve.serving.app import create_app
from tabserve.settings import Settings
from tests.helpers.prometheus import sample_sum


class FeedbackSink:
    """The two methods of predlog's PredictionLog the server calls."""

    def __init__(self) -> None:
        self.items: list[Sequence[Any]] = []
        self.full = False

    def submit(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def submit_feedback(self, items: Sequence[Sequence[Any]]) -> bool:
        if self.full:
            return False
        self.items.extend(items)
        return True


def _client(model: Path, home: Path, sink: Any, **changes: Any) -> TestClient:
    settings = Settings(home=home, log_db="off", max_rows=3, **changes)
    return TestClient(create_app(settings, model, prediction_log=sink))


def _ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.fixture
def served(titanic_model_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, FeedbackSink]]:
    sink = FeedbackSink()
    with _client(titanic_model_dir, tmp_path, sink) as client:
        _ready(client)
        yield client, sink


def check(client: TestClient, status: int, body: Any) -> None:
    document = client.get("/openapi.json").json()
    response = document["paths"]["/feedback"]["post"]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    jsonschema.validate(body, {"components": document["components"], **schema},
                        cls=jsonschema.Draft202012Validator)  # fmt: skip


def test_items_are_accepted_and_queued_as_checked(served: tuple[TestClient, FeedbackSink]) -> None:
    client, sink = served
    one = client.post("/feedback", json={"request_id": "abc", "label": 1})
    assert one.status_code == 202 and one.json() == {"accepted": 1}
    many = client.post(
        "/feedback",
        json=[
            {"request_id": "r", "record_index": 1, "label": 0},
            {"request_id": "s", "label": 1.0},
        ],
    )
    assert many.status_code == 202 and many.json() == {"accepted": 2}
    check(client, 202, many.json())
    assert sink.items == [("abc", 0, 1), ("r", 1, 0), ("s", 0, 1)]
    assert sample_sum(client.get("/metrics").text, "tabserve_feedback_items_total",
                      model="titanic") >= 3  # fmt: skip


def test_bad_items_are_named_and_nothing_is_queued(
    served: tuple[TestClient, FeedbackSink],
) -> None:
    client, sink = served
    r = client.post(
        "/feedback",
        json=[{"request_id": "a", "label": 1}, {"request_id": "b", "label": "1"}, {"label": 1}],
    )
    assert r.status_code == 400
    body = r.json()
    check(client, 400, body)
    assert [(d["record"], d["field"], d["reason"]) for d in body["details"]] == [
        (1, "label", "wrong_type"),
        (2, "request_id", "missing"),
    ]
    assert "'1'" in body["details"][0]["message"]  # says what was sent, and what is expected
    assert sink.items == []  # all or nothing: a 400 keeps no item of the request
    one = client.post("/feedback", json={"request_id": "a", "value": 3.5})
    assert one.status_code == 400 and "record" not in one.json()["details"][0]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"[" + b'{"request_id":"a","label":1},' * 3 + b'{"request_id":"a","label":1}]',
         "application/json", 413),
        (b"[]", "application/json", 400),
        (b"{not json", "application/json", 400),
        (b'"a string"', "application/json", 400),
        (b'{"request_id":"a","label":1}', "text/plain", 415),
    ],
)  # fmt: skip
def test_limits_and_protocol_errors(
    served: tuple[TestClient, FeedbackSink], body: bytes, content_type: str, status: int
) -> None:
    client, _ = served
    r = client.post("/feedback", content=body, headers={"content-type": content_type})
    assert r.status_code == status
    check(client, status, r.json())


def test_no_log_is_501_and_a_full_log_is_503(titanic_model_dir: Path, tmp_path: Path) -> None:
    with _client(titanic_model_dir, tmp_path, None) as client:
        _ready(client)
        r = client.post("/feedback", json={"request_id": "a", "label": 1})
        assert r.status_code == 501 and "--log-db" in r.json()["error"]
        check(client, 501, r.json())
    sink = FeedbackSink()
    sink.full = True
    with _client(titanic_model_dir, tmp_path, sink) as client:
        _ready(client)
        r = client.post("/feedback", json={"request_id": "a", "label": 1})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"


def test_api_keys_apply_as_on_the_model_routes(titanic_model_dir: Path, tmp_path: Path) -> None:
    sink = FeedbackSink()
    with _client(titanic_model_dir, tmp_path, sink, api_keys="k1") as client:
        _ready(client)
        item = {"request_id": "a", "label": 1}
        assert client.post("/feedback", json=item).status_code == 401
        wrong = {"authorization": "Bearer nope"}
        assert client.post("/feedback", json=item, headers=wrong).status_code == 401
        good = {"authorization": "Bearer k1"}
        assert client.post("/feedback", json=item, headers=good).status_code == 202
    assert sink.items == [("a", 0, 1)]


def test_a_regression_model_takes_values(diabetes_model_dir: Path, tmp_path: Path) -> None:
    sink = FeedbackSink()
    with _client(diabetes_model_dir, tmp_path, sink) as client:
        _ready(client)
        assert client.post("/feedback", json={"request_id": "a", "value": 151}).status_code == 202
        r = client.post("/feedback", json={"request_id": "a", "label": 1})
        assert r.status_code == 400
        assert {d["field"] for d in r.json()["details"]} == {"value", "label"}
    assert sink.items == [("a", 0, 151.0)]
