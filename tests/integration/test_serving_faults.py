"""Faults against real server processes: overload, slow queues, SIGTERM under load, a worker
killed under load, corrupt or missing model files at start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import sqlalchemy as sa

from tabserve.predlog.store import predictions
from tests.fixtures.servers import running_server
from tests.helpers.prometheus import sample_sum

pytestmark = pytest.mark.integration

RECORD = {"Pclass": 3, "Sex": "male", "Age": 22, "SibSp": 1, "Parch": 0, "Fare": 7.25}
RECORD["Embarked"] = "S"


async def burst(url: str, n: int, path: str = "/predict") -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return list(await asyncio.gather(*(client.post(f"{url}{path}", json=RECORD)
                                           for _ in range(n))))  # fmt: skip


def test_past_max_in_flight_answers_503_with_retry_after(titanic_model_dir: Path) -> None:
    # A long batching delay keeps requests in flight, so the bound is reached for sure.
    args = ("--max-in-flight", "4", "--max-queue-delay-us", "300000", "--max-batch-size", "1000")
    with running_server(titanic_model_dir, *args) as s:
        answers = asyncio.run(burst(s.url, 30))
        statuses = Counter(r.status_code for r in answers)
        text = httpx.get(f"{s.url}/metrics").text
    assert set(statuses) == {200, 503}, statuses
    assert statuses[200] >= 4
    shed = [r for r in answers if r.status_code == 503]
    assert all(r.headers["retry-after"] == "1" and "overloaded" in r.json()["error"] for r in shed)
    assert sample_sum(text, "tabserve_requests_shed_total", reason="overload") == len(shed)


def test_a_request_that_waited_past_the_timeout_is_not_run(titanic_model_dir: Path) -> None:
    args = ("--request-timeout", "0.05", "--max-queue-delay-us", "300000")
    with running_server(titanic_model_dir, *args) as s:
        r = httpx.post(f"{s.url}/predict", json=RECORD, timeout=10)
        text = httpx.get(f"{s.url}/metrics").text
    assert r.status_code == 503 and "request timeout" in r.json()["error"]
    assert r.headers["retry-after"] == "1"
    assert sample_sum(text, "tabserve_requests_shed_total", reason="timeout") == 1


def _load(url: str, stop: threading.Event, seen: Counter[str], lock: threading.Lock) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                r = client.post(f"{url}/predict", json=[RECORD, RECORD])
                key = f"status:{r.status_code}"
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                key = f"gone:{type(exc).__name__}"  # the listener closed: never accepted
            with lock:
                seen[key] += 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_under_load_drains_flushes_and_exits_0(
    titanic_model_dir: Path, tmp_path: Path, workers: str
) -> None:
    log_db = f"sqlite:///{tmp_path / 'log.db'}"
    env = {"TABSERVE_LOG_DB": log_db}
    with running_server(titanic_model_dir, "--workers", workers, env=env) as s:
        stop, lock, seen = threading.Event(), threading.Lock(), Counter[str]()
        threads = [threading.Thread(target=_load, args=(s.url, stop, seen, lock))
                   for _ in range(6)]  # fmt: skip
        for t in threads:
            t.start()
        time.sleep(1.5)
        os.kill(s.pid, signal.SIGTERM)
        code = s.process.wait(30)
        stop.set()
        for t in threads:
            t.join(15)
    print(f"SIGTERM with {workers} worker(s) under load: exit {code}, answers {dict(seen)}")
    assert code == 0, s.log()
    answered = seen["status:200"]
    assert answered > 50 and set(seen) <= {"status:200"} | {k for k in seen if k.startswith("gone")}
    engine = sa.create_engine(log_db)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one()
    engine.dispose()
    assert rows == 2 * answered  # every answered record was logged before the exit


def test_a_killed_worker_is_replaced_and_the_service_goes_on(titanic_model_dir: Path) -> None:
    with running_server(titanic_model_dir, "--workers", "2") as s:
        parent = psutil.Process(s.pid)

        def workers() -> list[psutil.Process]:
            # uvicorn's workers are spawned children (not multiprocessing's resource tracker).
            out = []
            for child in parent.children():
                with contextlib.suppress(psutil.Error):
                    line = " ".join(child.cmdline())
                    if "spawn_main" in line and "resource_tracker" not in line:
                        out.append(child)
            return out

        deadline = time.monotonic() + 20
        while len(workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = {w.pid for w in workers()}
        assert len(before) == 2
        stop, lock, seen = threading.Event(), threading.Lock(), Counter[str]()
        threads = [threading.Thread(target=_load, args=(s.url, stop, seen, lock))
                   for _ in range(4)]  # fmt: skip
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = sorted(before)[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        recovered = None
        while time.monotonic() - killed_at < 10:
            now = {w.pid for w in workers()}
            if len(now) == 2 and victim not in now:
                recovered = time.monotonic() - killed_at
                break
            time.sleep(0.05)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(15)
    total = sum(seen.values())
    failed = total - seen["status:200"]
    print(f"killed worker replaced in {recovered} s; {failed} of {total} requests failed: {seen}")
    assert recovered is not None and recovered < 10, "the worker was not replaced"
    assert failed / total < 0.01, seen
    # The answering never stopped: the surviving worker took the load meanwhile.
    assert seen["status:200"] > 100


def _serve_exit(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tabserve", "serve", str(model), "--port", "0", *args]
    env = {**os.environ, "TABSERVE_LOG_DB": "off"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_corrupt_model_file_is_a_clear_error_and_exit_2(
    titanic_model_dir: Path, tmp_path: Path, workers: str
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(titanic_model_dir, broken)
    (broken / "model.onnx").write_bytes(b"this is not an ONNX graph")
    done = _serve_exit(broken, "--workers", workers)
    assert done.returncode == 2, done.stderr
    assert f"{broken / 'model.onnx'} cannot be loaded" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreadable_spec_or_a_missing_model_file_is_a_clear_error_and_exit_2(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(titanic_model_dir, broken)
    (broken / "feature_spec.json").write_text("{ not json")
    done = _serve_exit(broken)
    assert done.returncode == 2 and "feature_spec.json is not a valid feature spec" in done.stderr
    shutil.copy(titanic_model_dir / "feature_spec.json", broken / "feature_spec.json")
    # No ONNX file and no pickle either: the native runtime has nothing to load.
    (broken / "model.onnx").unlink()
    (broken / "model.pkl").unlink()
    done = _serve_exit(broken)
    assert done.returncode == 2, done.stderr
    assert "the sklearn model cannot be loaded" in done.stderr and str(broken) in done.stderr
    assert "Traceback" not in done.stderr


class _Tripwire:
    """Unpickling this creates a directory: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_the_onnx_path_never_unpickles_the_model(
    titanic_model_dir: Path, tmp_path: Path, serve_model: Any
) -> None:
    """With model.onnx present, serving (default --runtime auto) answers without loading the
    model's pickle: a pickle that leaves a mark when loaded leaves none. The same pickle under
    --runtime native does leave it — so the mark is a real tripwire."""
    import pickle

    model = tmp_path / "model"
    shutil.copytree(titanic_model_dir, model)
    marker = tmp_path / "unpickled"
    (model / "model.pkl").write_bytes(pickle.dumps(_Tripwire(marker)))
    server = serve_model(model)
    answer = httpx.post(f"{server.url}/predict", json=RECORD, timeout=10)
    assert answer.status_code == 200 and answer.json()["prediction"] in (0, 1)
    server.stop()
    assert not marker.exists(), "the ONNX path loaded the pickle"
    done = _serve_exit(model, "--runtime", "native")
    assert done.returncode == 2, done.stderr  # the "model" it unpickled is not a model
    assert marker.is_dir()
