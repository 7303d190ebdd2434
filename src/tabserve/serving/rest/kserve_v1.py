"""KServe's v1 routes, so a KServe v1 client switches by changing the host:
``POST /v1/models/{name}:predict``, ``GET /v1/models/{name}``, ``GET /v1/models``."""

from __future__ import annotations

import orjson

from tabserve.serving.codecs import kserve_v1
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.errors import NotFound
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.state import ServerState


def routes(state: ServerState) -> list[Route]:
    def model(call: Call) -> DataPlane:
        plane = state.ready_plane()
        name = call.path_params["name"]
        if name != plane.model_name:
            raise NotFound(f"unknown model '{name}'; this server serves '{plane.model_name}'")
        return plane

    async def predict(call: Call) -> Reply:
        plane = model(call)
        records = kserve_v1.decode(await call.body(), plane.spec)
        batch = plane.validate_records(records)
        prediction = await plane.predict(batch, call.request_id, call.client_request_id())
        return Reply(kserve_v1.encode(prediction.labels), headers=[call.id_header()])

    async def model_status(call: Call) -> Reply:
        plane = model(call)
        return Reply(orjson.dumps({"name": plane.model_name, "ready": True}))

    async def models(call: Call) -> Reply:
        plane = state.plane
        return Reply(orjson.dumps({"models": [plane.model_name] if plane else []}))

    return [
        Route("/v1/models/{name}:predict", predict, ("POST",), "model"),
        Route("/v1/models/{name}", model_status),
        Route("/v1/models", models),
    ]
