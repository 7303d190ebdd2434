"""MLflow's scoring routes, so a client of ``mlflow models serve`` switches by changing the host:
``POST /invocations``, ``GET /ping``, ``GET /version``. Same data plane as /predict (validation,
batching, metrics, the prediction log)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import tabserve
from tabserve.serving.codecs import mlflow
from tabserve.serving.rest.v1 import json_response
from tabserve.serving.state import ServerState


def routes(state: ServerState) -> list[Route]:
    async def invocations(request: Request) -> Response:
        body = await request.body()
        plane = state.ready_plane()
        records = mlflow.decode(body, request.headers.get("content-type", ""), plane.spec)
        batch = plane.validate_records(records)
        prediction = await plane.predict(batch, request.headers.get("x-request-id"))
        return json_response(mlflow.encode(prediction.labels))

    async def ping(request: Request) -> Response:
        state.ready_plane()
        return Response(b"\n", media_type="application/json")

    async def version(request: Request) -> Response:
        return Response(tabserve.__version__.encode(), media_type="text/plain")

    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
