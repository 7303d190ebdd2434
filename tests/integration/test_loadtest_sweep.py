"""The load tester against real server processes: a tabserve server and a misbehaving stand-in."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tabserve.loadtest.sweep import run_open, run_sweep
from tests.helpers.loadtest_server import running_server as stand_in

pytestmark = pytest.mark.integration

COLUMNS = ["concurrency", "requests", "errors", "errors_by_kind", "throughput_rps", "avg_ms",
           "q25_ms", "q50_ms", "q90_ms", "q95_ms", "q99_ms"]  # fmt: skip


@pytest.fixture(scope="module")
def titanic_server(titanic_model_dir: Path):  # type: ignore[no-untyped-def]
    from tests.fixtures.servers import running_server

    with running_server(titanic_model_dir) as server:
        yield server


def test_sweep_against_tabserve_has_the_table_columns_and_no_errors(
    titanic_server, tmp_path: Path
) -> None:
    levels = [1, 5, 20]
    results = run_sweep(titanic_server.url, levels, 150, tmp_path, progress=False)
    assert [r.concurrency for r in results] == levels
    for r in results:
        assert (r.requests, r.ok, r.errors) == (150, 150, 0), r.errors_by_kind
        assert r.throughput_rps > 0
        assert 0 < r.q25_ms <= r.q50_ms <= r.q90_ms <= r.q95_ms <= r.q99_ms <= r.max_ms
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["concurrency"]) for row in rows] == levels
    assert set(COLUMNS) <= set(rows[0])
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["machine"]["cpu_count"] >= 1 and document["machine"]["cpu_model"]
    assert document["machine"]["packages"]["tabserve"]
    assert document["run"]["model"] == "titanic" and document["run"]["endpoint"] == "/predict"
    assert len(document["levels"]) == 3
    png = (tmp_path / "latency.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_v2_batched_sweep_against_tabserve(titanic_server) -> None:
    results = run_sweep(
        titanic_server.url, [4], 60, None, protocol="v2", batch_size=8, progress=False
    )
    (level,) = results
    assert (level.ok, level.errors) == (60, 0), level.errors_by_kind
    assert level.rows_per_s == pytest.approx(level.throughput_rps * 8)


def test_csv_data_against_tabserve(titanic_server, tmp_path: Path) -> None:
    from tabserve.datasets import load_builtin

    data = tmp_path / "titanic.csv"
    load_builtin("titanic").head(200).to_csv(data, index=False)
    (level,) = run_sweep(titanic_server.url, [2], 100, None, data=data, progress=False)
    assert (level.ok, level.errors) == (100, 0), level.errors_by_kind


def test_open_loop_against_tabserve_keeps_its_schedule(titanic_server) -> None:
    result = run_open(titanic_server.url, rate=200, duration=1.0, connections=16, progress=False)
    assert (result.requests, result.errors) == (200, 0), result.errors_by_kind
    assert result.target_rate == 200


@pytest.mark.parametrize(("mode", "kind"), [("wrong", "wrong_answer"), ("error", "status_500")])
def test_wrong_answers_and_500s_are_errors_not_speed(mode: str, kind: str) -> None:
    with stand_in(mode) as url:
        (level,) = run_sweep(url, [4], 200, None, progress=False)
        (v2_level,) = run_sweep(url, [2], 50, None, protocol="v2", model="toy", progress=False)
    assert (level.ok, level.errors, level.errors_by_kind) == (0, 200, {kind: 200})
    assert level.throughput_rps == 0.0
    assert v2_level.errors_by_kind == {kind: 50}


def test_server_closing_each_connection_costs_reconnects_not_errors() -> None:
    with stand_in("close") as url:
        (level,) = run_sweep(url, [3], 60, None, progress=False)
        opened = run_open(url, rate=100, duration=0.5, connections=4, progress=False)
    assert (level.ok, level.errors) == (60, 0), level.errors_by_kind
    assert (opened.ok, opened.errors) == (50, 0), opened.errors_by_kind


def test_timeouts_are_counted_as_errors() -> None:
    with stand_in("ok", delay_ms=3000) as url:
        (level,) = run_sweep(url, [2], 2, None, warmup=0, timeout=0.4, progress=False)
    assert level.errors_by_kind == {"timeout": 2}


def test_open_loop_latency_includes_queueing_at_a_slow_server() -> None:
    """Capacity 50/s (one request at a time, 20 ms each), offered 100/s for 1.2 s.

    Service time stays ~20 ms, but requests pile up: by the end each waits ~0.6 s. A closed loop
    at concurrency 1 would report ~20 ms; the open loop must report the queueing.
    """
    with stand_in("ok", delay_ms=20, serial=True) as url:
        (closed,) = run_sweep(url, [1], 20, None, warmup=2, progress=False)
        # Two connections: time measured from the actual send would stay <= ~40 ms here, so
        # only latency from the schedule can pass the assertions below.
        opened = run_open(url, rate=100, duration=1.2, connections=2, progress=False)
    assert closed.q50_ms < 60
    assert opened.errors == 0, opened.errors_by_kind
    assert opened.requests == 120
    assert opened.q90_ms > 300, opened
    assert opened.q50_ms > 5 * closed.q50_ms
    assert opened.throughput_rps < 60  # the server's capacity, not the offered rate
    assert opened.send_delay_q99_ms is not None and opened.send_delay_q99_ms > 300


def test_cli_loadtest_writes_results_and_fails_cleanly(titanic_server, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "tabserve", "loadtest"]
    ok = subprocess.run(
        [*cmd, titanic_server.url, "--concurrency", "1,2", "--requests", "30", "--out",
         str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "q99 ms" in ok.stdout and "results.csv" in ok.stdout
    assert (tmp_path / "latency.png").exists()
    down = subprocess.run([*cmd, "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 3
    assert "Traceback" not in down.stderr and "cannot reach" in down.stderr
