"""A JSON snapshot of the server's own Prometheus metrics, for the model page (``GET /stats``).

The page shows live request rate and latency without a Prometheus server: it polls this
snapshot and differentiates two of them itself (rate = Δcount / Δtime, latency quantiles from
the Δ of the histogram buckets, as ``histogram_quantile`` does). The numbers are cumulative and
come from exactly what ``/metrics`` exposes — the same registry, summed over every worker in
multiprocess mode — so the page and a Prometheus dashboard cannot disagree.

The snapshot sums over model versions (a hot reload does not reset the page's rates); the
``predictions``, ``validation_errors`` and ``ood_warnings`` breakdowns are the served version's.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tabserve.serving import metrics

# The routes that run the model, in every protocol: the page's rate and latency are theirs.
PREDICTION_ROUTES = (
    "/predict",
    "/invocations",
    "/v1/models/{name}:predict",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)
_LOG = "tabserve_prediction_log_"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def snapshot(model: str, version: str, *, log_enabled: bool = True) -> dict[str, Any]:
    """Cumulative counters and histograms now; ``model``/``version``: the one being served.

    Called from a request, which the in-flight gauge counts: that one is left out.
    ``log_enabled`` False (``--log-db off``) leaves ``prediction_log`` empty, since its gauges
    exist, at 0, whether or not a log runs.
    """
    text, _ = metrics.render()
    requests: dict[tuple[str, str], float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    predictions: dict[str, float] = defaultdict(float)
    errors: dict[tuple[str, str], float] = defaultdict(float)
    ood: dict[str, float] = defaultdict(float)
    shed: dict[str, float] = defaultdict(float)
    log: dict[str, float | None] = {}
    in_flight = 0.0
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            labels = s.labels
            served = labels.get("model") == model and labels.get("version") == version
            name = s.name
            if name == "tabserve_requests_total":
                requests[(labels["route"], labels["status"])] += s.value
            elif name == "tabserve_request_duration_seconds_bucket":
                buckets[labels["route"]][float(labels["le"])] += s.value
            elif name == "tabserve_request_duration_seconds_sum":
                sums[labels["route"]] += s.value
            elif name == "tabserve_request_duration_seconds_count":
                counts[labels["route"]] += s.value
            elif name == "tabserve_in_flight_requests":
                in_flight += s.value
            elif name == "tabserve_predictions_total" and served:
                predictions[labels["label"]] += s.value
            elif name == "tabserve_validation_errors_total" and served:
                errors[(labels["field"], labels["reason"])] += s.value
            elif name == "tabserve_ood_warnings_total" and served:
                ood[labels["field"]] += s.value
            elif name == "tabserve_requests_shed_total":
                shed[labels["reason"]] += s.value
            elif name.startswith(_LOG) and log_enabled and not name.endswith("_created"):
                log[name.removeprefix(_LOG)] = _number(s.value)
    latency = {
        route: {
            "count": counts[route],
            "sum": sums[route],
            # [upper bound in seconds (null for +Inf), cumulative count], ascending
            "buckets": [[None if math.isinf(le) else le, n] for le, n in sorted(by_le.items())],
        }
        for route, by_le in buckets.items()
    }
    return {
        "model": model,
        "version": version,
        "time": time.time(),
        "prediction_routes": list(PREDICTION_ROUTES),
        "in_flight": max(0.0, in_flight - 1),
        "requests": [
            {"route": route, "status": status, "count": n}
            for (route, status), n in sorted(requests.items())
        ],
        "latency": latency,
        "predictions": dict(sorted(predictions.items())),
        "validation_errors": [
            {"field": field, "reason": reason, "count": n}
            for (field, reason), n in sorted(errors.items(), key=lambda kv: -kv[1])
        ],
        "ood_warnings": dict(sorted(ood.items(), key=lambda kv: -kv[1])),
        "shed": dict(shed),
        "prediction_log": log,
    }
