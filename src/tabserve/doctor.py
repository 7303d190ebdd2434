"""``tabserve doctor``: check what a first run needs, and say for each thing what to fix.

Checks, in the order a first run meets them:

    install     the serving libraries import (and whether the training ones are there)
    home        TABSERVE_HOME exists (or can be made) and is writable
    tracking    the MLflow tracking URI: an http(s) server answers /health; the embedded SQLite
                store's directory is writable
    model       MODEL_URI, when given, resolves (registry or directory) to a servable model
    log         the prediction log: SQLite's directory is writable, another database accepts a
                connection and has (or gets) the predictions table, as the server does on start
    port        HOST:PORT is free to listen on
    report      the drift report the model page shows (information only)

Each check is one line, ``ok``, ``warn`` or ``FAIL``, and a failing one says what to do; the
command exits 1 when any check fails. URLs are printed masked (redact.py): no password or token
reaches the output, also not through a driver's error message. Doctor creates nothing the first
run would not create anyway: no directory, no SQLite file, no registry entry.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tabserve.errors import ServiceUnavailable, UserError
from tabserve.redact import mask_url, scrub
from tabserve.settings import Settings

Status = Literal["ok", "warn", "fail"]
SERVE_LIBRARIES = ("starlette", "uvicorn", "onnxruntime", "prometheus_client", "sqlalchemy")
TRAIN_LIBRARIES = ("sklearn", "pandas", "mlflow", "skl2onnx")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def line(self) -> str:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[self.status]
        fix = f" → {self.fix}" if self.fix else ""
        return f"{mark}  {self.name:<9} {self.detail}{fix}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _writable_dir(path: Path) -> tuple[bool, str]:
    """Whether files can be made in ``path`` (or, when it does not exist, in its parents)."""
    target = path
    while not target.exists():
        if target.parent == target:
            return False, f"{path}: no existing parent directory"
        target = target.parent
    if not target.is_dir():
        return False, f"{target} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".tabserve-doctor-"):
            pass
    except OSError as exc:
        return False, f"{target} is not writable ({exc.strerror or type(exc).__name__})"
    return True, "writable" if target == path else f"will be created (in writable {target})"


def check_install() -> Check:
    missing = [m for m in SERVE_LIBRARIES if importlib.util.find_spec(m) is None]
    if missing:
        return Check(
            "install",
            "fail",
            f"serving libraries missing: {', '.join(missing)}",
            "pip install 'tabserve[serve]'",
        )
    untrained = [m for m in TRAIN_LIBRARIES if importlib.util.find_spec(m) is None]
    if untrained:
        return Check(
            "install",
            "ok",
            "serving libraries present; training libraries not "
            "installed (enough to serve; pip install 'tabserve[train]' to train)",
        )
    return Check("install", "ok", "serving and training libraries present")


def check_home(settings: Settings) -> Check:
    ok, detail = _writable_dir(settings.home)
    if ok:
        return Check("home", "ok", f"{settings.home} {detail}")
    return Check("home", "fail", detail, "set TABSERVE_HOME to a writable directory")


def check_tracking(settings: Settings, timeout_s: float = 5.0) -> Check:
    uri = settings.resolved_tracking_uri()
    shown = mask_url(uri)
    if uri.startswith(("http://", "https://")):
        from tabserve.registry import check_reachable

        try:
            check_reachable(settings, timeout_s=timeout_s)
        except UserError as exc:
            return Check("tracking", "fail", scrub(str(exc), uri))
        return Check("tracking", "ok", f"{shown} answers")
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if db.is_file():
            if os.access(db, os.W_OK):
                return Check("tracking", "ok", f"{shown} (embedded store)")
            return Check(
                "tracking",
                "fail",
                f"{shown}: the file is not writable",
                "fix its permissions or set TABSERVE_TRACKING_URI",
            )
        ok, detail = _writable_dir(db.parent)
        if ok:
            return Check(
                "tracking", "ok", f"{shown} (embedded store; created by the first `tabserve train`)"
            )
        return Check(
            "tracking", "fail", f"{shown}: {detail}", "set TABSERVE_HOME or TABSERVE_TRACKING_URI"
        )
    scheme = uri.split(":", 1)[0]
    return Check("tracking", "warn", f"{shown}: {scheme} URIs are not checked by doctor")


def check_model(uri: str, settings: Settings) -> Check:
    from tabserve import registry
    from tabserve.modeldir import MLMODEL_FILE
    from tabserve.spec import FILENAME as SPEC_FILE

    try:
        model = registry.fetch(uri, settings)
        if (model.path / SPEC_FILE).is_file():
            model.check()
            spec = model.spec()
            runtime = "ONNX" if model.has_onnx else f"native ({model.flavor})"
            return Check(
                "model",
                "ok",
                f"{uri} → {model.name} version {model.version}, "
                f"{len(spec.features)} features, {runtime}",
            )
        if (model.path / MLMODEL_FILE).is_file():
            if importlib.util.find_spec("sklearn") is None:
                return Check(
                    "model",
                    "fail",
                    f"{uri} is a plain MLflow model: adopting it "
                    "(deriving its spec, converting to ONNX) needs the training "
                    "libraries",
                    "pip install 'tabserve[train]', or `tabserve fetch` it where they are",
                )
            return Check(
                "model",
                "ok",
                f"{uri} is a plain MLflow model ({model.flavor}): "
                "`tabserve serve` adopts it on first start",
            )
        model.check()  # names what is missing
    except UserError as exc:
        fix = None
        if uri.startswith("models:/") and not isinstance(exc, ServiceUnavailable):
            fix = "`tabserve models list` shows what the registry holds"
        return Check("model", "fail", scrub(str(exc), settings.resolved_tracking_uri()), fix)
    return Check("model", "fail", f"{uri}: not a model")


def check_log(settings: Settings) -> Check:
    url = settings.resolved_log_db()
    if url is None:
        return Check("log", "ok", "off (TABSERVE_LOG_DB=off): predictions are not logged")
    shown = mask_url(url)
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if db.is_file():
            ok = os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)  # + its -wal file
            if ok:
                return Check("log", "ok", f"{shown} (exists, writable)")
            return Check(
                "log",
                "fail",
                f"{shown}: the file or its directory is not writable",
                "fix the permissions or set TABSERVE_LOG_DB",
            )
        ok, detail = _writable_dir(db.parent)
        if ok:
            return Check("log", "ok", f"{shown} (created by the first `tabserve serve`)")
        return Check(
            "log",
            "fail",
            f"{shown}: {detail}",
            "set TABSERVE_LOG_DB (or TABSERVE_HOME), or --log-db off",
        )
    try:
        from tabserve.predlog.store import ensure_schema, make_engine
    except ImportError:
        return Check(
            "log", "fail", f"{shown}: SQLAlchemy is not installed", "pip install 'tabserve[serve]'"
        )
    try:
        engine = make_engine(url)
    except Exception as exc:  # a bad URL or a driver that is not installed
        return Check(
            "log",
            "fail",
            f"{shown}: {scrub(_first_line(exc), url)}",
            "check TABSERVE_LOG_DB (e.g. postgresql+psycopg://user:pass@host/db)",
        )
    try:
        with engine.connect():
            pass
        ensure_schema(engine)  # what the server does on start
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc
        return Check(
            "log",
            "fail",
            f"{shown}: {scrub(_first_line(cause), url)}",
            "start the database or fix TABSERVE_LOG_DB; or serve with --log-db off",
        )
    finally:
        engine.dispose()
    return Check("log", "ok", f"{shown} accepts connections; predictions table present")


def check_port(host: str, port: int) -> Check:
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return Check(
            "port",
            "fail",
            f"{where}: {exc.strerror or exc}",
            "set --host / TABSERVE_HOST to an address of this machine",
        )
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.bind(address)
        except OSError as exc:
            return Check(
                "port",
                "fail",
                f"{where} is not free ({exc.strerror or exc})",
                "stop what listens there, or pick another --port / TABSERVE_PORT",
            )
    return Check("port", "ok", f"{where} is free")


def check_report(settings: Settings) -> Check:
    from tabserve.serving.report_summary import FILENAME

    path = settings.resolved_report_dir() / FILENAME
    if path.is_file():
        return Check("report", "ok", f"{path} (the model page shows it)")
    return Check(
        "report",
        "ok",
        f"no drift report at {path} yet (the model page says so; "
        f"`tabserve drift MODEL --json {path}` writes one)",
    )


def run_checks(settings: Settings, model_uri: str | None = None) -> Iterator[Check]:
    """Every check, one at a time (so the CLI prints each as it finishes)."""
    checks: list[Callable[[], Check]] = [
        check_install,
        lambda: check_home(settings),
        lambda: check_tracking(settings),
    ]
    if model_uri:
        checks.append(lambda: check_model(model_uri, settings))
    checks += [
        lambda: check_log(settings),
        lambda: check_port(settings.host, settings.port),
        lambda: check_report(settings),
    ]
    for check in checks:
        yield check()
