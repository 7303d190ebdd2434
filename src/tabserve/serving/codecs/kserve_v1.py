"""KServe's v1 protocol: ``POST /v1/models/{name}:predict`` with ``{"instances": [...]}``.

Instances are records or rows in the model's column order (what KServe's sklearn server
takes); the answer is ``{"predictions": [...]}``, one label or value per instance.
"""

from __future__ import annotations

from typing import Any

import orjson

from tabserve.serving.codecs.mlflow import rows_to_records
from tabserve.serving.errors import BadRequest
from tabserve.spec import FeatureSpec


def decode(body: bytes, spec: FeatureSpec) -> list[Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest('send {"instances": [...]}')
    return rows_to_records(payload["instances"], spec.names, "instances")


def encode(labels: Any) -> bytes:
    return orjson.dumps({"predictions": labels.tolist()})
