"""Request metrics: a count per (route, status), latency per route, the in-flight gauge.

The app (app.py) observes every request here, including the 413/415/503 answered before a
route runs. Routes are labelled by their path template (``/v2/models/{name}/infer``), never by
the raw path: a client must not be able to grow the label set. Each observation carries the
model and version serving when the request ended (read from the ServerState), so a hot reload
starts new series. Label children are cached: ``.labels()`` costs a lock and a dict build.
"""

from __future__ import annotations

from typing import Any

from tabserve.serving import metrics
from tabserve.serving.state import ServerState

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._counters: dict[tuple[str, int, str, str], Any] = {}
        self._latency: dict[tuple[str, str, str], Any] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        plane = self.state.plane
        model, version = (plane.model_name, plane.model_version) if plane else ("", "")
        key = (route, status, model, version)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.REQUESTS.labels(
                route, str(status), model, version
            )
        counter.inc()
        where = (route, model, version)
        hist = self._latency.get(where)
        if hist is None:
            hist = self._latency[where] = metrics.LATENCY.labels(*where)
        hist.observe(seconds)
