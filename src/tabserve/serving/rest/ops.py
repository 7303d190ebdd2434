"""Operations routes: liveness, readiness, Prometheus, and the OpenAPI document.

(/docs and /redoc, the pages over the document, are rest/docs.py.)
"""

from __future__ import annotations

from typing import Any

import orjson

from tabserve.serving import metrics
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.rest import openapi, page
from tabserve.serving.state import ServerState


def routes(state: ServerState) -> list[Route]:
    # The document is rebuilt when the served spec changes (a hot reload), so /docs stays true.
    cache: dict[str, Any] = {"spec": None, "body": b""}

    async def health(call: Call) -> Reply:
        return Reply(b'{"status":"alive"}')

    async def ready(call: Call) -> Reply:
        plane = state.plane
        if state.draining:
            return Reply(b'{"status":"draining"}', 503, headers=[(b"retry-after", b"1")])
        if plane is None:
            body: dict[str, Any] = {"status": "loading"}
            if state.load_error:
                body = {"status": "failed", "error": state.load_error}
            return Reply(orjson.dumps(body), 503)
        return Reply(
            orjson.dumps(
                {"status": "ready", "model": plane.model_name, "version": plane.model_version}
            )
        )

    async def metrics_endpoint(call: Call) -> Reply:
        data, content_type = metrics.render()
        return Reply(data, media_type=content_type.encode())

    async def openapi_json(call: Call) -> Reply:
        spec = state.spec
        if cache["spec"] is not spec:
            plane = state.plane
            version = plane.model_version if plane is not None else "loading"
            document = openapi.build(spec, "tabserve", version, state.settings.max_rows)
            document["paths"].update(page.OPENAPI_PATHS)  # the model page's JSON routes
            cache.update(spec=spec, body=orjson.dumps(document))
        return Reply(cache["body"])

    return [
        Route("/health", health, access="probe"),
        Route("/ready", ready, access="probe"),
        Route("/metrics", metrics_endpoint, access="metrics"),
        Route("/openapi.json", openapi_json, in_schema=False),
    ]
