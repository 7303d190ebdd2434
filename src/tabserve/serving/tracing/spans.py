"""The tracer and every span tabserve makes: the server span of each HTTP request and gRPC
call (its parent from the request's propagation headers), the decode and encode steps cut from
the handler's marks, and the model call's own span with its links and each request's
queue_wait (the package docstring draws the tree).

Marks, not spans, are taken on the request path (request.py's ``RequestTrace``), and the
step spans are made from them once the answer is sent, so a traced request pays for spans it
keeps and nothing for the bookkeeping of ones it would not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

import tabserve
from tabserve.logs import REQUEST_ID
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.runtimes import Prediction
from tabserve.serving.tracing.dataplane import TracedDataPlane
from tabserve.serving.tracing.environment import (
    MODEL_CALL,
    ModelCallSampler,
    exporter_from_environment,
    resource,
    sampler_from_environment,
)
from tabserve.serving.tracing.request import CURRENT, RequestTrace, fail, now


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


_ROOT = Context()  # an empty context: the model call starts a trace of its own
# gRPC codes that are the server's failure (OpenTelemetry's RPC conventions for server spans).
_GRPC_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)


class Tracing:
    """One per server process (made after any fork: the exporter runs a thread)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("tabserve", tabserve.__version__)
        self.propagator = propagate.get_global_textmap()  # OTEL_PROPAGATORS; W3C by default

    @classmethod
    def from_environment(cls) -> Tracing:
        provider = TracerProvider(
            sampler=ModelCallSampler(sampler_from_environment()), resource=resource()
        )
        exporter = exporter_from_environment()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is buffered and stop (bounded by OTEL_BSP_EXPORT_TIMEOUT)."""
        self.provider.shutdown()

    # -- the HTTP front ------------------------------------------------------------------

    def wrap_http(self, http: Callable[..., Awaitable[None]], state: Any) -> Any:
        """The app's front, inside a server span (the parent from the request's headers)."""
        tracer = self.tracer
        extract = self.propagator.extract

        async def traced(scope: dict[str, Any], receive: Any, send: Any) -> None:
            method = scope["method"]
            client = scope.get("client") or ("", 0)
            attributes = {
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "network.protocol.version": scope.get("http_version", "1.1"),
                "client.address": client[0],
                "client.port": client[1],
            }
            parent = extract(_headers(scope))
            span = tracer.start_span(method, parent, SpanKind.SERVER, attributes)
            if not span.is_recording():  # sampled out: nothing more to do
                await http(scope, receive, send)
                return
            request = RequestTrace(span, parent)
            CURRENT.set(request)
            answer: dict[str, Any] = {"status": 500}

            async def send_traced(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    answer["status"] = message["status"]
                elif answer["status"] >= 500 and "error" not in answer:
                    answer["error"] = message.get("body", b"")
                await send(message)

            try:
                await http(scope, receive, send_traced)
            finally:
                CURRENT.set(None)
                status = int(answer["status"])
                span.set_attribute("http.response.status_code", status)
                error = None
                if status >= 500:
                    error = _error_message(answer.get("error"), status)
                name = None
                if request.route:
                    name = f"{method} {request.route}"
                    span.set_attribute("http.route", request.route)
                self._finish(request, name, state, error)

        return traced

    def wrap_handler(self, handler: Callable[..., Awaitable[Any]], template: str) -> Any:
        """A model route's handler (or gRPC method): marks when it starts and ends, so the
        decode and encode spans can be cut from them."""

        async def marked(*args: Any) -> Any:
            request = CURRENT.get()
            if request is None:
                return await handler(*args)
            request.route = template
            request.request_id = REQUEST_ID.get()
            request.handler_start = now()
            try:
                return await handler(*args)
            except BaseException as exc:
                request.failure = exc
                raise
            finally:
                request.handler_end = now()

        return marked

    def _finish(
        self, request: RequestTrace, name: str | None, state: Any, error: str | None
    ) -> None:
        """Name the server span, add the decode and encode spans, end it."""
        span = request.span
        if name:
            span.update_name(name)
        request_id = request.request_id or REQUEST_ID.get()
        if request_id:
            span.set_attribute("tabserve.request_id", request_id)
        model = request.model
        if model is None and state.plane is not None:
            model = (state.plane.model_name, state.plane.model_version)
        if model is not None:
            span.set_attribute("tabserve.model.name", model[0])
            span.set_attribute("tabserve.model.version", model[1])
        if request.handler_start:
            self._steps(request)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attribute("error.type", error.split(":", 1)[0])
        span.end()

    def _steps(self, request: RequestTrace) -> None:
        start = self.tracer.start_span
        failure = request.failure
        decoded = request.validate_start or request.handler_end
        decode = start("decode", request.context, start_time=request.handler_start)
        if failure is not None and not request.validate_start:
            fail(decode, failure)
        decode.end(end_time=decoded)
        if request.predict_end:
            encode = start("encode", request.context, start_time=request.predict_end)
            if failure is not None:
                fail(encode, failure)
            encode.end(end_time=max(request.handler_end, request.predict_end))

    # -- gRPC -------------------------------------------------------------------------------

    def wrap_grpc(self, service: str, method: str, call: Any, state: Any) -> Any:
        """One gRPC method inside a server span (the parent from the call's metadata)."""
        tracer = self.tracer
        extract = self.propagator.extract
        name = f"{service}/{method}"
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

        async def traced(request: Any, context: Any) -> Any:
            carrier = {m.key: m.value for m in (context.invocation_metadata() or ())
                       if isinstance(m.value, str)}  # fmt: skip
            parent = extract(carrier)
            span = tracer.start_span(name, parent, SpanKind.SERVER, attributes)
            if not span.is_recording():
                return await call(request, context)
            trace_ = RequestTrace(span, parent)
            CURRENT.set(trace_)
            code = "OK"
            try:
                return await call(request, context)
            except BaseException:
                found = context.code()
                code = found.name if found is not None else "UNKNOWN"
                raise
            finally:
                CURRENT.set(None)
                span.set_attribute("rpc.grpc.status_code", _grpc_code_number(code))
                error = None
                if code in _GRPC_SERVER_ERRORS:
                    error = f"{code}: {context.details() or ''}".rstrip(": ")
                self._finish(trace_, None, state, error)

        return traced

    # -- the data plane ---------------------------------------------------------------------

    def data_plane(self, *args: Any, **kwargs: Any) -> DataPlane:
        """A DataPlane's arguments → the traced plane (lifecycle.build_dataplane calls it)."""
        return TracedDataPlane(self, *args, **kwargs)

    def model_call(
        self,
        run: Callable[[dict[str, np.ndarray]], Prediction],
        columns: dict[str, np.ndarray],
        requests: Sequence[tuple[RequestTrace, int]],
        n_requests: int,
        attributes: dict[str, Any],
    ) -> Prediction:
        """One runtime call in a span of its own, linked to each sampled request it serves;
        each of those gets its queue_wait span (enqueued → call start, 0: not queued)."""
        links = [
            Link(r.span.get_span_context(), {"tabserve.request_id": r.request_id or ""})
            for r, _ in requests
        ]
        rows = len(next(iter(columns.values()))) if columns else 0
        started = now()
        span = self.tracer.start_span(
            MODEL_CALL,
            _ROOT,
            SpanKind.INTERNAL,
            {**attributes, "tabserve.batch.rows": rows, "tabserve.batch.requests": n_requests},
            links,
            start_time=started,
        )
        try:
            return run(columns)
        except BaseException as exc:
            fail(span, exc)
            raise
        finally:
            span.end()
            to_call = [Link(span.get_span_context())]
            for request, enqueued in requests:
                if enqueued:
                    wait = self.tracer.start_span(
                        "queue_wait", request.context, links=to_call, start_time=enqueued
                    )
                    wait.end(end_time=max(started, enqueued))


def _error_message(body: Any, status: int) -> str:
    import orjson

    try:
        message = orjson.loads(body).get("error") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    return f"{status}: {message}" if message else str(status)


def _grpc_code_number(name: str) -> int:
    import grpc

    return int(grpc.StatusCode[name].value[0]) if name in grpc.StatusCode.__members__ else 2
