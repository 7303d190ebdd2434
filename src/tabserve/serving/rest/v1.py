"""v1 routes: ``POST /predict`` (one record or an array of records) and ``GET /spec``."""

from __future__ import annotations

from tabserve.serving.codecs import v1
from tabserve.serving.errors import UnsupportedMediaType
from tabserve.serving.http import Call, Reply, Route
from tabserve.serving.state import ServerState


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def routes(state: ServerState) -> list[Route]:
    async def predict(call: Call) -> Reply:
        if not is_json(call.header(b"content-type")):
            raise UnsupportedMediaType("send the body as application/json")
        body = await call.body()
        plane = state.ready_plane()
        records, single = v1.decode(body)
        batch = plane.validate_records(records, indexed=not single)
        client_id = call.client_request_id()
        prediction = await plane.predict(batch, call.request_id, client_id)
        return Reply(
            v1.encode(
                single=single,
                class_keys=plane.class_keys,
                labels=prediction.labels,
                probabilities=prediction.probabilities,
                model=plane.model_name,
                version=plane.model_version,
                warnings=batch.warnings,
            ),
            headers=[call.id_header()],
        )

    async def spec(call: Call) -> Reply:
        return Reply(state.ready_plane().spec.to_json())

    return [Route("/predict", predict, ("POST",), "model"), Route("/spec", spec)]
