"""KServe's v1 routes, so a KServe v1 client switches by changing the host:
``POST /v1/models/{name}:predict``, ``GET /v1/models/{name}``, ``GET /v1/models``."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tabserve.serving.codecs import kserve_v1
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.errors import NotFound
from tabserve.serving.rest.v1 import json_response
from tabserve.serving.state import ServerState


def routes(state: ServerState) -> list[Route]:
    def model(request: Request) -> DataPlane:
        plane = state.ready_plane()
        name = request.path_params["name"]
        if name != plane.model_name:
            raise NotFound(f"unknown model '{name}'; this server serves '{plane.model_name}'")
        return plane

    async def predict(request: Request) -> Response:
        plane = model(request)
        records = kserve_v1.decode(await request.body(), plane.spec)
        batch = plane.validate_records(records)
        prediction = await plane.predict(batch, request.headers.get("x-request-id"))
        return json_response(kserve_v1.encode(prediction.labels))

    async def model_status(request: Request) -> Response:
        plane = model(request)
        return json_response(orjson.dumps({"name": plane.model_name, "ready": True}))

    async def models(request: Request) -> Response:
        plane = state.plane
        return json_response(orjson.dumps({"models": [plane.model_name] if plane else []}))

    return [
        Route("/v1/models/{name}:predict", predict, methods=["POST"]),
        Route("/v1/models/{name}", model_status, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
