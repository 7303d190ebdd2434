"""`tabserve doctor` and `tabserve --version` as a user runs them: one line per check, what to
fix for each failure, exit 1 on any, and no password in the output."""

from __future__ import annotations

import importlib.metadata
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tabserve
from tabserve.local_server import free_port
from tabserve.redact import mask_url, scrub

SECRET = "hunter2-s3cret"


def doctor(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("TABSERVE_")}
    return subprocess.run(
        [sys.executable, "-m", "tabserve", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
        env={**clean, "TABSERVE_HOME": str(home), **env},
    )


def lines(out: str) -> dict[str, str]:
    """check name → its line."""
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[0] in ("ok", "warn", "FAIL"):
            found[parts[1]] = line
    return found


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_version_is_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tabserve", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == f"tabserve {tabserve.__version__}"
    assert tabserve.__version__ == importlib.metadata.version("tabserve")


def test_a_fresh_home_with_a_model_passes(titanic_model_dir: Path, tmp_path: Path) -> None:
    done = doctor(str(titanic_model_dir), "--port", str(free_port()), home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done.stdout)
    assert set(found) == {"install", "home", "tracking", "model", "log", "port", "report"}
    assert all(line.startswith("ok") for line in found.values()), done.stdout
    assert "titanic version" in found["model"] and "ONNX" in found["model"]
    assert done.stdout.rstrip().endswith("all checks passed")
    # Doctor made nothing the first run would make: no store, no log file.
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "predictions.db").exists()


def test_each_failure_says_what_to_fix_and_exits_1(tmp_path: Path, busy_port: int) -> None:
    done = doctor(
        str(tmp_path / "no-such-model"),
        "--port",
        str(busy_port),
        "--log-db",
        f"postgresql+psycopg://tabserve:{SECRET}@127.0.0.1:{free_port()}/tabserve",
        home=tmp_path,
        TABSERVE_TRACKING_URI=f"http://admin:{SECRET}@127.0.0.1:{free_port()}",
    )
    assert done.returncode == 1
    found = lines(done.stdout)
    for name in ("tracking", "model", "log", "port"):
        assert found[name].startswith("FAIL"), found[name]
    assert "not reachable" in found["tracking"] and "mlflow server" in found["tracking"]
    assert "no-such-model" in found["model"]
    assert "Connection refused" in found["log"] and "--log-db off" in found["log"]
    assert f"127.0.0.1:{busy_port} is not free" in found["port"] and "--port" in found["port"]
    assert "4 checks failed" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert "admin:***@" in found["tracking"] and "tabserve:***@" in found["log"]
    assert "Traceback" not in done.stderr


def test_an_unwritable_home_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = doctor("--port", str(free_port()), home=tmp_path, TABSERVE_HOME=str(blocker / "home"))
    assert done.returncode == 1
    home = lines(done.stdout)["home"]
    assert home.startswith("FAIL") and "not a directory" in home and "TABSERVE_HOME" in home


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://u:pw@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("http://token@mlflow:5000", "http://***@mlflow:5000"),
        ("https://u:p%40ss@[::1]:5000/x?y=1", "https://u:***@[::1]:5000/x?y=1"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),  # no secret: unchanged
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_scrub_removes_quoted_secrets_and_keeps_the_url_readable() -> None:
    url = "postgresql://tabserve:p%40ss@h/tabserve"
    text = scrub(f"cannot open {url}: password 'p@ss' rejected for tabserve", url)
    assert (
        text == "cannot open postgresql://tabserve:***@h/tabserve: password '***' rejected "
        "for tabserve"
    )
