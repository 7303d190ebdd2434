"""No secret in a log line, an error body, /metrics, /spec, the pages' JSON or the CLI's output.

A real server is started with a database password in --log-db (an unreachable PostgreSQL, so the
log's errors are exercised), a password in the tracking URI and two API keys; the test makes it
say everything it says — good and bad requests, wrong keys, the error paths of the log — and
greps every byte for the secrets.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

DB_SECRET = "pg-Secret-4711"
TRACKING_SECRET = "mlflow-Secret-0815"
KEY = "key-Secret-1234567890"
OTHER_KEY = "key-Secret-abcdefghij"
SECRETS = (DB_SECRET, TRACKING_SECRET, KEY, OTHER_KEY)
RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}


def _no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} appears in {where}"


def test_no_secret_anywhere_the_server_or_cli_speaks(
    titanic_model_dir: Path, serve_model: Any
) -> None:
    log_db = f"postgresql+psycopg://tabserve:{DB_SECRET}@127.0.0.1:9/tabserve"  # port 9: refused
    env = {
        "TABSERVE_API_KEYS": f"{KEY},{OTHER_KEY}",
        "TABSERVE_TRACKING_URI": f"http://tabserve:{TRACKING_SECRET}@127.0.0.1:9",
        "TABSERVE_LOG_DB": log_db,
    }
    server = serve_model(titanic_model_dir, env=env)
    good = {"Authorization": f"Bearer {KEY}"}
    said: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i, (method, path, body, headers) in enumerate([
            ("POST", "/predict", RECORD, good),
            ("POST", "/predict", {**RECORD, "Age": "x"}, good),  # 400
            ("POST", "/predict", RECORD, {"Authorization": f"Bearer {KEY}x"}),  # 401
            ("POST", "/predict", RECORD, {"Authorization": KEY}),  # 401: no scheme
            ("POST", "/predict", RECORD, {}),  # 401
            ("GET", "/spec", None, good),
            ("GET", "/openapi.json", None, good),
            ("GET", "/metrics", None, good),
            ("GET", "/stats", None, good),
            ("GET", "/v2/models/titanic", None, good),
            ("POST", "/v2/models/titanic/infer", {"inputs": "nope"}, good),  # 400
            ("GET", "/nowhere", None, good),  # 404
        ]):  # fmt: skip
            r = client.request(method, path, json=body, headers=headers)
            said[f"{method} {path} #{i} ({r.status_code})"] = str(r.headers) + r.text
        assert "POST /predict #0 (200)" in said, list(said)
        time.sleep(2.5)  # the log's writer retries the database and reports it unavailable
        said["metrics after the log's errors"] = client.get("/metrics", headers=good).text
    for where, text in said.items():
        _no_secret(where, text)
    server.stop()
    log = server.log()
    assert "unavailable" in log  # the log's outage was reported (with the URL masked)
    _no_secret("the server's log", log)
    cli = subprocess.run(
        [sys.executable, "-m", "tabserve", "doctor", str(titanic_model_dir), "--log-db", log_db],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert "***" in cli.stdout + cli.stderr
    _no_secret("tabserve doctor", cli.stdout + cli.stderr)
