"""Prometheus metrics of the server, correct across uvicorn workers.

Names and units follow Prometheus' conventions (``_total`` counters, ``_seconds``); every metric
about requests and predictions carries the ``model`` and ``version`` it was served by, so a hot
reload never mixes two versions in one series:

    tabserve_requests_total{route, status, model, version}          counter
    tabserve_request_duration_seconds{route, model, version}        histogram
    tabserve_in_flight_requests                                     gauge (sum over workers)
    tabserve_requests_shed_total{reason}                            counter (overload, timeout)
    tabserve_batch_rows{model, version}                             histogram, rows per model call
    tabserve_queue_delay_seconds{model, version}                    histogram, wait in the batcher
    tabserve_validation_errors_total{model, version, field, reason} counter
    tabserve_ood_warnings_total{model, version, field}              counter
    tabserve_predictions_total{model, version, label}               counter, rows by class
    tabserve_model_info{model, version, runtime}                    gauge, 1 while served
    tabserve_feedback_items_total{model}                            counter, POST /feedback
    tabserve_feature_drift_score{model, feature}                    gauge, with --drift-interval
    tabserve_feature_drifted{model, feature}                        gauge 0/1
    tabserve_dataset_drift{model}                                   gauge 0/1
    tabserve_model_quality{model, metric}                           gauge, from ground truth
    tabserve_drift_refreshes_total{outcome}                         counter: ok, no_data, failed
    tabserve_drift_refresh_duration_seconds                         gauge, the last refresh
    tabserve_drift_last_refresh_timestamp_seconds                   gauge, the last good one
(the prediction log's own metrics are in tabserve/predlog/metrics.py.)

``route`` is the path template (``/v2/models/{name}/infer``), never the raw path; ``model`` and
``version`` are "" before a model is loaded. With several workers, ``tabserve serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start; prometheus_client
keeps each value in a per-process file and ``/metrics`` sums them. Every gauge states how its
values from several workers combine (``multiprocess_mode``), so a dead worker leaves no series.
That variable must be set before this module is imported.

The drift gauges are set by whichever worker ran the last refresh (one per interval across
workers, serving/drift_refresh.py): ``mostrecent`` makes every worker's /metrics show that
refresh's values, whichever worker it was, and a value from an earlier refresh by another
worker can never outvote it (as ``max`` would keep a feature "drifted" that no longer is).
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
SERVED = ["model", "version"]

REQUESTS = Counter(
    "tabserve_requests_total", "HTTP requests by route and status", ["route", "status", *SERVED]
)
LATENCY = Histogram(
    "tabserve_request_duration_seconds",
    "Time from request start to response end",
    ["route", *SERVED],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
IN_FLIGHT = Gauge(
    "tabserve_in_flight_requests",
    "Requests received and not yet answered (the autoscaling signal)",
    multiprocess_mode="livesum",
)
SHED = Counter(
    "tabserve_requests_shed_total",
    "Requests answered 503 without running the model, by reason (overload, timeout)",
    ["reason"],
)
BATCH_SIZE = Histogram(
    "tabserve_batch_rows",
    "Rows per runtime call (after dynamic batching)",
    SERVED,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384),
)
QUEUE_DELAY = Histogram(
    "tabserve_queue_delay_seconds",
    "Time a request waited in the dynamic batcher before its runtime call started",
    SERVED,
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1),
)
VALIDATION_ERRORS = Counter(
    "tabserve_validation_errors_total",
    "Rejected values by feature and reason",
    [*SERVED, "field", "reason"],
)
OOD_WARNINGS = Counter(
    "tabserve_ood_warnings_total",
    "Values outside the training range, by feature",
    [*SERVED, "field"],
)
PREDICTIONS = Counter("tabserve_predictions_total", "Predicted rows by class", [*SERVED, "label"])
FEEDBACK_ITEMS = Counter(
    "tabserve_feedback_items_total",
    "Ground-truth items accepted by POST /feedback (queued for the feedback table)",
    ["model"],
)
MODEL_INFO = Gauge(
    "tabserve_model_info",
    "The model being served (value 1; 0 once replaced)",
    [*SERVED, "runtime"],
    multiprocess_mode="livemax",
)
FEATURE_DRIFT_SCORE = Gauge(
    "tabserve_feature_drift_score",
    "The drift test's statistic per feature over the recent window (p-value or distance)",
    ["model", "feature"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFTED = Gauge(
    "tabserve_feature_drifted",
    "1 when the feature drifted in the recent window",
    ["model", "feature"],
    multiprocess_mode="mostrecent",
)
DATASET_DRIFT = Gauge(
    "tabserve_dataset_drift",
    "1 when the recent window shows dataset drift (half the features drifted)",
    ["model"],
    multiprocess_mode="mostrecent",
)
MODEL_QUALITY = Gauge(
    "tabserve_model_quality",
    "The model's score over the recent window's predictions that have ground truth "
    "(metric: accuracy, f1, roc_auc, rmse, mae)",
    ["model", "metric"],
    multiprocess_mode="mostrecent",
)
DRIFT_REFRESHES = Counter(
    "tabserve_drift_refreshes_total",
    "Drift refreshes by outcome: ok, no_data (no predictions in the window), failed",
    ["outcome"],
)
DRIFT_REFRESH_SECONDS = Gauge(
    "tabserve_drift_refresh_duration_seconds",
    "How long the last drift refresh took (the `tabserve drift` child process)",
    multiprocess_mode="mostrecent",
)
DRIFT_REFRESHED_AT = Gauge(
    "tabserve_drift_last_refresh_timestamp_seconds",
    "When the drift gauges were last set from a good refresh (Unix time)",
    multiprocess_mode="mostrecent",
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
