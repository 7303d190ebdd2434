"""OpenTelemetry traces of requests, when the server runs with ``--tracing`` (the otel extra).

This is the only module that imports OpenTelemetry, and only ``create_app`` imports it, only
when tracing is on: a server without ``--tracing`` never loads a line of OpenTelemetry, and
its request path runs exactly the code it runs without this module (docs/adr/0016). Tracing
is woven in by replacing objects when the app is built, not by checks on the request path:
the app's front and each model route's handler are wrapped, the data plane is a subclass
(``TracedDataPlane``), its batcher too (``TracedBatcher``), its prediction-log sink a wrapper.

Spans per request; the parent is the client's W3C ``traceparent`` (+ ``tracestate``; any
propagator OTEL_PROPAGATORS names), else the request starts a trace::

    SERVER "POST /predict"   the whole request: http.*, tabserve.request_id (the server's own
      │                      id, the prediction log's key), tabserve.model.name/.version
      ├ decode       reading the body and the protocol's codec (handler start → validation)
      ├ validate     FeatureSpec validation; ERROR with the fields and reasons when it fails
      ├ queue_wait   waiting in the batcher for the model call; linked to that call
      ├ log_enqueue  handing the prediction log its line
      └ encode       the prediction → the protocol's answer (end of predict → handler end)

and one span per model call, in a trace of its own (``infer``: rows, requests, runtime),
linked to the server span of every request whose rows it ran — a call serves many requests of
many traces, and a span has one parent. It is sampled when any request it serves is (a link-
aware sampler around the configured one), so a kept trace's links always lead somewhere.

Status: a step that raised is ERROR (the message, never the values a client sent); the server
span is ERROR for a 5xx, and carries the status code for every answer (OpenTelemetry's HTTP
conventions leave a 4xx server span unset: the client's mistake is not the server's error).
gRPC (``inference.GRPCInferenceService/ModelInfer``) gets the same spans from its metadata.

Configuration is OpenTelemetry's own environment: OTEL_EXPORTER_OTLP_ENDPOINT (or
_TRACES_ENDPOINT), _HEADERS, _TIMEOUT, _COMPRESSION; OTEL_TRACES_SAMPLER and _ARG;
OTEL_SERVICE_NAME (default ``tabserve``) and OTEL_RESOURCE_ATTRIBUTES; OTEL_BSP_* for the batch
processor; OTEL_TRACES_EXPORTER ``otlp`` (OTLP/HTTP protobuf), ``console`` or ``none``.
A sampled-out request costs one sampler call and a non-recording span, nothing else.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

import tabserve
from tabserve.errors import UserError
from tabserve.logs import REQUEST_ID
from tabserve.serving.batcher import DynamicBatcher, _Pending
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.errors import ServingError, ValidationFailed
from tabserve.serving.runtimes import Prediction
from tabserve.serving.validation import Batch

MODEL_CALL = "infer"
_ROOT = Context()  # an empty context: the model call starts a trace of its own
# gRPC codes that are the server's failure (OpenTelemetry's RPC conventions for server spans).
_GRPC_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
SAMPLERS = (
    "always_on", "always_off", "traceidratio",
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
)  # fmt: skip
EXPORTERS = ("otlp", "console", "none")


def _now() -> int:
    return time.time_ns()


class RequestTrace:
    """One sampled request: its server span and the marks its child spans are made from."""

    __slots__ = (
        "context", "failure", "handler_end", "handler_start", "model", "predict_end",
        "request_id", "route", "span", "validate_start",
    )  # fmt: skip

    def __init__(self, span: Any, parent: Context) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span, parent)
        self.route: str | None = None
        self.request_id: str | None = None
        self.model: tuple[str, str] | None = None
        self.handler_start = 0
        self.handler_end = 0
        self.validate_start = 0
        self.predict_end = 0
        self.failure: BaseException | None = None


# The request being handled, when it is sampled (each request runs in its own task).
_CURRENT: ContextVar[RequestTrace | None] = ContextVar("tabserve_trace", default=None)


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _error_text(exc: BaseException) -> str:
    """What a span says about a failure: the server's message, never the client's values."""
    if isinstance(exc, ValidationFailed):
        reasons = [
            f"{'(extra)' if d['reason'] == 'extra_field' else d.get('field') or '(record)'}: "
            f"{d['reason']}"
            for d in exc.details[:20]
        ]
        return f"{exc.message}: {', '.join(reasons)}"
    if isinstance(exc, ServingError):
        return exc.message
    return type(exc).__name__


def _fail(span: Any, exc: BaseException) -> None:
    if not isinstance(exc, ServingError):
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, _error_text(exc)))


# ---- configuration (OpenTelemetry's environment variables) ---------------------------------


def sampler_from_environment() -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER (+ _ARG) names; a value OpenTelemetry does not know
    is the user's mistake: one line saying which values there are."""
    name = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name not in SAMPLERS:
        raise UserError(
            f"OTEL_TRACES_SAMPLER={name!r} is not a sampler tabserve knows: use one of "
            f"{', '.join(SAMPLERS)}"
        )
    ratio = 1.0
    arg = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if name.endswith("traceidratio") and arg:
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise UserError(
                f"OTEL_TRACES_SAMPLER_ARG={arg!r}: give the share of traces to keep, 0..1"
            )
    root = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
    }[name.removeprefix("parentbased_")]
    return ParentBased(root) if name.startswith("parentbased_") else root


def exporter_from_environment() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind not in EXPORTERS:
        raise UserError(
            f"OTEL_TRACES_EXPORTER={kind!r}: tabserve exports with otlp (OTLP over HTTP), "
            "console or none"
        )
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(variable, "").strip()
        if protocol and protocol != "http/protobuf":
            raise UserError(
                f"{variable}={protocol!r}: tabserve exports OTLP over HTTP (http/protobuf); "
                "point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)"
            )
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = os.environ.get(variable, "").strip()
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise UserError(
                f"{variable} must be an http:// or https:// URL, e.g. http://127.0.0.1:4318"
            )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def check_environment() -> None:
    """Raise UserError for an OTEL_* setting tabserve cannot use (before the server starts)."""
    sampler_from_environment()
    exporter = exporter_from_environment()
    if exporter is not None:
        exporter.shutdown()


class _ModelCallSampler(Sampler):
    """The configured sampler, except for a model call: kept when a request it serves is."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if name == MODEL_CALL and links:
            sampled = any(link.context.trace_flags.sampled for link in links)
            return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP,
                                  attributes)  # fmt: skip
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"ModelCallSampler{{{self.inner.get_description()}}}"


def _resource() -> Resource:
    detected = OTELResourceDetector().detect().attributes
    own: dict[str, Any] = {}
    if not detected.get(SERVICE_NAME):
        own[SERVICE_NAME] = "tabserve"
    if not detected.get(SERVICE_VERSION):
        own[SERVICE_VERSION] = tabserve.__version__
    return Resource.create(own)


# ---- the tracer ------------------------------------------------------------------------------


class Tracing:
    """One per server process (made after any fork: the exporter runs a thread)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("tabserve", tabserve.__version__)
        self.propagator = propagate.get_global_textmap()  # OTEL_PROPAGATORS; W3C by default

    @classmethod
    def from_environment(cls) -> Tracing:
        provider = TracerProvider(
            sampler=_ModelCallSampler(sampler_from_environment()), resource=_resource()
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
            _CURRENT.set(request)
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
                _CURRENT.set(None)
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
            request = _CURRENT.get()
            if request is None:
                return await handler(*args)
            request.route = template
            request.request_id = REQUEST_ID.get()
            request.handler_start = _now()
            try:
                return await handler(*args)
            except BaseException as exc:
                request.failure = exc
                raise
            finally:
                request.handler_end = _now()

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
            _fail(decode, failure)
        decode.end(end_time=decoded)
        if request.predict_end:
            encode = start("encode", request.context, start_time=request.predict_end)
            if failure is not None:
                _fail(encode, failure)
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
            _CURRENT.set(trace_)
            code = "OK"
            try:
                return await call(request, context)
            except BaseException:
                found = context.code()
                code = found.name if found is not None else "UNKNOWN"
                raise
            finally:
                _CURRENT.set(None)
                span.set_attribute("rpc.grpc.status_code", _grpc_code_number(code))
                error = None
                if code in _GRPC_SERVER_ERRORS:
                    error = f"{code}: {context.details() or ''}".rstrip(": ")
                self._finish(trace_, None, state, error)

        return traced

    # -- the data plane ---------------------------------------------------------------------

    def data_plane(self, *args: Any, **kwargs: Any) -> DataPlane:
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
        started = _now()
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
            _fail(span, exc)
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


# ---- the traced data plane --------------------------------------------------------------


@dataclass
class _TracedPending(_Pending):
    trace: RequestTrace | None = None
    enqueued_ns: int = 0


class TracedBatcher(DynamicBatcher):
    """The dynamic batcher, remembering which sampled requests each model call serves."""

    current: Sequence[_Pending] = ()

    async def submit(self, columns: dict[str, np.ndarray], n_rows: int) -> Prediction:
        request = _CURRENT.get()
        if request is None:
            return await super().submit(columns, n_rows)
        # As DynamicBatcher.submit, with the request's trace and the time it queued.
        if self._task is None:
            self.start()
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        pending = _TracedPending(columns, n_rows, future, time.perf_counter(), request, _now())
        self._queue.append(pending)
        self._wakeup.set()
        return await future

    async def _dispatch(self, group: list[_Pending]) -> None:
        self.current = group
        try:
            await super()._dispatch(group)
        finally:
            self.current = ()


class _TracedSink:
    """The prediction log's sink, its submit in a ``log_enqueue`` span."""

    def __init__(self, sink: Any, tracer: Any) -> None:
        self._sink = sink
        self._tracer = tracer

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        request = _CURRENT.get()
        if request is None:
            return self._sink.submit(*args, **kwargs)
        span = self._tracer.start_span("log_enqueue", request.context)
        try:
            queued = self._sink.submit(*args, **kwargs)
            span.set_attribute("tabserve.log.queued", bool(queued))
            return queued
        finally:
            span.end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)


class TracedDataPlane(DataPlane):
    """The data plane with spans for validation, the model call and the log's enqueue."""

    batcher_class = TracedBatcher

    def __init__(self, tracing: Tracing, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracing = tracing
        if self.prediction_log is not None:
            self.prediction_log = _TracedSink(self.prediction_log, tracing.tracer)
        self._call_attributes = {
            "tabserve.model.name": self.model_name,
            "tabserve.model.version": self.model_version,
            "tabserve.runtime": self.runtime.name,
        }

    def validate_records(self, records: list[Any], *, indexed: bool = True) -> Batch:
        request = _CURRENT.get()
        if request is None:
            return super().validate_records(records, indexed=indexed)
        return self._validate(request, super().validate_records, records, indexed=indexed)

    def validate_columns(self, columns: dict[str, Any], n_rows: int) -> Batch:
        request = _CURRENT.get()
        if request is None:
            return super().validate_columns(columns, n_rows)
        return self._validate(request, super().validate_columns, columns, n_rows)

    def _validate(self, request: RequestTrace, validate: Any, *args: Any, **kwargs: Any) -> Batch:
        request.model = (self.model_name, self.model_version)
        request.validate_start = _now()
        span = self._tracing.tracer.start_span(
            "validate", request.context, start_time=request.validate_start
        )
        try:
            batch: Batch = validate(*args, **kwargs)
            span.set_attribute("tabserve.rows", batch.n_rows)
            if batch.ood_fields:
                span.set_attribute("tabserve.ood_fields", list(batch.ood_fields))
            return batch
        except BaseException as exc:
            _fail(span, exc)
            raise
        finally:
            span.end()

    async def predict(
        self, batch: Batch, request_id: str | None = None, client_request_id: str | None = None
    ) -> Prediction:
        try:
            return await super().predict(batch, request_id, client_request_id)
        finally:
            request = _CURRENT.get()
            if request is not None:
                request.predict_end = _now()

    def _run(self, columns: dict[str, np.ndarray]) -> Prediction:
        batcher = self._batcher
        if isinstance(batcher, TracedBatcher):
            live = [p for p in batcher.current if not p.future.done()]
            traced = [
                (p.trace, p.enqueued_ns)
                for p in live
                if isinstance(p, _TracedPending) and p.trace is not None
            ]
            n_requests = len(live)
        else:  # no batching: the call is this request's alone
            request = _CURRENT.get()
            traced = [(request, 0)] if request is not None else []
            n_requests = 1
        if not traced:
            return super()._run(columns)
        return self._tracing.model_call(
            super()._run, columns, traced, n_requests, self._call_attributes
        )
