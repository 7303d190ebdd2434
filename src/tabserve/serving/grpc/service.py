"""OIP v2 over gRPC (``inference.GRPCInferenceService``) on its own port, on the same data plane
as REST: the same validation, batching, admission control, API keys, metrics and prediction log.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelConfig (perf_analyzer
asks for it) and ModelInfer; any other method of the service answers UNIMPLEMENTED. Errors are
the gRPC status a client library expects for the HTTP status the REST routes would answer
(400 → INVALID_ARGUMENT, 404 → NOT_FOUND, 503 → UNAVAILABLE, ...), with the same message.
Handlers are registered generically (no generated stubs): the messages come from messages.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

import tabserve
from tabserve.logs import REQUEST_ID
from tabserve.serving.admission import Admission
from tabserve.serving.auth import ApiKeys
from tabserve.serving.codecs import v2_grpc, v2_model
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.errors import (
    SUMMARY_ITEMS,
    BadRequest,
    NotFound,
    RuntimeFailure,
    ServingError,
    ValidationFailed,
)
from tabserve.serving.grpc.messages import SERVICE, message
from tabserve.serving.request_ids import request_ids
from tabserve.serving.request_metrics import RequestMetrics
from tabserve.serving.state import ServerState

log = logging.getLogger("tabserve.serving")

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    500: grpc.StatusCode.INTERNAL,
}
Handler = Callable[[Any, Any], Awaitable[Any]]


class InferenceService:
    """The service's handlers over one ServerState."""

    def __init__(self, state: ServerState, admission: Admission, metrics: RequestMetrics) -> None:
        self.state = state
        self.admission = admission
        self.metrics = metrics
        settings = state.settings
        keys = settings.api_keys.get_secret_value() if settings.api_keys else None
        self.keys = ApiKeys(keys)

    def _model(self, name: str, version: str) -> DataPlane:
        plane = self.state.ready_plane()
        if name != plane.model_name:
            raise NotFound(f"unknown model '{name}'; this server serves '{plane.model_name}'")
        if version and version != plane.model_version:
            raise NotFound(f"unknown version '{version}' of model '{name}'")
        return plane

    # ---- the methods -------------------------------------------------------------------------

    async def server_live(self, request: Any, context: Any) -> Any:
        return message("ServerLiveResponse")(live=True)

    async def server_ready(self, request: Any, context: Any) -> Any:
        ready = self.state.plane is not None and not self.state.draining
        return message("ServerReadyResponse")(ready=ready)

    async def model_ready(self, request: Any, context: Any) -> Any:
        try:
            self._model(request.name, request.version)
        except ServingError:
            return message("ModelReadyResponse")(ready=False)
        return message("ModelReadyResponse")(ready=True)

    async def server_metadata(self, request: Any, context: Any) -> Any:
        from tabserve.serving.rest.v2 import EXTENSIONS

        return message("ServerMetadataResponse")(
            name="tabserve", version=tabserve.__version__, extensions=EXTENSIONS
        )

    async def model_metadata(self, request: Any, context: Any) -> Any:
        plane = self._model(request.name, request.version)
        meta = v2_model.metadata(plane.spec, plane.model_name, plane.model_version,
                                 plane.runtime.name)  # fmt: skip
        return message("ModelMetadataResponse")(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=meta["inputs"], outputs=meta["outputs"],
        )  # fmt: skip

    async def model_config(self, request: Any, context: Any) -> Any:
        plane = self._model(request.name, request.version)
        batching = plane.batching
        config = v2_model.config(
            plane.spec, plane.model_name, plane.runtime.name, max_batch_size=plane.max_rows,
            max_queue_delay_us=batching.max_queue_delay_us if batching.enabled else None,
        )  # fmt: skip
        return message("ModelConfigResponse")(config=config)

    async def model_infer(self, request: Any, context: Any) -> Any:
        plane = self._model(request.model_name, request.model_version)
        decoded = v2_grpc.decode_request(request)
        try:
            batch = plane.validate_columns(decoded.columns, decoded.n_rows)
        except ValidationFailed as exc:
            raise exc.summarized() from None
        with self.admission:
            prediction = await plane.predict(batch, REQUEST_ID.get(), decoded.id)
        tensors = v2_model.output_tensors(plane.spec, prediction.labels, prediction.probabilities)
        chosen = list(tensors.values())
        if decoded.outputs is not None:
            chosen = []
            for wanted in decoded.outputs:
                if wanted.name not in tensors:
                    raise BadRequest(f"unknown output '{wanted.name}'; the model has "
                                     f"{sorted(tensors)}")  # fmt: skip
                chosen.append(tensors[wanted.name])
        return v2_grpc.encode_response(
            message("ModelInferResponse"), model_name=plane.model_name,
            model_version=plane.model_version, request_id=decoded.id, outputs=chosen,
            warnings="; ".join(batch.warnings[:SUMMARY_ITEMS]) or None,
        )  # fmt: skip

    # ---- registration ---------------------------------------------------------------------

    def _wrap(self, name: str, handler: Handler, open_to_all: bool) -> Handler:
        route = f"grpc:{name}"

        async def call(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            REQUEST_ID.set(request_ids.next())  # this call's task: its log lines carry it
            status = 200
            try:
                if self.keys.enabled and not open_to_all:
                    metadata = dict(context.invocation_metadata() or ())
                    token = metadata.get("authorization")
                    self.keys.check(token.encode() if isinstance(token, str) else token)
                return await handler(request, context)
            except ServingError as exc:
                status = exc.status
                await context.abort(STATUS_CODES.get(exc.status, grpc.StatusCode.UNKNOWN),
                                    exc.message)  # fmt: skip
            except Exception:
                if context.code() is not None:  # an abort already raised above
                    raise
                status = 500
                log.exception("unhandled error in %s", name)
                failure = RuntimeFailure("internal server error")
                await context.abort(grpc.StatusCode.INTERNAL, failure.message)
            finally:
                self.metrics.observe(route, status, time.perf_counter() - started)

        return call

    def handler(self) -> Any:
        methods: dict[str, tuple[Handler, str, str, bool]] = {
            "ServerLive": (self.server_live, "ServerLiveRequest", "ServerLiveResponse", True),
            "ServerReady": (self.server_ready, "ServerReadyRequest", "ServerReadyResponse", True),
            "ModelReady": (self.model_ready, "ModelReadyRequest", "ModelReadyResponse", True),
            "ServerMetadata": (self.server_metadata, "ServerMetadataRequest",
                               "ServerMetadataResponse", False),
            "ModelMetadata": (self.model_metadata, "ModelMetadataRequest",
                              "ModelMetadataResponse", False),
            "ModelConfig": (self.model_config, "ModelConfigRequest", "ModelConfigResponse", False),
            "ModelInfer": (self.model_infer, "ModelInferRequest", "ModelInferResponse", False),
        }  # fmt: skip
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._layers(name, fn, open_to_all),
                request_deserializer=message(req).FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
            for name, (fn, req, _, open_to_all) in methods.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def _layers(self, name: str, fn: Handler, open_to_all: bool) -> Handler:
        """The method with the front's concerns, and tracing and the access log when on
        (wrapped here once, so a server without them runs none of their code)."""
        tracing = self.state.tracing
        if tracing is not None and name == "ModelInfer":
            fn = tracing.wrap_handler(fn, f"{SERVICE}/{name}")
        call = self._wrap(name, fn, open_to_all)
        if tracing is not None:
            call = tracing.wrap_grpc(SERVICE, name, call, self.state)
        if self.state.settings.access_log:
            from tabserve.serving.access_log import AccessLog

            call = AccessLog.grpc(self.state, f"{SERVICE}/{name}", call)
        return call


async def start(state: ServerState, admission: Admission, metrics: RequestMetrics) -> Any:
    """The gRPC server on ``settings.grpc_port`` (SO_REUSEPORT: every worker binds it)."""
    settings = state.settings
    limit = settings.max_body_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", max(limit, 64 * 1024 * 1024)),
            ("grpc.so_reuseport", 1),
        ]
    )
    server.add_generic_rpc_handlers((InferenceService(state, admission, metrics).handler(),))
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    await server.start()
    log.info("gRPC (OIP v2) on %s", address)
    return server
