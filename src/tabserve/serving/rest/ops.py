"""Operations routes: liveness, readiness, Prometheus, and the API documentation."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tabserve.serving import metrics
from tabserve.serving.rest import openapi
from tabserve.serving.rest.v1 import json_response
from tabserve.serving.state import ServerState

SWAGGER_UI = """<!doctype html>
<html><head><title>{title} — API</title><meta charset="utf-8">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui"}});</script>
</body></html>"""


def routes(state: ServerState) -> list[Route]:
    # The document is rebuilt when the served spec changes (a hot reload), so /docs stays true.
    cache: dict[str, Any] = {"spec": None, "body": b""}

    async def health(request: Request) -> Response:
        return json_response(b'{"status":"alive"}')

    async def ready(request: Request) -> Response:
        plane = state.plane
        if plane is None:
            body: dict[str, Any] = {"status": "loading"}
            if state.load_error:
                body = {"status": "failed", "error": state.load_error}
            return json_response(orjson.dumps(body), 503)
        return json_response(
            orjson.dumps(
                {"status": "ready", "model": plane.model_name, "version": plane.model_version}
            )
        )

    async def metrics_endpoint(request: Request) -> Response:
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    async def openapi_json(request: Request) -> Response:
        spec = state.spec
        if cache["spec"] is not spec:
            plane = state.plane
            version = plane.model_version if plane is not None else "loading"
            document = openapi.build(spec, "tabserve", version, state.settings.max_rows)
            cache.update(spec=spec, body=orjson.dumps(document))
        return json_response(cache["body"])

    async def docs(request: Request) -> Response:
        return HTMLResponse(SWAGGER_UI.format(title="tabserve"))

    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
