"""`tabserve serve` as a real process: answers, limits, workers + metrics, SIGTERM drain, CLI."""

from __future__ import annotations

import csv
import http.client
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fixtures.servers import running_server
from tests.helpers.prometheus import sample_sum

pytestmark = pytest.mark.integration

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
RECORD["Embarked"] = "S"
JSON = {"content-type": "application/json"}
TITANIC_CSV = Path(__file__).parents[2] / "src" / "tabserve" / "data" / "titanic.csv"


def metric_total(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_predict_and_client_mistakes_over_http(titanic_model_dir: Path) -> None:
    with running_server(titanic_model_dir, "--max-body-bytes", "2000", "--ood", "reject") as s:
        ok = httpx.post(f"{s.url}/predict", json=RECORD)
        assert ok.status_code == 200 and ok.json()["model"] == "titanic"
        assert ok.headers["content-type"] == "application/json"
        cases = [
            (orjson.dumps([RECORD] * 40), JSON, 413),  # over --max-body-bytes
            (b"{", JSON, 400),
            (orjson.dumps(RECORD), {"content-type": "text/csv"}, 415),
            (orjson.dumps({**RECORD, "Age": 1000}), JSON, 400),  # --ood reject
            (orjson.dumps({**RECORD, "Pclass": "3"}), JSON, 400),
        ]
        for body, headers, status in cases:
            r = httpx.post(f"{s.url}/predict", content=body, headers=headers)
            assert r.status_code == status, (status, r.text)
        assert httpx.get(f"{s.url}/spec").json()["target"]["name"] == "Survived"


def test_two_workers_both_serve_and_metrics_sum_them(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    from tabserve.predlog.store import predictions

    log_db = f"sqlite:///{tmp_path / 'log.db'}"
    n = 60
    with running_server(titanic_model_dir, "--workers", "2", env={"TABSERVE_LOG_DB": log_db}) as s:
        for _ in range(n):  # a fresh connection each time, so both workers take requests
            assert httpx.post(f"{s.url}/predict", json=RECORD).status_code == 200
        # Whichever worker answers /metrics, it reports what both workers counted.
        for _ in range(4):
            text = httpx.get(f"{s.url}/metrics").text
            total = sample_sum(text, "tabserve_requests_total", route="/predict", status="200")
            assert total == n
            assert metric_total(text, "tabserve_predictions_total") == n
            assert 'tabserve_model_info{model="titanic"' in text
        s.stop()
    # Each worker draws its own random request-id prefix: the log says who answered what.
    engine = sa.create_engine(log_db)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.select(predictions.c.request_id))]
    engine.dispose()
    assert len(ids) == n
    by_worker = Counter(i.split("-")[0] for i in ids)
    assert len(by_worker) == 2 and min(by_worker.values()) > 0, by_worker


def test_sigterm_lets_in_flight_requests_finish(titanic_model_dir: Path) -> None:
    # A long batching delay keeps the requests in flight when SIGTERM arrives.
    args = ("--max-queue-delay-us", "400000", "--max-batch-size", "1000")
    with running_server(titanic_model_dir, *args) as s:
        body = orjson.dumps([RECORD] * 10)
        connections = [
            http.client.HTTPConnection("127.0.0.1", s.port, timeout=10) for _ in range(5)
        ]
        for conn in connections:  # each request is fully sent before the signal
            conn.request("POST", "/predict", body=body, headers=JSON)
        time.sleep(0.1)
        os.kill(s.pid, signal.SIGTERM)
        statuses = [conn.getresponse().status for conn in connections]
        assert statuses == [200] * 5
        # uvicorn re-raises the signal after its graceful shutdown: exit by SIGTERM, or 0.
        assert s.process.wait(15) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{s.url}/health", timeout=1)


def test_sklearn_runtime_serves_the_same_answer(titanic_model_dir: Path) -> None:
    with running_server(titanic_model_dir, "--runtime", "sklearn", "--no-batching") as s:
        sk = httpx.post(f"{s.url}/predict", json=RECORD).json()
    with running_server(titanic_model_dir) as s:
        onnx = httpx.post(f"{s.url}/predict", json=RECORD).json()
    assert sk["prediction"] == onnx["prediction"]
    assert abs(sk["probabilities"]["1"] - onnx["probabilities"]["1"]) < 1e-6


def tabserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tabserve", *args], capture_output=True, text=True, timeout=120
    )


def test_predict_command_remote_and_local_agree(titanic_model_dir: Path, tmp_path: Path) -> None:
    local_out, remote_out = tmp_path / "local.csv", tmp_path / "remote.csv"
    local = tabserve(
        "predict", str(titanic_model_dir), "--data", str(TITANIC_CSV), "--out", str(local_out)
    )
    assert local.returncode == 0, local.stderr
    with running_server(titanic_model_dir, "--log-db", f"sqlite:///{tmp_path}/log.db") as s:
        remote = tabserve(
            "predict",
            s.url,
            "--data",
            str(TITANIC_CSV),
            "--out",
            str(remote_out),
            "--batch-size",
            "300",
        )
        assert remote.returncode == 0, remote.stderr
        bad = tabserve("predict", s.url, "--data", orjson.dumps({**RECORD, "Sex": "x"}).decode())
        assert (
            bad.returncode == 2
            and "unknown_category" in bad.stderr
            and "Traceback" not in bad.stderr
        )
        # A server's answers name each prediction in its log: labels can be sent back for them.
        rows_remote = list(csv.DictReader(remote_out.open()))
        labels = tmp_path / "labels.csv"
        with labels.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["request_id", "record_index", "label"])
            out.writerows([r["request_id"], r["record_index"], 1] for r in rows_remote[:40])
        sent = tabserve("feedback", str(labels), "--url", s.url)
        assert sent.returncode == 0 and "40" in sent.stdout, sent.stdout + sent.stderr
    rows_local = list(csv.DictReader(local_out.open()))
    assert len({r["request_id"] for r in rows_remote}) == 3  # 891 rows in batches of 300
    assert [r["record_index"] for r in rows_remote[299:302]] == ["299", "0", "1"]
    ids = ("request_id", "record_index")
    assert len(rows_local) == 891
    assert rows_local == [{k: v for k, v in r.items() if k not in ids} for r in rows_remote]
    assert set(rows_local[0]) == {"row", "prediction", "probability_0", "probability_1"}
    inline = tabserve("predict", str(titanic_model_dir), "--data", orjson.dumps(RECORD).decode())
    assert inline.returncode == 0 and orjson.loads(inline.stdout)["prediction"] in (0, 1)


def test_serve_with_a_bad_model_path_is_one_line(tmp_path: Path) -> None:
    done = tabserve("serve", str(tmp_path / "nope"), "--port", "1")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "error:" in done.stderr
