"""v1 routes: ``POST /predict`` (one record or an array of records) and ``GET /spec``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tabserve.serving.codecs import v1
from tabserve.serving.errors import UnsupportedMediaType
from tabserve.serving.state import ServerState


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def json_response(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type="application/json")


def routes(state: ServerState) -> list[Route]:
    async def predict(request: Request) -> Response:
        if not is_json(request.headers.get("content-type", "")):
            raise UnsupportedMediaType("send the body as application/json")
        body = await request.body()
        plane = state.ready_plane()
        records, single = v1.decode(body)
        batch = plane.validate_records(records, indexed=not single)
        # The client's X-Request-ID (when sent) keys the prediction log rows, for correlation.
        prediction = await plane.predict(batch, request.headers.get("x-request-id"))
        return json_response(
            v1.encode(
                single=single,
                class_keys=plane.class_keys,
                labels=prediction.labels,
                probabilities=prediction.probabilities,
                model=plane.model_name,
                version=plane.model_version,
                warnings=batch.warnings,
            )
        )

    async def spec(request: Request) -> Response:
        return json_response(state.ready_plane().spec.to_json())

    return [
        Route("/predict", predict, methods=["POST"]),
        Route("/spec", spec, methods=["GET"]),
    ]
