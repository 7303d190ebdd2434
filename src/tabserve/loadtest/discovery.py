"""What the load tester asks the server before the run: its FeatureSpec and its model name.

Payloads come from the served model's own spec (``GET /spec``), so a load test needs nothing but
the URL. The model name (for the v2 path) and version come from one v1 answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from tabserve.errors import ServiceUnavailable, UserError
from tabserve.spec import FILENAME, FeatureSpec

TIMEOUT_S = 10.0


def _get(url: str) -> httpx.Response:
    try:
        return httpx.get(url, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"cannot reach {url} ({exc.__class__.__name__}); is `tabserve serve` running there?"
        ) from exc


def fetch_spec(base_url: str) -> FeatureSpec:
    """The FeatureSpec the server at ``base_url`` validates against."""
    url = f"{base_url.rstrip('/')}/spec"
    response = _get(url)
    if response.status_code != 200:
        raise UserError(f"GET {url} answered {response.status_code}; is this a tabserve server?")
    try:
        return FeatureSpec.from_json(response.content)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise UserError(f"GET {url} did not return a FeatureSpec: {exc}") from exc


def load_spec_file(path: Path) -> FeatureSpec:
    """A FeatureSpec from a feature_spec.json or a model directory holding one.

    For servers without ``GET /spec`` (the floor, peers speaking the same v1 body).
    """
    path = Path(path)
    file = path / FILENAME if path.is_dir() else path
    try:
        return FeatureSpec.from_json(file.read_bytes())
    except OSError as exc:
        raise UserError(f"--spec {path}: cannot read {file} ({exc.strerror})") from exc
    except ValueError as exc:
        raise UserError(f"--spec {path}: not a FeatureSpec ({exc})") from exc


def probe_model(base_url: str, spec: FeatureSpec) -> dict[str, Any]:
    """Send the spec's example record to /predict: the answer names the model and version.

    A failing answer is not fatal here: a server that answers 500 is what the load test is
    for, and it will be reported there, request by request. The name is then unknown ({}).
    """
    url = f"{base_url.rstrip('/')}/predict"
    try:
        response = httpx.post(
            url,
            content=orjson.dumps(spec.example_record()),
            headers={"content-type": "application/json"},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"cannot reach {url} ({exc.__class__.__name__})") from exc
    try:
        answer = orjson.loads(response.content) if response.status_code == 200 else None
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        return {}
    return {"model": answer.get("model"), "version": answer.get("version")}
