"""Prometheus metrics of the server, correct across uvicorn workers.

With several workers, ``tabserve serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh temporary
directory before the workers start; prometheus_client then keeps each value in a per-process
file and ``/metrics`` sums them. That variable must be set before this module is imported.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "tabserve_requests_total", "HTTP requests by route and status", ["route", "status"]
)
LATENCY = Histogram(
    "tabserve_request_duration_seconds",
    "Time from request start to response end",
    ["route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "tabserve_batch_rows",
    "Rows per runtime call (after dynamic batching)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384),
)
QUEUE_DELAY = Histogram(
    "tabserve_queue_delay_seconds",
    "Time a request waited in the dynamic batcher before its runtime call started",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1),
)
VALIDATION_ERRORS = Counter(
    "tabserve_validation_errors_total", "Rejected values by feature and reason", ["field", "reason"]
)
OOD_WARNINGS = Counter(
    "tabserve_ood_warnings_total", "Values outside the training range, by feature", ["field"]
)
PREDICTIONS = Counter("tabserve_predictions_total", "Predicted rows by class", ["label"])
MODEL_INFO = Gauge(
    "tabserve_model_info",
    "The model being served (value 1; 0 once replaced)",
    ["name", "version", "runtime"],
    multiprocess_mode="livemax",
)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
