"""A model's life in a server: resolve → load → build the data plane → swap in → watch.

Written once here and used by the app's lifespan, the hot-reload watcher and ``tabserve serve``:

- ``resolve``: a ModelDir, a directory or a ``models:/`` URI → a checked ModelDir (one resolver:
  ``registry.resolve``; MLflow is imported only for registry URIs not yet in the cache).
- ``build_dataplane``: load the runtime and warm it up on the spec's example record, so the first
  request does not pay for the session's buffers (blocking: call it in a thread).
- ``swap``: serve a new plane from now on; the old one drains its in-flight requests and closes.
- ``load``: the background load of a single-worker server (``/health`` answers at once,
  ``/ready`` is 503 until the swap, or names the error if loading failed).
- ``watch``: follow a registry alias; a new version is fetched in a child process (MLflow and
  the model's libraries stay out of the server), built beside the old one and swapped in
  without failing a request. Errors keep the old version serving and are retried next poll.
- ``running`` also starts the drift refresher when ``--drift-interval`` is set
  (drift_refresh.py: ``tabserve drift`` in a child process, gauges, the page's report).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tabserve.errors import UserError
from tabserve.modeldir import ModelDir
from tabserve.serving.batcher import BatchingOptions
from tabserve.serving.dataplane import DataPlane, PredictionSink
from tabserve.serving.runtimes import load_runtime
from tabserve.serving.state import ServerState
from tabserve.serving.validation import ValidationOptions, validate_records
from tabserve.settings import Settings

log = logging.getLogger("tabserve.serving")


def resolve(model: ModelDir | str | Path, settings: Settings) -> ModelDir:
    """A checked model directory (UserError naming what is wrong otherwise)."""
    if isinstance(model, ModelDir):
        model.check()
        return model
    from tabserve import registry

    return registry.resolve(str(model), settings)


def build_dataplane(
    model_dir: ModelDir,
    settings: Settings,
    prediction_log: PredictionSink | None,
    tracing: Any = None,
) -> DataPlane:
    """Load the runtime and warm it up on the example record (blocking: call in a thread).

    With ``tracing`` (tracing.Tracing) the plane is its traced subclass."""
    runtime = load_runtime(model_dir, settings.runtime, settings.intra_op_threads)
    make = DataPlane if tracing is None else tracing.data_plane
    plane = make(
        model_dir,
        runtime,
        batching=BatchingOptions(
            enabled=settings.batching,
            max_batch_size=settings.max_batch_size,
            max_queue_delay_us=settings.max_queue_delay_us,
            timeout_s=settings.request_timeout_s,
        ),
        prediction_log=prediction_log,
        validation=ValidationOptions(coerce=settings.coerce, ood=settings.ood),
        max_rows=settings.max_rows,
    )
    # The first run of a session allocates its buffers; pay that before /ready says yes.
    warm = ValidationOptions(coerce=True, ood="off")
    runtime.predict(validate_records(plane.spec, [plane.spec.example_record()], warm).columns)
    return plane


async def swap(state: ServerState, new: DataPlane) -> None:
    """Serve ``new`` from now on; the old plane finishes its in-flight requests, then closes."""
    await new.start()
    old = state.plane
    state.plane = new  # one attribute store: a request sees either the old or the new plane
    state.spec = new.spec
    state.load_error = None
    if old is not None:
        await old.close()


async def load(state: ServerState, model_dir: ModelDir) -> None:
    """Build and swap in the first plane; on failure keep /health up and say why on /ready."""
    try:
        plane = await asyncio.to_thread(
            build_dataplane, model_dir, state.settings, state.prediction_log, state.tracing
        )
    except UserError as exc:
        state.load_error = str(exc)
        log.error("model not loaded: %s", exc)
    except Exception as exc:
        state.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("model not loaded")
    if state.load_error:
        if state.on_fatal is not None:
            state.on_fatal(state.load_error)
        return
    await swap(state, plane)
    log.info(
        "ready: %s version %s loaded (%s runtime)",
        plane.model_name,
        plane.model_version,
        plane.runtime.name,
    )


def _same_model(current: DataPlane, new: ModelDir) -> bool:
    return current.model_dir.path == new.path or (
        new.version == current.model_version and new.name == current.model_name
    )


def fetch_in_subprocess(uri: str, settings: Settings, timeout_s: float = 600.0) -> ModelDir:
    """``tabserve fetch URI`` in a child process: the model dir it resolved (and adopted).

    Resolving a new version imports MLflow, and adopting a plain MLflow model imports its
    libraries; doing either in the server would add hundreds of MB to every worker for good.
    """
    argv = [sys.executable, "-m", "tabserve", "fetch", uri]
    if settings.reference is not None:
        argv += ["--reference", str(settings.reference)]
    if settings.target:
        argv += ["--target", settings.target]
    env = {**os.environ, "TABSERVE_HOME": str(settings.home)}
    for key, value in (
        ("TABSERVE_TRACKING_URI", settings.tracking_uri),
        ("TABSERVE_REGISTRY_URI", settings.registry_uri),
        ("TABSERVE_CACHE_DIR", settings.cache_dir),
    ):
        if value:
            env[key] = str(value)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(lines[-1] if lines else f"tabserve fetch exited {done.returncode}")
    model = ModelDir(Path(done.stdout.strip().splitlines()[-1]))
    model.check()
    return model


async def watch(state: ServerState, uri: str) -> None:
    """Poll ``uri`` (``models:/name@alias``) until cancelled; swap when it names a new version.

    Each poll asks the registry which version the alias names, without importing MLflow
    (``registry.peek_version``); only a new version is fetched, in a child process.
    """
    from tabserve import registry

    settings = state.settings
    while True:
        await asyncio.sleep(settings.watch_interval_s)
        current = state.plane
        version = await asyncio.to_thread(registry.peek_version, uri, settings)
        if version is not None and current is not None and version == current.model_version:
            continue
        try:
            model_dir = await asyncio.to_thread(fetch_in_subprocess, uri, settings)
        except Exception as exc:  # registry down: keep serving what we have
            log.warning("watch: cannot resolve %s: %s", uri, exc)
            continue
        if current is not None and _same_model(current, model_dir):
            continue
        try:
            plane = await asyncio.to_thread(
                build_dataplane, model_dir, settings, state.prediction_log, state.tracing
            )
        except Exception:
            log.exception("watch: version at %s failed to load; still serving the old one", uri)
            continue
        old_version = None if current is None else current.model_version
        await swap(state, plane)
        log.info("watch: %s swapped from version %s to %s", uri, old_version, plane.model_version)


def _drain_on_sigterm(state: ServerState) -> None:
    """From SIGTERM on, /ready answers 503 (load balancers stop sending) while the server's
    own handler drains: the requests already on their way are still answered."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread (a test client runs apps elsewhere)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        state.draining = True
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


@asynccontextmanager
async def running(
    state: ServerState,
    model_dir: ModelDir,
    *,
    open_log: Any,
    load_in_background: bool,
    watch_uri: str | None,
    request_metrics: Any = None,
) -> AsyncIterator[None]:
    """The app's lifespan: open the log, load (now or in the background), watch, then close all.

    ``open_log`` is called once here, in the worker process after any fork (the log's writer
    thread must live in the process that serves), and returns the sink or None.
    """
    state.prediction_log = open_log()
    _drain_on_sigterm(state)
    background: list[asyncio.Task[Any]] = []
    if load_in_background:
        background.append(asyncio.create_task(load(state, model_dir), name="tabserve-load"))
    else:
        plane = await asyncio.to_thread(
            build_dataplane, model_dir, state.settings, state.prediction_log, state.tracing
        )
        await swap(state, plane)
    if watch_uri and state.settings.watch:
        background.append(asyncio.create_task(watch(state, watch_uri), name="tabserve-watch"))
    if state.settings.drift_interval:
        from tabserve.serving.drift_refresh import DriftRefresher

        refresher = DriftRefresher(
            state, state.settings.drift_interval, state.settings.drift_window
        )
        background.append(asyncio.create_task(refresher.run(), name="tabserve-drift"))
    grpc_server = None
    if state.settings.grpc_port:
        from tabserve.serving.grpc.service import start as start_grpc

        grpc_server = await start_grpc(state, state.admission, request_metrics)
    try:
        yield
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=5)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if state.plane is not None:
            await state.plane.close()
        sink = state.prediction_log
        if sink is not None and hasattr(sink, "close"):
            await asyncio.to_thread(sink.close)
        if state.tracing is not None:
            await asyncio.to_thread(state.tracing.shutdown)  # export the spans still buffered
