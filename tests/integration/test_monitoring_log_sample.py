"""`tabserve serve --log-sample` reaches the prediction log of a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tabserve.modeldir import ModelDir
from tabserve.predlog.store import count_rows
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration

REQUESTS = 200


def test_log_sample_keeps_about_that_share_of_requests(
    titanic_model_dir: Path, tmp_path: Path
) -> None:
    example = ModelDir(titanic_model_dir).spec().example_record()
    url = f"sqlite:///{tmp_path / 'log.db'}"
    args = ("--log-db", url, "--log-sample", "0.5")
    with running_server(titanic_model_dir, *args, env={"TABSERVE_HOME": str(tmp_path)}) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(REQUESTS):
                assert client.post("/predict", json=example).status_code == 200
        server.stop(timeout=30)  # SIGTERM: the log flushes its queue before the process exits
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    logged = count_rows(engine)
    engine.dispose()
    # Request ids are random: binomial(200, 0.5) lies in [60, 140] but for ~1e-8 of runs.
    assert 60 <= logged <= 140, logged


def test_log_sample_outside_0_1_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tabserve", "serve", "models:/x@champion", "--log-sample", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--log-sample" in done.stderr and "Traceback" not in done.stderr
