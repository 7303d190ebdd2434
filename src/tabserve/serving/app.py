"""The FastAPI application: routes over one swappable DataPlane.

How a route reaches the model (v1 here, v2 in v2.py)::

    plane: DataPlane | None = request.app.state.dataplane   # None until loaded → answer 503
    batch = plane.validate_columns(columns, n_rows)          # or plane.validate_records(...)
    prediction = await plane.predict(batch)

Read ``request.app.state.dataplane`` once per request and keep that reference for the whole
request: a hot reload replaces the attribute, and the old DataPlane keeps serving the requests
that already hold it. ``app.state.settings`` holds the Settings.

The model loads in the background after startup so /health answers at once and /ready says 503
until the runtime is built and warmed up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tabserve.errors import UserError
from tabserve.modeldir import ModelDir
from tabserve.serving import metrics, openapi, v1
from tabserve.serving.batcher import BatchingOptions
from tabserve.serving.dataplane import DataPlane, PredictionSink
from tabserve.serving.middleware import ServingMiddleware
from tabserve.serving.runtimes import load_runtime
from tabserve.serving.validation import ValidationOptions
from tabserve.settings import Settings

log = logging.getLogger("tabserve.serving")

FROM_SETTINGS: Literal["settings"] = "settings"


def resolve_model(settings: Settings, model: ModelDir | str | Path) -> ModelDir:
    """A model directory for a ModelDir, a local path or a ``models:/`` registry URI."""
    if isinstance(model, ModelDir):
        model_dir = model
    elif str(model).startswith("models:/"):
        from tabserve import registry  # type: ignore[attr-defined,unused-ignore]

        model_dir = registry.resolve(str(model), settings)
    else:
        model_dir = ModelDir(Path(model))
    model_dir.check()
    return model_dir


def build_dataplane(
    model_dir: ModelDir, settings: Settings, prediction_log: PredictionSink | None
) -> DataPlane:
    """Load the runtime and warm it up on the example record (blocking: call in a thread)."""
    runtime = load_runtime(model_dir, settings.runtime, settings.intra_op_threads)
    plane = DataPlane(
        model_dir,
        runtime,
        batching=BatchingOptions(
            enabled=settings.batching,
            max_batch_size=settings.max_batch_size,
            max_queue_delay_us=settings.max_queue_delay_us,
        ),
        prediction_log=prediction_log,
        validation=ValidationOptions(coerce=settings.coerce, ood=settings.ood),
    )
    # The first run of a session allocates its buffers; pay that before /ready says yes.
    warm = ValidationOptions(coerce=True, ood="off")
    from tabserve.serving.validation import validate_records

    runtime.predict(validate_records(plane.spec, [plane.spec.example_record()], warm).columns)
    return plane


async def swap_dataplane(app: FastAPI, new: DataPlane) -> None:
    """Serve ``new`` from now on; the old plane finishes its in-flight requests, then closes."""
    await new.start()
    old: DataPlane | None = app.state.dataplane
    app.state.dataplane = new  # one attribute store: requests see either the old or the new
    app.state.docs_spec = new.spec
    if old is not None:
        await old.close()


def create_app(
    settings: Settings,
    model: ModelDir | str | Path,
    *,
    prediction_log: PredictionSink | Literal["settings"] | None = FROM_SETTINGS,
    watch_uri: str | None = None,
    load_in_background: bool = True,
) -> FastAPI:
    """Build the app for one model. ``prediction_log``: a sink, None, or built from settings.

    ``watch_uri`` (a ``models:/name@alias`` URI) enables hot reload when ``settings.watch``;
    by default it is ``model`` itself when that is a registry URI.

    ``load_in_background``: True answers /health at once and /ready 503 while the model loads
    (one process). False loads during startup, before the process accepts connections: with
    several workers on one socket, a worker without its model must not take requests.
    """
    model_dir = resolve_model(settings, model)
    if watch_uri is None and isinstance(model, str) and model.startswith("models:/"):
        watch_uri = model

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sink: Any = prediction_log
        if sink == FROM_SETTINGS:
            from tabserve.monitoring.predlog import PredictionLog

            sink = PredictionLog.from_settings(settings)
        app.state.prediction_log = sink
        background: list[asyncio.Task[Any]] = []
        if load_in_background:
            load = _load(app, model_dir, settings, sink)
            background.append(asyncio.create_task(load, name="tabserve-load"))
        else:
            await swap_dataplane(
                app, await asyncio.to_thread(build_dataplane, model_dir, settings, sink)
            )
        if settings.watch and watch_uri:
            from tabserve.serving.reload import watch_registry

            background.append(
                asyncio.create_task(
                    watch_registry(app, watch_uri, settings, sink), name="tabserve-watch"
                )
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            plane: DataPlane | None = app.state.dataplane
            if plane is not None:
                await plane.close()
            if sink is not None and hasattr(sink, "close"):
                await asyncio.to_thread(sink.close)

    app = FastAPI(
        title="tabserve",
        version=model_dir.version,
        description=f"Predictions of {model_dir.name}: POST /predict (v1) and /v2 (KServe v2).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.dataplane = None
    app.state.load_error = None
    app.state.docs_spec = model_dir.spec()
    app.add_middleware(ServingMiddleware, max_body_bytes=settings.max_body_bytes)
    v1.mount(app)
    _add_ops_routes(app)
    _include_v2(app)
    openapi.install(app, settings.max_rows)
    return app


async def _load(
    app: FastAPI, model_dir: ModelDir, settings: Settings, sink: PredictionSink | None
) -> None:
    try:
        plane = await asyncio.to_thread(build_dataplane, model_dir, settings, sink)
    except UserError as exc:
        app.state.load_error = str(exc)
        log.error("model not loaded: %s", exc)
        return
    except Exception as exc:  # keep /health alive so the failure is visible on /ready
        app.state.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("model not loaded")
        return
    await swap_dataplane(app, plane)
    log.info(
        "serving %s version %s (%s runtime)",
        plane.model_name,
        plane.model_version,
        plane.runtime.name,
    )


def _include_v2(app: FastAPI) -> None:
    """Mount the Open Inference Protocol routes when that module is present."""
    try:
        from tabserve.serving import v2
    except ImportError:
        return
    router = getattr(v2, "router", None)
    if router is not None:
        app.include_router(router)


def _add_ops_routes(app: FastAPI) -> None:
    @app.get("/health", summary="Alive (the process answers)")
    async def health() -> Response:
        return v1.json_response({"status": "alive"})

    @app.get("/ready", summary="Ready (the model is loaded); 503 before")
    async def ready(request: Request) -> Response:
        plane: DataPlane | None = request.app.state.dataplane
        if plane is None:
            body: dict[str, Any] = {"status": "loading"}
            if request.app.state.load_error:
                body = {"status": "failed", "error": request.app.state.load_error}
            return v1.json_response(body, 503)
        return v1.json_response(
            {"status": "ready", "model": plane.model_name, "version": plane.model_version}
        )

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)
