"""Under CI=true a skip is a failure (tests/fixtures/ci.py): a green CI means the real stack ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.ci"]\n')
    (tmp_path / "test_needs_a_server.py").write_text(
        "import pytest\n\ndef test_postgres():\n    pytest.skip('PostgreSQL is not installed')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip


def test_a_skip_fails_on_ci_and_stays_a_skip_elsewhere(tmp_path: Path) -> None:
    on_ci = _run(tmp_path, "true")
    assert on_ci.returncode == 1 and "skipped under CI=true" in on_ci.stdout
    assert "PostgreSQL is not installed" in on_ci.stdout
    laptop = _run(tmp_path, None)
    assert laptop.returncode == 0 and "1 skipped" in laptop.stdout
