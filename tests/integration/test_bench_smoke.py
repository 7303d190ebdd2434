"""The serving benchmark's driver, end to end in its quickest mode, on floor + tabserve.

Runs ``benchmarks/serving.py --quick --servers floor,tabserve`` as a user would (no peer venvs),
then reads what it wrote: both servers measured at every level without errors, tabserve's answers
matched the sklearn pipeline, ratios to tabserve in the table, and the PNG exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "benchmarks" / "serving.py"
RATIO = "\u00d7)"  # closes "(0.52 times)": the ratio to tabserve after a figure


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bench")
    argv = [sys.executable, str(DRIVER), "--quick", "--servers", "floor,tabserve"]
    argv += ["--no-perf-analyzer", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


def test_every_server_and_level_is_measured_without_errors(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    assert list(results["servers"]) == ["floor", "tabserve"]
    levels = [str(c) for c in results["config"]["levels"]]
    for name, server in results["servers"].items():
        assert server["cold_start_s"] > 0, name
        assert server["memory"]["rss_mb"] > 10, name
        for c in levels:
            level = server["single"][c]
            assert level["errors"] == 0 and level["ok"] > 0, (name, c, level)
            assert level["throughput_rps"] > 0
        assert server["batch"]["rows_per_s"] > 0 and server["batch"]["errors"] == 0, name


def test_tabserve_answers_match_sklearn(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    tabserve = json.loads((out / "results.json").read_text())["servers"]["tabserve"]
    checks = tabserve["correctness"]
    assert checks and all(c["wrong"] == 0 and c["failed"] == 0 for c in checks), checks
    assert sum(c["checked"] for c in checks) >= 100


def test_table_shows_ratios_and_chart_is_written(quick_run: tuple[Path, str]) -> None:
    out, stdout = quick_run
    markdown = (out / "results.md").read_text()
    floor_rows = [line for line in markdown.splitlines() if line.startswith("| floor |")]
    assert floor_rows and all(RATIO in row for row in floor_rows), markdown
    assert "tabserve" in stdout and RATIO in stdout
    png = (out / "serving.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_unknown_server_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, str(DRIVER), "--servers", "floor,nginx"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "nginx" in done.stderr and "Traceback" not in done.stderr
