"""Open Inference Protocol v2 REST routes (KServe / Triton / MLServer compatible).

A thin transport over the data plane: bytes → codecs/v2 → plane → codecs/v2 → bytes. Also what
Triton's own clients need beyond the spec: the binary tensor data extension and
``GET /v2/models/{m}/config`` (perf_analyzer exits without it). Errors are the one envelope,
``{"error": "..."}`` (tritonclient shows that key); a validation failure's ``error`` line names
the first offending fields, since v2 clients rarely print ``details``.
"""

from __future__ import annotations

import orjson

import tabserve
from tabserve.serving.codecs import v2_model
from tabserve.serving.codecs.v2 import (
    HEADER_LENGTH,
    DecodedRequest,
    OutputTensor,
    decode_request,
    encode_response,
)
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.errors import SUMMARY_ITEMS, BadRequest, NotFound, ValidationFailed
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.state import ServerState

EXTENSIONS = ["binary_tensor_data", "model_configuration"]


def _json(content: object, status: int = 200) -> Reply:
    return Reply(orjson.dumps(content), status)


def _selected_outputs(
    decoded: DecodedRequest, tensors: dict[str, OutputTensor]
) -> list[tuple[OutputTensor, bool]]:
    if decoded.outputs is None:
        return [(t, decoded.binary_output) for t in tensors.values()]
    chosen = []
    for wanted in decoded.outputs:
        tensor = tensors.get(wanted.name)
        if tensor is None:
            raise BadRequest(f"unknown output '{wanted.name}'; this model has {sorted(tensors)}")
        chosen.append((tensor, wanted.binary))
    return chosen


def routes(state: ServerState) -> list[Route]:
    def model(call: Call) -> DataPlane:
        """The plane serving now, if it is the model (and version) the path names."""
        plane = state.ready_plane()
        name = call.path_params["name"]
        version = call.path_params.get("version")
        if name != plane.model_name:
            raise NotFound(f"unknown model '{name}'; this server serves '{plane.model_name}'")
        if version is not None and version != plane.model_version:
            raise NotFound(
                f"unknown version '{version}' of model '{name}'; "
                f"this server serves version '{plane.model_version}'"
            )
        return plane

    async def server_metadata(call: Call) -> Reply:
        return _json(
            {"name": "tabserve", "version": tabserve.__version__, "extensions": EXTENSIONS}
        )

    async def server_live(call: Call) -> Reply:
        return _json({"live": True})

    async def server_ready(call: Call) -> Reply:
        state.ready_plane()
        if state.draining:
            return _json({"ready": False}, 503)
        return _json({"ready": True})

    async def model_metadata(call: Call) -> Reply:
        plane = model(call)
        return _json(
            v2_model.metadata(plane.spec, plane.model_name, plane.model_version, plane.runtime.name)
        )

    async def model_ready(call: Call) -> Reply:
        plane = model(call)
        return _json({"name": plane.model_name, "ready": True, "version": plane.model_version})

    async def model_config(call: Call) -> Reply:
        plane = model(call)
        batching = plane.batching
        return _json(
            v2_model.config(
                plane.spec,
                plane.model_name,
                plane.runtime.name,
                max_batch_size=plane.max_rows,
                max_queue_delay_us=batching.max_queue_delay_us if batching.enabled else None,
            )
        )

    async def infer(call: Call) -> Reply:
        plane = model(call)
        body = await call.body()
        decoded = decode_request(body, call.header(HEADER_LENGTH.encode()) or None)
        try:
            batch = plane.validate_columns(decoded.columns, decoded.n_rows)
        except ValidationFailed as exc:
            raise exc.summarized() from None
        prediction = await plane.predict(batch, call.request_id, decoded.id)
        tensors = v2_model.output_tensors(plane.spec, prediction.labels, prediction.probabilities)
        warnings = "; ".join(batch.warnings[:SUMMARY_ITEMS])
        content, header_length = encode_response(
            model_name=plane.model_name,
            model_version=plane.model_version,
            request_id=decoded.id,
            outputs=_selected_outputs(decoded, tensors),
            parameters={"warnings": warnings} if warnings else None,
        )
        if header_length is None:
            return Reply(content)
        return Reply(
            content,
            media_type=b"application/octet-stream",
            headers=[(b"inference-header-content-length", str(header_length).encode())],
        )

    model_paths = ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"]
    out = [
        Route("/v2", server_metadata),
        Route("/v2/health/live", server_live, access="probe"),
        Route("/v2/health/ready", server_ready, access="probe"),
    ]
    for base in model_paths:
        out += [
            Route(base, model_metadata),
            Route(f"{base}/ready", model_ready, access="probe"),
            Route(f"{base}/config", model_config),
            Route(f"{base}/infer", infer, ("POST",), "model"),
        ]
    return out
