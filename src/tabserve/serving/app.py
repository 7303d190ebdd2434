"""The ASGI application: routes of every protocol over one ServerState, two middlewares, one
error handler.

    RequestMetricsMiddleware → BodyLimitMiddleware → Starlette router
        /predict, /spec                      rest/v1.py
        /v2/...                              rest/v2.py (Open Inference Protocol)
        /invocations, /ping                  rest/mlflow.py (MLflow's scoring protocol)
        /v1/models/{name}:predict            rest/kserve_v1.py (KServe v1)
        /health, /ready, /metrics, /docs     rest/ops.py

Starlette, not FastAPI (docs/adr/0006): every route reads its raw body and validates from the
FeatureSpec, and the OpenAPI document is written from the spec (rest/openapi.py), so FastAPI's
request models and dependency injection would only add layers to each request.

The model loads in the lifespan (lifecycle.py): in the background for one process, so /health
answers at once and /ready says 503 until the runtime is built and warmed up; before accepting
connections when several workers share a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from tabserve.modeldir import ModelDir
from tabserve.serving import lifecycle
from tabserve.serving.dataplane import PredictionSink
from tabserve.serving.errors import ServingError, internal_error, render
from tabserve.serving.middleware.body import BodyLimitMiddleware
from tabserve.serving.middleware.metrics import RequestMetricsMiddleware
from tabserve.serving.rest import kserve_v1, mlflow, ops, v1, v2
from tabserve.serving.state import ServerState
from tabserve.settings import Settings

FROM_SETTINGS: Literal["settings"] = "settings"


def _log_from_settings(settings: Settings) -> Any:
    from tabserve.predlog import PredictionLog

    return PredictionLog.from_settings(settings)


def create_app(
    settings: Settings,
    model: ModelDir | str | Path,
    *,
    prediction_log: PredictionSink | Literal["settings"] | None = FROM_SETTINGS,
    watch_uri: str | None = None,
    load_in_background: bool = True,
) -> Starlette:
    """The app for one model. ``prediction_log``: a sink, None, or built from settings.

    ``watch_uri`` (a ``models:/name@alias`` URI) enables hot reload when ``settings.watch``;
    by default it is ``model`` itself when that is a registry URI.
    """
    model_dir = lifecycle.resolve(model, settings)
    if watch_uri is None and isinstance(model, str) and model.startswith("models:/"):
        watch_uri = model
    state = ServerState(settings=settings, spec=model_dir.spec())

    def open_log() -> Any:
        if prediction_log == FROM_SETTINGS:
            return _log_from_settings(settings)
        return prediction_log

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lifecycle.running(
            state,
            model_dir,
            open_log=open_log,
            load_in_background=load_in_background,
            watch_uri=watch_uri,
        ):
            yield

    # /predict first: it is matched on every request, before the routes no client calls often.
    routes = [
        *v1.routes(state),
        *v2.routes(state),
        *mlflow.routes(state),
        *kserve_v1.routes(state),
        *ops.routes(state),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetricsMiddleware, state=state),
            Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
        exception_handlers={
            ServingError: render,
            HTTPException: render,
            Exception: internal_error,
        },
        lifespan=lifespan,
    )
    return app
