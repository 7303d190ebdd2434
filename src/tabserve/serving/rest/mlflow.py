"""MLflow's scoring routes, so a client of ``mlflow models serve`` switches by changing the host:
``POST /invocations``, ``GET /ping``, ``GET /version``. Same data plane as /predict (validation,
batching, metrics, the prediction log)."""

from __future__ import annotations

import tabserve
from tabserve.serving.codecs import mlflow
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.state import ServerState


def routes(state: ServerState) -> list[Route]:
    async def invocations(call: Call) -> Reply:
        body = await call.body()
        plane = state.ready_plane()
        records = mlflow.decode(body, call.header(b"content-type"), plane.spec)
        batch = plane.validate_records(records)
        prediction = await plane.predict(batch, call.request_id, call.client_request_id())
        return Reply(mlflow.encode(prediction.labels), headers=[call.id_header()])

    async def ping(call: Call) -> Reply:
        state.ready_plane()
        return Reply(b"\n", media_type=b"text/plain")

    async def version(call: Call) -> Reply:
        return Reply(tabserve.__version__.encode(), media_type=b"text/plain")

    return [
        Route("/invocations", invocations, ("POST",), "model"),
        Route("/ping", ping, access="probe"),
        Route("/version", version),
    ]
