"""Open Inference Protocol v2 routes (kserve / Triton / MLServer compatible) over the DataPlane.

A thin transport: bytes in → v2_codec → DataPlane (validation, batching, runtime, log, metrics)
→ v2_codec → bytes out. Also what Triton's own clients need beyond the spec: the binary tensor
data extension and ``GET /v2/models/{m}/config`` (perf_analyzer exits without it).

Every error answer is ``{"error": "..."}`` (tritonclient reads that key): 400 for the client's
mistakes, 404 for an unknown model or version, 503 while no model is loaded.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

import tabserve
from tabserve.serving import v2_model
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.v2_codec import (
    HEADER_LENGTH,
    DecodedRequest,
    OutputTensor,
    V2ProtocolError,
    decode_request,
    encode_response,
)
from tabserve.serving.validation import MAX_DETAILS, RequestValidationError

EXTENSIONS = ["binary_tensor_data", "model_configuration"]
DEFAULT_MAX_ROWS = 10_000
# How many validation problems the one-line "error" message names (all are in "details").
ERROR_SUMMARY_ITEMS = 5


class V2Error(Exception):
    """An error answer: status and the one-line message tritonclient shows its user."""

    def __init__(self, status: int, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


class V2Route(APIRoute):
    """Turns V2Error into ``{"error": ...}`` inside the router, so the app needs no handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except V2Error as exc:
                return error_response(exc)

        return handle


router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"], route_class=V2Route)


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def error_response(exc: V2Error) -> Response:
    body: dict[str, Any] = {"error": exc.message}
    if exc.details is not None:
        body["details"] = exc.details
    return _json(body, exc.status)


def _plane(request: Request) -> DataPlane:
    """The DataPlane serving now (read per request: a hot reload swaps it)."""
    plane: DataPlane | None = getattr(request.app.state, "dataplane", None)
    if plane is None:
        raise V2Error(503, "no model is loaded yet")
    return plane


def _model(request: Request, name: str, version: str | None = None) -> DataPlane:
    plane = _plane(request)
    if name != plane.model_name:
        raise V2Error(404, f"unknown model '{name}'; this server serves '{plane.model_name}'")
    if version is not None and version != plane.model_version:
        raise V2Error(
            404,
            f"unknown version '{version}' of model '{name}'; "
            f"this server serves version '{plane.model_version}'",
        )
    return plane


def _max_rows(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "max_rows", DEFAULT_MAX_ROWS))


# ---- server ------------------------------------------------------------------------------------


@router.get("")
async def server_metadata() -> Response:
    return _json({"name": "tabserve", "version": tabserve.__version__, "extensions": EXTENSIONS})


@router.get("/health/live")
async def server_live() -> Response:
    return _json({"live": True})


@router.get("/health/ready")
async def server_ready(request: Request) -> Response:
    _plane(request)
    return _json({"ready": True})


# ---- models ------------------------------------------------------------------------------------


def _metadata(plane: DataPlane) -> Response:
    return _json(
        v2_model.metadata(plane.spec, plane.model_name, plane.model_version, plane.runtime.name)
    )


@router.get("/models/{name}")
async def model_metadata(request: Request, name: str) -> Response:
    return _metadata(_model(request, name))


@router.get("/models/{name}/versions/{version}")
async def model_version_metadata(request: Request, name: str, version: str) -> Response:
    return _metadata(_model(request, name, version))


@router.get("/models/{name}/ready")
async def model_ready(request: Request, name: str) -> Response:
    return _json({"name": name, "ready": True, **_ready_version(_model(request, name))})


@router.get("/models/{name}/versions/{version}/ready")
async def model_version_ready(request: Request, name: str, version: str) -> Response:
    return _json({"name": name, "ready": True, **_ready_version(_model(request, name, version))})


def _ready_version(plane: DataPlane) -> dict[str, str]:
    return {"version": plane.model_version}


def _config(request: Request, plane: DataPlane) -> Response:
    batching = plane.batching
    return _json(
        v2_model.config(
            plane.spec,
            plane.model_name,
            plane.runtime.name,
            max_batch_size=_max_rows(request),
            max_queue_delay_us=batching.max_queue_delay_us if batching.enabled else None,
        )
    )


@router.get("/models/{name}/config")
async def model_config(request: Request, name: str) -> Response:
    return _config(request, _model(request, name))


@router.get("/models/{name}/versions/{version}/config")
async def model_version_config(request: Request, name: str, version: str) -> Response:
    return _config(request, _model(request, name, version))


# ---- inference ---------------------------------------------------------------------------------

_TENSOR_SCHEMA = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string", "description": "a feature name (see the model metadata)"},
        "datatype": {"type": "string", "enum": ["BYTES", "FP64", "FP32", "INT64", "BOOL"]},
        "shape": {"type": "array", "items": {"type": "integer"}, "description": "[N] or [N, 1]"},
        "data": {"type": "array", "description": "flat or nested row-major values"},
        "parameters": {"type": "object", "description": "binary_data_size (binary extension)"},
    },
}
_ERROR = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    }
}
INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An inference request as JSON, or JSON followed by binary tensors "
        "(header Inference-Header-Content-Length gives the JSON part's length).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "items": _TENSOR_SCHEMA},
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "example": {
                    "id": "1",
                    "inputs": [
                        {"name": "Sex", "datatype": "BYTES", "shape": [1, 1], "data": ["male"]},
                        {"name": "Age", "datatype": "FP64", "shape": [1, 1], "data": [22.0]},
                    ],
                },
            }
        },
    },
    "responses": {
        "400": {"description": "Bad request: protocol or validation error", **_ERROR},
        "404": {"description": "Unknown model or version", **_ERROR},
        "503": {"description": "No model loaded yet", **_ERROR},
    },
}


@router.post("/models/{name}/infer", openapi_extra=INFER_OPENAPI)
async def infer(request: Request, name: str) -> Response:
    return await _infer(request, _model(request, name))


@router.post("/models/{name}/versions/{version}/infer", openapi_extra=INFER_OPENAPI)
async def infer_version(request: Request, name: str, version: str) -> Response:
    return await _infer(request, _model(request, name, version))


async def _body(request: Request) -> bytes:
    """The request body, decompressed when the client sent Content-Encoding (tritonclient can)."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError):
        raise V2Error(400, f"request body is not valid {encoding} data") from None
    if encoding not in ("identity", ""):
        raise V2Error(400, f"unsupported Content-Encoding {encoding!r}: use gzip or deflate")
    return body


def _decode(body: bytes, header_length: str | None, max_rows: int) -> DecodedRequest:
    try:
        decoded = decode_request(body, header_length)
    except V2ProtocolError as exc:
        raise V2Error(400, str(exc)) from None
    if decoded.n_rows == 0:
        raise V2Error(400, "inputs hold no rows: the first dimension of every input is 0")
    if decoded.n_rows > max_rows:
        raise V2Error(400, f"{decoded.n_rows} rows in one request; the limit is {max_rows}")
    return decoded


def validation_message(exc: RequestValidationError) -> str:
    """One line naming the offending fields, e.g. ``Sex (unknown_category) at row 3``."""
    parts = []
    for d in exc.details[:ERROR_SUMMARY_ITEMS]:
        row = f" at row {d['record']}" if "record" in d else ""
        parts.append(f"{d.get('message') or d['reason']}{row}")
    more = exc.total - len(parts)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"validation failed: {'; '.join(parts)}{suffix}"


def _selected_outputs(
    decoded: DecodedRequest, tensors: dict[str, OutputTensor]
) -> list[tuple[OutputTensor, bool]]:
    if decoded.outputs is None:
        return [(t, decoded.binary_output) for t in tensors.values()]
    chosen = []
    for wanted in decoded.outputs:
        tensor = tensors.get(wanted.name)
        if tensor is None:
            raise V2Error(400, f"unknown output '{wanted.name}'; this model has {sorted(tensors)}")
        chosen.append((tensor, wanted.binary))
    return chosen


async def _infer(request: Request, plane: DataPlane) -> Response:
    body = await _body(request)
    decoded = _decode(body, request.headers.get(HEADER_LENGTH), _max_rows(request))
    try:
        batch = plane.validate_columns(decoded.columns, decoded.n_rows)
    except RequestValidationError as exc:
        raise V2Error(400, validation_message(exc), exc.details[:MAX_DETAILS]) from None
    prediction = await plane.predict(batch)
    tensors = v2_model.output_tensors(plane.spec, prediction.labels, prediction.probabilities)
    content, header_length = encode_response(
        model_name=plane.model_name,
        model_version=plane.model_version,
        request_id=decoded.id,
        outputs=_selected_outputs(decoded, tensors),
        parameters={"warnings": "; ".join(batch.warnings[:ERROR_SUMMARY_ITEMS])}
        if batch.warnings
        else None,
    )
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
)
async def unknown_endpoint(path: str) -> Response:
    """Unknown v2 paths answer in the v2 error shape too (tritonclient reads ``error``)."""
    raise V2Error(404, f"no v2 endpoint /v2/{path}")
