"""The servers of the benchmark: how each is started, when it is ready, and stopping it by PID.

Each server runs as a child process on 127.0.0.1 with a free port. Cold start is the wall time
from ``Popen`` to the first 200 on its readiness URL. Stopping sends SIGTERM to the PID we
started, then SIGKILL to every process of its tree that is still alive (PIDs collected before
the SIGTERM, so a worker orphaned by its parent is still ours to stop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from harness.model import MODEL_NAME, MODEL_URI, Workbench
from harness.protocols import (
    Codec,
    floor_codec,
    handwritten_codec,
    mlflow_codec,
    mlserver_codec,
    tabserve_codec,
)
from tabserve.local_server import free_port

BENCH_DIR = Path(__file__).resolve().parent.parent
READY_POLL_S = 0.01


@dataclass(frozen=True)
class ServerDef:
    """One contender: a name for the table and how to build its command for a port."""

    name: str
    label: str  # one line for the table: what it is
    kind: str  # floor | tabserve | peer
    workers: int
    command: Callable[[Workbench, int, Path], list[str]]  # (bench, port, workdir) -> argv
    ready_path: str
    codec: Callable[[Workbench], Codec]
    env: Callable[[Workbench], dict[str, str]] = lambda bench: {}
    v2_model: str | None = None  # the model name perf_analyzer asks for, if it speaks v2
    needs_venv: str | None = None  # a peer venv (benchmarks/.venv-<name>) built before start
    notes: list[str] = field(default_factory=list)


def _python() -> str:
    return sys.executable


def _tabserve(*flags: str) -> Callable[[Workbench, int, Path], list[str]]:
    def command(bench: Workbench, port: int, workdir: Path) -> list[str]:
        argv = [_python(), "-m", "tabserve", "serve", MODEL_URI, "--host", "127.0.0.1"]
        return [*argv, "--port", str(port), *flags]

    return command


def _tabserve_grpc(bench: Workbench, port: int, workdir: Path) -> list[str]:
    # The gRPC port is the HTTP port + 1000 (checked free when the run picks the HTTP one).
    return _tabserve("--grpc-port", str(port + 1000))(bench, port, workdir)


def _tabserve_env(bench: Workbench) -> dict[str, str]:
    return {"TABSERVE_HOME": str(bench.home)}


# Another checkout's src/ (e.g. a worktree of the previous commit) to run as `tabserve-baseline`:
# same venv and model, older code first on the path. For before/after figures of a change.
BASELINE_ENV = "TABSERVE_BENCH_BASELINE_SRC"


def _baseline_env(bench: Workbench) -> dict[str, str]:
    src = os.environ.get(BASELINE_ENV)
    if not src:
        raise RuntimeError(f"tabserve-baseline needs --baseline-src (or {BASELINE_ENV})")
    return {**_tabserve_env(bench), "PYTHONPATH": src}


def _floor(bench: Workbench, port: int, workdir: Path) -> list[str]:
    script = BENCH_DIR / "peers" / "floor.py"
    return [_python(), str(script), "--port", str(port), "--workers", "1"]


def _raw_floor(bench: Workbench, port: int, workdir: Path) -> list[str]:
    return [_python(), str(BENCH_DIR / "peers" / "raw_floor.py"), "--port", str(port)]


def _handwritten_onnx(bench: Workbench, port: int, workdir: Path) -> list[str]:
    script = BENCH_DIR / "peers" / "handwritten_onnx_server.py"
    onnx, spec = bench.model_dir / "model.onnx", bench.model_dir / "feature_spec.json"
    return [_python(), str(script), "--onnx", str(onnx), "--spec", str(spec), "--port", str(port)]


def _handwritten(bench: Workbench, port: int, workdir: Path) -> list[str]:
    script = BENCH_DIR / "peers" / "handwritten_server.py"
    spec = bench.model_dir / "feature_spec.json"
    argv = [_python(), str(script), "--model", str(bench.pickle_path), "--spec", str(spec)]
    return [*argv, "--port", str(port)]


def _mlflow(bench: Workbench, port: int, workdir: Path) -> list[str]:
    mlflow = str(Path(_python()).parent / "mlflow")
    argv = [mlflow, "models", "serve", "-m", MODEL_URI, "--env-manager", "local"]
    return [*argv, "-h", "127.0.0.1", "-p", str(port), "-w", "1"]


def _mlflow_env(bench: Workbench) -> dict[str, str]:
    # `mlflow models serve` starts `uvicorn` by name: the venv's bin must be on PATH.
    path = f"{Path(_python()).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {"MLFLOW_TRACKING_URI": bench.tracking_uri, "PATH": path}


def _mlserver(bench: Workbench, port: int, workdir: Path) -> list[str]:
    from harness.venvs import mlserver_bin
    from peers.mlserver_settings import write_repository

    repo = write_repository(
        workdir / "mlserver-repo",
        model=bench.pickle_path,
        spec=bench.model_dir / "feature_spec.json",
        name=MODEL_NAME,
        port=port,
        grpc_port=free_port(),
        metrics_port=free_port(),
    )
    return [str(mlserver_bin() / "mlserver"), "start", str(repo)]


SERVERS: dict[str, ServerDef] = {
    s.name: s
    for s in [
        ServerDef(
            "raw-floor", "constant answer, bare ASGI on uvicorn (the machine's limit)", "floor",
            1, _raw_floor, "/ready", lambda b: floor_codec(),
        ),
        ServerDef(
            "floor", "constant answer, FastAPI on uvicorn", "floor", 1, _floor,
            "/ready", lambda b: floor_codec(),
        ),
        ServerDef(
            "tabserve", "tabserve serve, ONNX, batching on", "tabserve", 1, _tabserve(),
            "/ready", lambda b: tabserve_codec(b.spec), _tabserve_env, v2_model=MODEL_NAME,
        ),
        ServerDef(
            "tabserve-baseline", "tabserve serve from --baseline-src (before a change)",
            "tabserve", 1, _tabserve(), "/ready", lambda b: tabserve_codec(b.spec),
            _baseline_env, v2_model=MODEL_NAME,
        ),
        ServerDef(
            "tabserve-nobatch", "tabserve serve, ONNX, --no-batching", "tabserve", 1,
            _tabserve("--no-batching"), "/ready", lambda b: tabserve_codec(b.spec),
            _tabserve_env, v2_model=MODEL_NAME,
        ),
        ServerDef(
            "tabserve-nolog", "as tabserve, with the prediction log off (--log-db off)",
            "tabserve", 1, _tabserve("--log-db", "off"), "/ready",
            lambda b: tabserve_codec(b.spec), _tabserve_env, v2_model=MODEL_NAME,
        ),
        ServerDef(
            "tabserve-grpc", "tabserve serve with --grpc-port (perf_analyzer over gRPC)",
            "tabserve", 1, _tabserve_grpc, "/ready", lambda b: tabserve_codec(b.spec),
            _tabserve_env, v2_model=MODEL_NAME,
        ),
        ServerDef(
            "tabserve-2w", "tabserve serve, ONNX, batching on, --workers 2", "tabserve", 2,
            _tabserve("--workers", "2"), "/ready", lambda b: tabserve_codec(b.spec),
            _tabserve_env, v2_model=MODEL_NAME,
        ),
        ServerDef(
            "handwritten-onnx", "FastAPI + pydantic + onnxruntime, the same model.onnx", "peer",
            1, _handwritten_onnx, "/health", lambda b: handwritten_codec(b.spec),
        ),
        ServerDef(
            "handwritten", "FastAPI + pydantic + pickle + DataFrame per request", "peer", 1,
            _handwritten, "/health", lambda b: handwritten_codec(b.spec),
        ),
        ServerDef(
            "mlflow", "mlflow models serve --env-manager local", "peer", 1, _mlflow, "/ping",
            lambda b: mlflow_codec(b.spec), _mlflow_env,
        ),
        ServerDef(
            "mlserver", "MLServer 1.7.1, sklearn runtime, v2", "peer", 1, _mlserver,
            "/v2/health/ready", lambda b: mlserver_codec(b.spec), v2_model=MODEL_NAME,
            needs_venv="mlserver",
        ),
    ]
}  # fmt: skip


@dataclass
class Running:
    """A started server: its process, where it listens, how long it took to be ready."""

    definition: ServerDef
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    cold_start_s: float = float("nan")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def memory(self) -> dict[str, Any]:
        """RSS of the whole process tree (MB) and of its largest process (a worker)."""
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return {"rss_mb": float("nan"), "max_process_rss_mb": float("nan"), "processes": 0}
        rss = []
        for proc in procs:
            try:
                rss.append(proc.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                continue
        return {"rss_mb": sum(rss), "max_process_rss_mb": max(rss), "processes": len(rss)}

    def stop(self, timeout: float = 20.0) -> None:
        try:
            tree = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        for proc in tree:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    os.kill(proc.pid, signal.SIGKILL)
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue
        if self.process.poll() is None:
            self.process.wait(10)
        if self in RUNNING:
            RUNNING.remove(self)


# Servers started and not yet stopped, so a signal handler can stop them by PID.
RUNNING: list[Running] = []


class StartError(RuntimeError):
    """The server exited or never became ready; the message carries its log's tail."""


def start(definition: ServerDef, bench: Workbench, workdir: Path, timeout: float) -> Running:
    """Start ``definition`` and wait until its readiness URL answers 200 (or fail)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = definition.command(bench, port, workdir)
    env = {**os.environ, **definition.env(bench)}
    log_path = workdir / f"{definition.name}.log"
    with log_path.open("wb") as log:
        began = time.perf_counter()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    running = Running(definition, process, port, log_path)
    RUNNING.append(running)
    url = f"{running.url}{definition.ready_path}"
    deadline = began + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise StartError(
                    f"{definition.name} exited with {process.returncode}:\n{running.log_tail()}"
                )
            try:
                if client.get(url).status_code == 200:
                    running.cold_start_s = time.perf_counter() - began
                    return running
            except httpx.HTTPError:
                pass
            time.sleep(READY_POLL_S)
    running.stop()
    raise StartError(f"{definition.name} not ready in {timeout:g}s:\n{running.log_tail()}")
