"""The generated locustfile, run headless by Locust against real servers."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.loadtest_server import running_server as stand_in

pytestmark = pytest.mark.integration


def _locust(locustfile: Path, url: str, out: Path) -> tuple[int, dict[str, str]]:
    """Run Locust headless for 3 s; return its exit code and the aggregated stats row."""
    locust = shutil.which("locust", path=str(Path(sys.executable).parent))
    assert locust, "locust is not installed in the venv"
    prefix = out / "stats"
    proc = subprocess.run(
        [locust, "-f", str(locustfile), "--headless", "-u", "5", "-r", "5", "-t", "3s",
         "--host", url, "--only-summary", "--csv", str(prefix), "--stop-timeout", "2"],
        capture_output=True, text=True, timeout=90, cwd=out,
    )  # fmt: skip
    with (out / "stats_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    return proc.returncode, rows["Aggregated"]


def _generate(url: str, path: Path) -> Path:
    source = subprocess.run(
        [sys.executable, "-m", "tabserve", "locustfile", url],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    path.write_text(source)
    return path


def test_generated_locustfile_runs_without_failures(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    from tests.fixtures.servers import running_server

    with running_server(titanic_model_dir) as server:
        locustfile = _generate(server.url, tmp_path / "locustfile.py")
        code, stats = _locust(locustfile, server.url, tmp_path)
    assert int(stats["Request Count"]) > 50
    assert int(stats["Failure Count"]) == 0
    assert code == 0


def test_generated_locustfile_fails_wrong_answers(tmp_path: Path) -> None:
    with stand_in("wrong") as url:
        locustfile = _generate(url, tmp_path / "locustfile.py")
        code, stats = _locust(locustfile, url, tmp_path)
    assert int(stats["Request Count"]) > 0
    assert int(stats["Failure Count"]) == int(stats["Request Count"])
    assert code != 0
