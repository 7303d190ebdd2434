"""`tabserve serve --drift-interval` for real: two workers, a short interval, shifted traffic
with some ground truth. The refresher writes the page's report, sets the drift and quality
gauges, every worker's /metrics says the same, one refresh runs per interval, and a refresh
that fails is a log line and a metric while the server keeps serving."""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tabserve.modeldir import ModelDir
from tests.fixtures.servers import running_server
from tests.helpers.prometheus import sample_sum

pytestmark = pytest.mark.integration

INTERVAL_S = 3.0
GAUGES = ("tabserve_feature_drifted", "tabserve_feature_drift_score", "tabserve_dataset_drift",
          "tabserve_model_quality")  # fmt: skip


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _drift_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in GAUGES:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _metrics_by_worker(
    url: str, record: dict[str, Any], connections: int = 16
) -> dict[str, list[str]]:
    """/metrics as each worker answers it: a connection sticks to the worker that accepted it,
    and the request id of a /predict on it (the server's own) names that worker."""
    seen: dict[str, list[str]] = defaultdict(list)
    for _ in range(connections):
        with httpx.Client(base_url=url, timeout=10) as client:
            worker = client.post("/predict", json=record).headers["x-request-id"].split("-")[0]
            seen[worker].append(client.get("/metrics").text)
    return seen


def test_two_workers_refresh_once_per_interval_and_agree(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(titanic_model_dir, model)
    home = tmp_path / "home"
    home.mkdir()
    log_db = f"sqlite:///{tmp_path / 'predictions.db'}"
    example = ModelDir(model).spec().example_record()
    flags = ("--workers", "2", "--log-db", log_db, "--drift-interval", f"{INTERVAL_S}s",
             "--drift-window", "1h")  # fmt: skip
    with running_server(model, *flags, env={"TABSERVE_HOME": str(home)}) as server:
        fed = 0
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(60):  # shifted traffic: first class, female, older, richer
                body = [example | {"Pclass": 1, "Sex": "female", "Age": 60.0 + i % 10,
                                   "Fare": 200.0 + j} for j in range(5)]  # fmt: skip
                r = client.post("/predict", json=body)
                assert r.status_code == 200
                if i % 2 == 0:
                    items = [{"request_id": r.headers["x-request-id"], "record_index": j,
                              "label": 1} for j in range(5)]  # fmt: skip
                    assert client.post("/feedback", json=items).status_code == 202
                    fed += 5
        report_path = home / "drift.json"

        def complete_report() -> Any:
            if not report_path.is_file():
                return None
            report = orjson.loads(report_path.read_bytes())
            done = report["rows"]["current"] == 300 and report["quality"]["with_feedback"] == fed
            return report if done else None

        report = _wait(complete_report, 60, "a report over all 300 rows and their feedback")
        assert report["dataset_drift"] is True and (home / "drift.html").is_file()
        accuracy = report["quality"]["overall"]["accuracy"]
        # The model page shows it.
        summary = httpx.get(f"{server.url}/report", timeout=10).json()
        assert summary["dataset_drift"] is True and summary["quality"]["with_feedback"] == fed

        # Every worker's /metrics shows the same gauges, those of the last refresh.
        time.sleep(INTERVAL_S)  # one more refresh over the same rows: nothing changes now
        by_worker = _metrics_by_worker(server.url, example)
        assert len(by_worker) == 2, f"one worker answered every connection: {list(by_worker)}"
        answers = [_drift_samples(t) for texts in by_worker.values() for t in texts]
        assert all(a == answers[0] for a in answers)
        gauges = answers[0]
        model_label = (("model", "titanic"),)
        assert gauges[("tabserve_dataset_drift", model_label)] == 1
        assert gauges[("tabserve_feature_drifted", (("feature", "Sex"), *model_label))] == 1
        assert gauges[("tabserve_model_quality", (("metric", "accuracy"), *model_label))] == (
            pytest.approx(accuracy)
        )

        # One refresh per interval across both workers (each alone would make it two).
        def refreshes() -> float:
            return sample_sum(httpx.get(f"{server.url}/metrics").text,
                              "tabserve_drift_refreshes_total")  # fmt: skip

        before, started = refreshes(), time.monotonic()
        time.sleep(4 * INTERVAL_S)
        ran = refreshes() - before
        intervals = (time.monotonic() - started) / INTERVAL_S
        assert 1 <= ran <= intervals + 1, (ran, intervals)

        # A refresh that fails (the model directory is gone): a log line and a metric.
        shutil.move(model, tmp_path / "gone")

        def failures() -> float:
            text = httpx.get(f"{server.url}/metrics").text
            return sample_sum(text, "tabserve_drift_refreshes_total", outcome="failed")

        _wait(lambda: failures() >= 2, 60, "failed refreshes")
        assert httpx.get(f"{server.url}/health").status_code == 200
        assert httpx.post(f"{server.url}/predict", json=example).status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
        assert sample_sum(text, "tabserve_dataset_drift", model="titanic") == 1  # last good
        log = server.log()
        lines = [line for line in log.splitlines() if "drift refresh failed" in line]
        assert lines and "Traceback" not in log
        assert server.stop(timeout=30) == 0
