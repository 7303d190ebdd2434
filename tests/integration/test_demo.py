"""`make demo` end to end: train → register → serve → sweep → shifted traffic → drift report."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_the_whole_loop_and_stops_its_server(tmp_path: Path) -> None:
    env = os.environ | {
        "TABSERVE_HOME": str(tmp_path),
        "TABSERVE_DEMO_CONFIGS": str(REPO / "configs"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tabserve.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    for name in ("results.csv", "results.json", "latency.png", "drift.html", "drift.json"):
        assert (results / name).stat().st_size > 0, name

    sweep = json.loads((results / "results.json").read_text())
    levels = sweep["levels"]
    assert [level["concurrency"] for level in levels] == [1, 2, 5, 10, 20, 50]
    assert all(level["errors"] == 0 and level["ok"] == level["requests"] for level in levels)

    # The shifted batch moved Age, Fare, Pclass and Sex; the report must say so.
    drift = json.loads((results / "drift.json").read_text())
    drifted = {f["name"] for f in drift["features"] if f["drifted"]}
    assert {"Age", "Fare", "Pclass", "Sex"} <= drifted
    assert drift["dataset_drift"] is True

    # The server it started is gone: its port no longer answers.
    log = (results / "server.log").read_text()
    assert "serving titanic version 1" in log
    port = int(done.stderr.split("serving at http://127.0.0.1:")[1].split()[0])
    assert not _port_is_open(port)
