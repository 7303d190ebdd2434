"""API keys: every route but the health probes needs one when keys are configured."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tabserve.serving.app import create_app
from tabserve.settings import Settings

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
KEYS = "first-key-7f3a, second-key-19bc"


def served(model: Path, home: Path, **changes: object) -> TestClient:
    settings = Settings(home=home, log_db="off", api_keys=KEYS, **changes)  # type: ignore[arg-type]
    return TestClient(create_app(settings, model, prediction_log=None))


@pytest.fixture
def client(titanic_model_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    with served(titanic_model_dir, tmp_path) as c:
        deadline = time.monotonic() + 30
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.mark.parametrize("path", ["/predict", "/invocations", "/v2/models/titanic/infer"])
def test_model_routes_need_a_key(client: TestClient, path: str) -> None:
    for headers in ({}, bearer("wrong"), {"authorization": "Basic Zm9vOmJhcg=="}):
        r = client.post(path, json=RECORD, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "first-key" not in r.text and "second-key" not in r.text


def test_any_configured_key_works(client: TestClient) -> None:
    for key in ("first-key-7f3a", "second-key-19bc"):
        assert client.post("/predict", json=RECORD, headers=bearer(key)).status_code == 200
    assert client.get("/spec", headers=bearer("second-key-19bc")).status_code == 200
    assert client.get("/spec").status_code == 401  # the model's contract is not public either


def test_probes_stay_open_and_metrics_are_closed_by_default(client: TestClient) -> None:
    for path in ("/health", "/ready", "/v2/health/live", "/v2/health/ready", "/ping"):
        assert client.get(path).status_code == 200, path
    assert client.get("/metrics").status_code == 401
    metrics = client.get("/metrics", headers=bearer("first-key-7f3a")).text
    assert "first-key" not in metrics and "second-key" not in metrics


def test_metrics_can_be_public(titanic_model_dir: Path, tmp_path: Path) -> None:
    with served(titanic_model_dir, tmp_path, metrics_public=True) as c:
        assert c.get("/metrics").status_code == 200
        assert c.post("/predict", json=RECORD).status_code in (401,)


def test_the_server_process_gets_the_real_keys_not_the_mask() -> None:
    """``tabserve serve`` hands its settings to the server process it execs as JSON: the keys
    must survive that trip (model_dump_json alone writes the mask, and every key would fail)."""
    sent = Settings(api_keys="k-one,k-two")  # type: ignore[arg-type]
    received = Settings.model_validate_json(sent.to_child_json())
    assert received.api_keys is not None
    assert received.api_keys.get_secret_value() == "k-one,k-two"
    assert "k-one" not in sent.model_dump_json() and "k-one" not in repr(sent)
