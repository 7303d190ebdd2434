"""`tabserve doctor` against the real stack: a real MLflow server (PostgreSQL + S3 behind it)
and the prediction log on a real PostgreSQL, with a password in the URL that never shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tabserve.local_server import free_port

pytestmark = pytest.mark.integration

SECRET = "doctor-pw-0b7f"


def test_doctor_passes_on_the_real_stack_and_hides_the_password(
    mlflow_server: Any, postgres_database: str, tmp_path: Path
) -> None:
    # Trust auth on the test cluster: the password is accepted and ignored, as in many setups.
    log_db = postgres_database.replace("://postgres@", f"://postgres:{SECRET}@")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABSERVE_")}
    env.update(
        TABSERVE_HOME=str(tmp_path), TABSERVE_TRACKING_URI=mlflow_server.url, TABSERVE_LOG_DB=log_db
    )
    done = subprocess.run(
        [sys.executable, "-m", "tabserve", "doctor", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{mlflow_server.url} answers" in done.stdout
    assert "accepts connections; predictions table present" in done.stdout
    assert SECRET not in done.stdout + done.stderr and "postgres:***@" in done.stdout
    # It created the table the server would create on start, nothing else.
    engine = sa.create_engine(postgres_database)
    try:
        assert "predictions" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
