"""The one line a server writes at start, saying what it serves and how: model, version, URL,
runtime, workers, batching, gRPC, where the prediction log goes (its password masked), the drift
refresher, where traces go and how many (read from the OTEL_* variables without importing
OpenTelemetry), and the access log.

``startup_line`` returns the text for a person and the same facts as fields for a JSON line
(logs.py); the supervisor writes it once, before any worker starts, so N workers make one line.
Nothing here may print a secret: URLs go through ``redact.mask_url``, and OTLP headers (where
collectors' API keys live) are never read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tabserve.redact import mask_url
from tabserve.settings import Settings

if TYPE_CHECKING:
    from tabserve.modeldir import ModelDir


def _runtime_name(model_dir: ModelDir, runtime: str) -> str:
    if runtime == "onnx" or (runtime == "auto" and model_dir.has_onnx):
        return "onnx"
    return model_dir.flavor


def _tracing_target() -> str:
    """Where spans go and how many, from the OTEL_* variables (without importing OTel)."""
    env = os.environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if sampler.endswith("traceidratio"):
        sampler += f" {env.get('OTEL_TRACES_SAMPLER_ARG', '1.0').strip() or '1.0'}"
    if exporter != "otlp":
        return f"{exporter}, {sampler}"
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not endpoint:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
        endpoint = base.rstrip("/") + "/v1/traces"
    return f"OTLP {mask_url(endpoint)}, {sampler}"


def startup_line(settings: Settings, model_dir: ModelDir) -> tuple[str, dict[str, Any]]:
    """What the server serves, for its one line at startup: (text, the same as fields)."""
    runtime = _runtime_name(model_dir, settings.runtime)
    workers = f"{settings.workers} worker{'s' * (settings.workers != 1)}"
    if settings.batching:
        batching = (f"batching up to {settings.max_batch_size} rows, "
                    f"{settings.max_queue_delay_us} µs queue delay")  # fmt: skip
    else:
        batching = "no batching"
    log_db = settings.resolved_log_db()
    target = mask_url(log_db) if log_db else "off"
    grpc = f"gRPC on {settings.host}:{settings.grpc_port}" if settings.grpc_port else "gRPC off"
    tracing = f"tracing on ({_tracing_target()})" if settings.tracing else "tracing off"
    if settings.drift_interval:
        drift = f"drift refresh every {settings.drift_interval:g} s over {settings.drift_window}"
    else:
        drift = "drift refresh off"
    url = f"http://{settings.host}:{settings.port}"
    text = (
        f"serving {model_dir.name} version {model_dir.version} at {url}: {runtime} runtime, "
        f"{workers}, {batching}, {grpc}, prediction log {target}, {drift}, {tracing}, "
        f"access log {'on' if settings.access_log else 'off'}"
    )
    fields = {
        "model": model_dir.name,
        "version": model_dir.version,
        "url": url,
        "runtime": runtime,
        "workers": settings.workers,
        "batching": settings.batching,
        "max_batch_size": settings.max_batch_size,
        "max_queue_delay_us": settings.max_queue_delay_us,
        "grpc_port": settings.grpc_port,
        "prediction_log": target,
        "drift_interval_s": settings.drift_interval,
        "drift_window": settings.drift_window if settings.drift_interval else None,
        "tracing": _tracing_target() if settings.tracing else False,
        "access_log": settings.access_log,
    }
    return text, fields
