"""The ASGI application uvicorn runs: every concern that spans routes, once, then the route.

    a request ─► in-flight gauge, timer, request id (logs.REQUEST_ID: every log line written
               while it is handled carries it) ─► route match (404/405) ─► API key (401, auth.py)
               ─► admission: model routes past --max-in-flight answer 503 + Retry-After
               ─► the route's handler (body read through body.py's limits) ─► Reply ─► bytes
               ◄─ every ServingError raised on the way, as the one error envelope
               ◄─ request metrics (route template, status, model, version)

Routes come from rest/ (v1, v2, mlflow, kserve_v1, feedback, ops; docs and page for people) as
closures over one ServerState. Tracing (tracing/) and the access log (access_log.py) are
optional: when on, ``create_app`` wraps this front and the model routes' handlers; when off,
none of their code runs and OpenTelemetry is not imported.
This is a pure ASGI callable, not a framework app (docs/adr/0008): a framework's routing,
middleware stack and request/response objects cost more per request than tabserve's whole
validation, and none of it is needed — every route reads its raw body and writes bytes.

The model loads in the lifespan (lifecycle.py): in the background for one process, so /health
answers at once and /ready says 503 until the runtime is built and warmed up; before accepting
connections when several workers share a socket.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

from tabserve.logs import REQUEST_ID
from tabserve.modeldir import ModelDir
from tabserve.predlog.entries import CLIENT_ID_MAX
from tabserve.serving import body, lifecycle, metrics
from tabserve.serving.admission import Admission
from tabserve.serving.auth import ApiKeys
from tabserve.serving.dataplane import PredictionSink
from tabserve.serving.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RuntimeFailure,
    ServingError,
    asgi_response,
)
from tabserve.serving.http import Call, NoRoute, Reply, Route, Router
from tabserve.serving.request_ids import request_ids
from tabserve.serving.request_metrics import UNMATCHED, RequestMetrics
from tabserve.serving.rest import docs, feedback, kserve_v1, mlflow, ops, page, v1, v2
from tabserve.serving.state import ServerState
from tabserve.settings import Settings

log = logging.getLogger("tabserve.serving")

FROM_SETTINGS: Literal["settings"] = "settings"


def _log_from_settings(settings: Settings) -> Any:
    from tabserve.predlog import PredictionLog

    return PredictionLog.from_settings(settings)


class TabserveApp:
    """One model's server as an ASGI callable (see the module docstring)."""

    def __init__(
        self,
        state: ServerState,
        model_dir: ModelDir,
        routes: list[Route],
        *,
        open_log: Any,
        load_in_background: bool,
        watch_uri: str | None,
    ) -> None:
        self.state = state
        self.model_dir = model_dir
        self.router = Router(routes)
        self.metrics = RequestMetrics(state)
        self._open_log = open_log
        self._load_in_background = load_in_background
        self._watch_uri = watch_uri
        settings = state.settings
        self._limit = settings.max_body_bytes
        self.admission = state.admission
        keys = settings.api_keys.get_secret_value() if settings.api_keys else None
        self._keys = ApiKeys(keys)
        self._metrics_public = settings.metrics_public
        # Optional layers replace the front (an attribute shadowing the method): no check per
        # request when they are off.
        if state.tracing is not None:
            for route in self.router.routes:
                if route.access == "model":
                    route.handler = state.tracing.wrap_handler(route.handler, route.path)
            self._http = state.tracing.wrap_http(self._http, state)  # type: ignore[method-assign]
        if settings.access_log:
            from tabserve.serving.access_log import AccessLog

            access = AccessLog(state, self.router)
            self._http = access.wrap_http(self._http)  # type: ignore[method-assign]

    @property
    def routes(self) -> list[Route]:
        return self.router.routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        request_id = request_ids.next()
        REQUEST_ID.set(request_id)  # this request's task: its own context
        label = UNMATCHED
        status = 500
        try:
            try:
                route, params = self.router.match(scope["method"], scope["path"])
            except NoRoute as missing:
                if missing.allowed:
                    error = MethodNotAllowed(f"{scope['method']} is not allowed on {scope['path']}")
                    error.headers = {"allow": ", ".join(sorted(set(missing.allowed)))}
                    raise error from None
                raise NotFound(f"no endpoint {scope['path']}") from None
            label = route.path
            access = route.access
            public = access == "probe" or (access == "metrics" and self._metrics_public)
            if self._keys.enabled and not public:
                self._keys.check(_header(scope, b"authorization"))
            call = Call(scope, body.reader(scope, receive, self._limit), params, request_id)
            if access == "model":
                with self.admission:  # 503 past --max-in-flight (admission.py)
                    reply = await route.handler(call)
            else:
                reply = await route.handler(call)
            status = reply.status
            await _send(send, reply, head=scope["method"] == "HEAD")
        except ServingError as exc:
            status = exc.status
            await asgi_response(send, exc, close=isinstance(exc, PayloadTooLarge),
                                request_id=_answer_id(scope, request_id))  # fmt: skip
        except Exception:  # a bug: JSON 500, the traceback in the server log only
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status = 500
            await asgi_response(send, RuntimeFailure("internal server error"),
                                request_id=_answer_id(scope, request_id))  # fmt: skip
        finally:
            metrics.IN_FLIGHT.dec()
            self.metrics.observe(label, status, time.perf_counter() - started)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        running = lifecycle.running(
            self.state,
            self.model_dir,
            open_log=self._open_log,
            load_in_background=self._load_in_background,
            watch_uri=self._watch_uri,
            request_metrics=self.metrics,
        )
        try:
            await running.__aenter__()
        except Exception as exc:
            log.exception("startup failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        try:
            await running.__aexit__(None, None, None)
        finally:
            await send({"type": "lifespan.shutdown.complete"})


def _answer_id(scope: dict[str, Any], request_id: str) -> bytes:
    """An error answer's X-Request-ID, as ``Call.id_header`` gives a success's: the client's
    own when it can be echoed as sent (an id refused for its length or bytes gets ours)."""
    sent = dict(scope["headers"]).get(b"x-request-id")  # the last one, as Call.header reads
    if sent and len(sent) <= CLIENT_ID_MAX and sent.isascii() and sent.decode().isprintable():
        return sent
    return request_id.encode()


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _send(send: Any, reply: Reply, *, head: bool = False) -> None:
    headers = [
        (b"content-type", reply.media_type),
        (b"content-length", str(len(reply.body)).encode()),
        *reply.headers,
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else reply.body})


def create_app(
    settings: Settings,
    model: ModelDir | str | Path,
    *,
    prediction_log: PredictionSink | Literal["settings"] | None = FROM_SETTINGS,
    watch_uri: str | None = None,
    load_in_background: bool = True,
) -> TabserveApp:
    """The app for one model. ``prediction_log``: a sink, None, or built from settings.

    ``watch_uri`` (a ``models:/name@alias`` URI) enables hot reload when ``settings.watch``;
    by default it is ``model`` itself when that is a registry URI. ``load_in_background``:
    True answers /health at once and /ready 503 while the model loads (one process); False
    loads before the process accepts connections (several workers on one socket).
    """
    model_dir = lifecycle.resolve(model, settings)
    if watch_uri is None and isinstance(model, str) and model.startswith("models:/"):
        watch_uri = model
    state = ServerState(
        settings=settings, spec=model_dir.spec(), admission=Admission(settings.max_in_flight)
    )
    if settings.tracing:
        from tabserve.serving.tracing import Tracing  # OpenTelemetry: only when tracing is on

        state.tracing = Tracing.from_environment()

    def open_log() -> Any:
        if prediction_log == FROM_SETTINGS:
            return _log_from_settings(settings)
        return prediction_log

    # /predict first: exact paths are one dict lookup, in any order; templates in this order.
    routes = [
        *v1.routes(state),
        *v2.routes(state),
        *mlflow.routes(state),
        *kserve_v1.routes(state),
        *feedback.routes(state),  # POST /feedback: ground truth beside the prediction log
        *ops.routes(state),
        *docs.routes(state),  # /docs, /redoc: Swagger UI and ReDoc, no external URL
        *page.routes(state),  # the model page at /, /stats, /report
    ]
    return TabserveApp(
        state,
        model_dir,
        routes,
        open_log=open_log,
        load_in_background=load_in_background,
        watch_uri=watch_uri,
    )
