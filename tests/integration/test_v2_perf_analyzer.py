"""Triton's perf_analyzer (the C++ binary from the tritonclient 2.40 wheel) against a real
``tabserve serve`` process over HTTP: it reads /v2 metadata and /config, sends binary tensors and
reports throughput.

Two runs:
- default input data (random numbers) on an all-numeric model (heart): the literal "default
  flags" case. With categorical features perf_analyzer's random 128-character strings can never
  be a known category, so the server rightly answers 400 — see the titanic run;
- titanic with ``--input-data`` built from the model's own rows (tabserve.tools.perf_data).

The only flags beyond ``-m -u -i http`` shorten the measurement: ``-p 1000`` (1 s windows, not 5)
and ``--stability-percentage 100``, because on a shared 2-core machine three 5 s windows rarely
agree within 10 % and perf_analyzer then exits 2 after ~60 s without a number.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabserve.modeldir import ModelDir
from tabserve.tools.perf_analyzer import PerfAnalyzer, PerfAnalyzerUnavailable, ensure_perf_analyzer
from tabserve.tools.perf_data import write_input_data
from tests.fixtures.servers import ServerProcess, running_server

pytestmark = pytest.mark.integration

SHORT_WINDOWS = ["-p", "1000", "--stability-percentage", "100"]
RUN_TIMEOUT_S = 120
THROUGHPUT = re.compile(r"Throughput: ([0-9.]+) infer/sec")


@pytest.fixture(scope="module")
def perf_analyzer() -> PerfAnalyzer:
    try:
        return ensure_perf_analyzer()
    except PerfAnalyzerUnavailable as exc:
        pytest.skip(f"perf_analyzer cannot run on this machine: {exc}")


@pytest.fixture(scope="module")
def heart_server(heart_model_dir: Path) -> Iterator[ServerProcess]:
    with running_server(heart_model_dir, "--ood", "warn") as process:
        yield process


@pytest.fixture(scope="module")
def titanic_server(titanic_model_dir: Path) -> Iterator[ServerProcess]:
    with running_server(titanic_model_dir) as process:
        yield process


def _run(tool: PerfAnalyzer, model: str, server: ServerProcess, *extra: str) -> str:
    argv = [str(tool.binary), "-m", model, "-u", f"127.0.0.1:{server.port}", "-i", "http"]
    done = subprocess.run(
        [*argv, *extra], capture_output=True, text=True, env=tool.env(), timeout=RUN_TIMEOUT_S
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"perf_analyzer exited {done.returncode}:\n{output[-3000:]}"
    return output


def _throughput(output: str) -> float:
    match = THROUGHPUT.search(output)
    assert match, f"no throughput in perf_analyzer output:\n{output[-3000:]}"
    return float(match.group(1))


def test_default_input_data(perf_analyzer: PerfAnalyzer, heart_server: ServerProcess) -> None:
    output = _run(perf_analyzer, "heart", heart_server, *SHORT_WINDOWS)
    assert "error" not in output.lower()
    assert _throughput(output) > 0


def test_titanic_with_rows_from_the_model(
    perf_analyzer: PerfAnalyzer,
    titanic_server: ServerProcess,
    titanic_model_dir: Path,
    tmp_path: Path,
) -> None:
    data = write_input_data(ModelDir(titanic_model_dir), tmp_path / "titanic.json", limit=50)
    output = _run(
        perf_analyzer, "titanic", titanic_server, "--input-data", str(data), *SHORT_WINDOWS
    )
    assert "error" not in output.lower()
    assert _throughput(output) > 0


def test_random_strings_are_rejected_as_unknown_categories(
    perf_analyzer: PerfAnalyzer, titanic_server: ServerProcess
) -> None:
    """Why titanic needs --input-data: the 400 names the field, and perf_analyzer shows it."""
    argv = [str(perf_analyzer.binary), "-m", "titanic", "-u", f"127.0.0.1:{titanic_server.port}"]
    done = subprocess.run(
        [*argv, "-i", "http", *SHORT_WINDOWS],
        capture_output=True,
        text=True,
        env=perf_analyzer.env(),
        timeout=RUN_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert "is not a known category" in output and "Sex" in output, output[-3000:]
