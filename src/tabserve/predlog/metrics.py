"""Prometheus metrics of the prediction log, in prometheus_client's default registry.

The server's /metrics exposes the default registry, so these appear there with no wiring.
Defined once per process at import; several PredictionLog instances (tests) add to the same ones.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ROWS_WRITTEN = Counter(
    "tabserve_prediction_log_rows_written_total",
    "Prediction-log rows committed to the database (live and replayed from the spool).",
)
ROWS_SPOOLED = Counter(
    "tabserve_prediction_log_rows_spooled_total",
    "Rows written to the local spool because the database was unreachable or too slow.",
)
ROWS_REPLAYED = Counter(
    "tabserve_prediction_log_rows_replayed_total",
    "Spooled rows replayed into the database once it was back.",
)
ROWS_DROPPED = Counter(
    "tabserve_prediction_log_dropped_total",
    "Rows lost because both the in-memory queue and the local spool were full.",
)
ROWS_QUARANTINED = Counter(
    "tabserve_prediction_log_rows_quarantined_total",
    "Rows the database refused for their content, set aside in a quarantine file, never retried.",
)
FEEDBACK_WRITTEN = Counter(
    "tabserve_feedback_rows_written_total",
    "Ground-truth rows (POST /feedback) committed to the feedback table, live and replayed; "
    "they count in the prediction log's written, spooled and dropped rows too.",
)
QUEUE_ROWS = Gauge(
    "tabserve_prediction_log_queue_rows",
    "Rows waiting in the in-memory queue for the background writer.",
    # Each worker has its own queue: the service's backlog is the sum over live workers.
    multiprocess_mode="livesum",
)
SPOOL_BYTES = Gauge(
    "tabserve_prediction_log_spool_bytes",
    "Bytes of rows waiting in the local spool for the database to come back.",
    # Each worker counts only its own spool segments, so the sum is the directory's total.
    multiprocess_mode="livesum",
)
DB_UP = Gauge(
    "tabserve_prediction_log_db_up",
    "1 while the prediction-log database accepts writes, 0 while rows go to the spool.",
    # 0 if any live worker cannot write: the alert must not wait for every worker to fail.
    multiprocess_mode="livemin",
)
