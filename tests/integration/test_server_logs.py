"""The log of a real ``tabserve serve``: ``--log-format json`` makes every line of every process
(supervisor, workers, prediction-log writer, uvicorn's own) one JSON object; ``--access-log``
writes one line per request carrying the id the answer's X-Request-ID names; the server says
what it serves in exactly one startup line, whatever the number of workers, with the
prediction log's password masked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
SECRET = "pg-Secret-9876"


def _requests(url: str) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as client:
        return [
            client.post("/predict", json=RECORD),
            client.post("/predict", json={**RECORD, "Age": "x"}),  # 400
            client.post("/v2/models/titanic/infer?token=q-secret", json={"inputs": "nope"}),
            client.get("/health"),
        ]


def test_json_log_every_line_an_object_access_lines_carry_the_answers_request_id(
    titanic_model_dir: Path, serve_model: Any, tmp_path: Path
) -> None:
    server = serve_model(
        titanic_model_dir, "--log-format", "json", "--access-log",
        env={"TABSERVE_LOG_DB": f"sqlite:///{tmp_path}/predictions.db"},
    )  # fmt: skip
    answers = _requests(server.url)
    assert [a.status_code for a in answers] == [200, 400, 400, 200]
    assert server.stop() == 0
    text = server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # each one JSON
    assert lines, text
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line

    [startup] = [line for line in lines if line["message"].startswith("serving titanic")]
    assert startup["model"] == "titanic" and startup["runtime"] == "onnx"
    assert startup["workers"] == 1 and startup["access_log"] is True
    assert startup["tracing"] is False and startup["prediction_log"].startswith("sqlite:///")
    assert "request_id" not in startup

    access = [line for line in lines if line["logger"] == "tabserve.access"]
    access = [a for a in access if a["route"] != "/ready"]  # the fixture's readiness polls
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("POST", "/predict", 200), ("POST", "/predict", 400),
        ("POST", "/v2/models/{name}/infer", 400), ("GET", "/health", 200),
    ]  # fmt: skip
    assert all(a["request_id"] for a in access) and len({a["request_id"] for a in access}) == 4
    # A prediction's answer names the id its line carries (error answers carry none).
    assert access[0]["request_id"] == answers[0].headers["x-request-id"]
    assert "q-secret" not in text


def test_text_log_one_startup_line_for_two_workers_and_the_password_masked(
    titanic_model_dir: Path, serve_model: Any
) -> None:
    log_db = f"postgresql+psycopg://tabserve:{SECRET}@127.0.0.1:9/tabserve"  # port 9: refused
    server = serve_model(
        titanic_model_dir, "--workers", "2", "--access-log", env={"TABSERVE_LOG_DB": log_db}
    )
    answer = httpx.post(f"{server.url}/predict", json=RECORD, timeout=30)
    assert answer.status_code == 200
    assert server.stop() == 0
    text = server.log()
    assert SECRET not in text
    startup = [line for line in text.splitlines() if " INFO serving titanic version " in line]
    assert len(startup) == 1, text
    assert "2 workers" in startup[0] and "postgresql+psycopg://tabserve:***@" in startup[0]
    request_id = answer.headers["x-request-id"]
    [access] = [line for line in text.splitlines() if " tabserve.access INFO " in line
                and " /ready " not in line]  # fmt: skip
    assert f"INFO [{request_id}] POST /predict 200 " in access
