"""Peer venvs under ``benchmarks/.venv-<name>``: created on first use, reused while unchanged.

A peer whose dependencies clash with tabserve's (MLServer 1.7.1 needs an older FastAPI) gets its
own venv. It unpickles the pipeline tabserve's venv trained, so scikit-learn, numpy and pandas
are pinned to the versions in this interpreter. A stamp file holds a hash of the requirements
and pins; the venv is rebuilt only when that hash changes or the stamp is missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
PEERS_DIR = BENCH_DIR / "peers"
# Locks and install logs (git-ignored, like the venvs).
STATE_DIR = BENCH_DIR / ".work"
# Must match the pickling side exactly: a pipeline unpickled by another scikit-learn is unsafe.
PINNED_FROM_HERE = ("scikit-learn", "numpy", "pandas", "joblib")
INSTALL_TIMEOUT_S = 1200


class VenvError(RuntimeError):
    """A peer venv could not be built; the message names the step and the log file."""


def _pins() -> list[str]:
    return [f"{name}=={version(name)}" for name in PINNED_FROM_HERE]


def _fingerprint(requirements: Path, pins: list[str]) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update("\n".join([*pins, sys.version]).encode())
    return digest.hexdigest()


def ensure_venv(name: str, requirements: Path, log: Path | None = None) -> Path:
    """The ``bin`` directory of ``benchmarks/.venv-<name>``, built if missing or stale."""
    venv = BENCH_DIR / f".venv-{name}"
    stamp = venv / ".bench-stamp"
    pins = _pins()
    wanted = _fingerprint(requirements, pins)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / f"venv-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two drivers at once must not build it twice
        if stamp.is_file() and stamp.read_text() == wanted:
            return venv / "bin"
        if venv.exists():
            shutil.rmtree(venv)
        log = log or STATE_DIR / f"venv-{name}.log"
        _run([sys.executable, "-m", "venv", str(venv)], log, f"creating {venv}")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, "--upgrade", "pip"], log, "upgrading pip")
        _run([*pip, "-r", str(requirements), *pins], log, f"installing {requirements.name}")
        stamp.write_text(wanted)
    return venv / "bin"


def _run(cmd: list[str], log: Path, what: str) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            done = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VenvError(f"{what}: {exc} (log: {log})") from None
    if done.returncode != 0:
        raise VenvError(f"{what} failed with exit code {done.returncode} (log: {log})")


def mlserver_bin(log: Path | None = None) -> Path:
    return ensure_venv("mlserver", PEERS_DIR / "requirements-mlserver.txt", log)
