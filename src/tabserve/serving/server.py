"""``tabserve serve``: resolve the model once, then run uvicorn with N worker processes.

The parent resolves the model URI (downloading it into the cache once, not once per worker) and
hands workers the local directory and the settings through environment variables; each worker
builds its app with ``app_from_env``. With several workers, metrics use prometheus_client's
multiprocess mode in a fresh temporary directory, removed at exit.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabserve import logs
from tabserve.errors import UserError
from tabserve.serving.startup_line import startup_line
from tabserve.settings import Settings, require_writable

if TYPE_CHECKING:
    from tabserve.modeldir import ModelDir
    from tabserve.serving.app import TabserveApp

ENV_MODEL_DIR = "TABSERVE_SERVE_MODEL_DIR"
ENV_WATCH_URI = "TABSERVE_SERVE_WATCH_URI"
ENV_SETTINGS = "TABSERVE_SERVE_SETTINGS"
# uvicorn waits this long for in-flight requests after SIGTERM before closing connections.
GRACEFUL_SHUTDOWN_S = 30


def serve(model_dir: ModelDir, settings: Settings, watch_uri: str | None = None) -> None:
    """Replace this process with a clean server for a resolved model (same PID).

    Resolving a ``models:/`` URI (the caller's job: ``tabserve.adoption.resolve``) imports
    MLflow, and adopting a plain MLflow model imports its libraries: hundreds of MB that no
    request needs. ``exec`` starts the server in a fresh interpreter that imports only the
    serving path, so RSS per worker stays small; the PID does not change, so whoever started
    ``tabserve serve`` can still stop it by PID.
    """
    if settings.workers < 1:
        raise UserError("--workers must be at least 1")
    if settings.watch and not (watch_uri or "").startswith("models:/"):
        raise UserError("--watch follows a registry alias: give a models:/name@alias URI")
    if settings.runtime == "onnx" and not model_dir.has_onnx:
        raise UserError(
            f"{model_dir.path} has no model.onnx ({model_dir.onnx_reason}); "
            "use --runtime auto or native"
        )
    if settings.resolved_log_db() is not None:  # the log's SQLite file and spool live there
        require_writable(settings.home, "TABSERVE_HOME (prediction log and spool)")
    if settings.tracing:
        _check_tracing()
    os.environ[ENV_MODEL_DIR] = str(model_dir.path)
    os.environ[ENV_SETTINGS] = settings.to_child_json()
    if watch_uri:
        os.environ[ENV_WATCH_URI] = watch_uri
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "tabserve.serving.server"])


def _check_tracing() -> None:
    """--tracing needs the otel extra and OTEL_* settings it can use: say so before starting."""
    try:
        from tabserve.serving import tracing
    except ImportError as exc:
        raise UserError(
            f"--tracing needs OpenTelemetry's SDK and OTLP exporter ({exc.name or exc} is "
            "missing): pip install 'tabserve[otel]'"
        ) from None
    tracing.check_environment()


# Exit codes of the server process: 0 after a drain (SIGTERM or SIGINT), 2 when the model cannot
# be loaded (the message names the file), as for any other mistake the user must fix.
EXIT_MODEL_NOT_LOADED = 2
_exit_code = 0
_server: Any = None
_log_format = "text"


def _fatal(message: str) -> None:
    """The model failed to load in the background: stop the server, exit 2."""
    global _exit_code
    _exit_code = EXIT_MODEL_NOT_LOADED
    if _log_format == "json":
        logging.getLogger("tabserve.serving").error("error: %s", message)
    else:
        sys.stderr.write(f"error: {message}\n")
    if _server is not None:
        _server.should_exit = True


def run_uvicorn() -> None:
    """The server process proper: uvicorn over ``app_from_env``, N workers, until SIGTERM.

    A SIGTERM drains (in-flight requests finish, the prediction log is flushed) and exits 0:
    uvicorn's own Server re-raises the signal after its graceful shutdown, which a supervisor
    would read as a crash (143).
    """
    global _server, _log_format
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from tabserve.modeldir import ModelDir

    settings = Settings.model_validate_json(os.environ[ENV_SETTINGS])
    _log_format = settings.log_format
    logs.configure(settings.log_format)  # uvicorn's own lines too (log_config=None below)
    text, fields = startup_line(settings, ModelDir(Path(os.environ[ENV_MODEL_DIR])))
    logging.getLogger("tabserve.serving").info(text, extra={"fields": fields})
    metrics_dir = None
    if settings.workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="tabserve-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    config = uvicorn.Config(
        "tabserve.serving.server:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http="tabserve.serving.coalescing:CoalescingHttpToolsProtocol",  # one send per answer
        ws="none",  # no websocket routes: do not import a websocket implementation
        log_level="warning",
        log_config=None,  # the root handler logs.configure set up: one format for every line
        access_log=False,  # tabserve's own (--access-log, serving/access_log.py)
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    try:
        if settings.workers > 1:
            _check_model_loads(settings)  # workers load at startup; a bad file fails here, once
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            _server = _draining_server(config)
            _server.run()
            if not _server.started and _exit_code == 0:
                sys.exit(3)  # could not bind, or the app failed before serving
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(_exit_code)


def _check_model_loads(settings: Settings) -> None:
    from tabserve.errors import UserError
    from tabserve.modeldir import ModelDir
    from tabserve.serving.runtimes import load_runtime

    try:
        load_runtime(ModelDir(Path(os.environ[ENV_MODEL_DIR])), settings.runtime)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(EXIT_MODEL_NOT_LOADED)


def _draining_server(config: Any) -> Any:
    """uvicorn's Server, without re-raising the signal once it has drained (made here, so
    importing this module does not import uvicorn)."""
    import contextlib
    import signal
    import threading

    import uvicorn
    from uvicorn.server import HANDLED_SIGNALS

    class DrainingServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return DrainingServer(config)


def app_from_env() -> TabserveApp:
    """uvicorn factory run in each worker: the app for the directory the parent resolved."""
    global _log_format
    from tabserve.modeldir import ModelDir
    from tabserve.serving.app import create_app

    settings = Settings.model_validate_json(os.environ[ENV_SETTINGS])
    _log_format = settings.log_format
    logs.configure(settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per --watch poll
    model_dir = ModelDir(Path(os.environ[ENV_MODEL_DIR]))
    app = create_app(
        settings,
        model_dir,
        watch_uri=os.environ.get(ENV_WATCH_URI),
        load_in_background=settings.workers == 1,
    )
    app.state.on_fatal = _fatal
    return app


if __name__ == "__main__":
    # Through the package module, not __main__: uvicorn imports app_from_env from there, and
    # both must share this module's globals (the server the fatal-load hook stops).
    from tabserve.serving import server

    server.run_uvicorn()
