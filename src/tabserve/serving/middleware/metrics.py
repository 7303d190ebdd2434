"""Request metrics: a count per (route, status), latency per route, the in-flight gauge.

Outermost middleware, so it sees every answer, including the 413/415 the body middleware sends
before any route runs. Routes are labelled by their path template (``/v2/models/{name}/infer``),
never by the raw path: a client must not be able to grow the label set. Each observation carries
the model and version serving when the request ended (read from the ServerState), so a hot
reload starts new series. Label children are cached: ``.labels()`` costs a lock and a dict build.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabserve.serving import metrics
from tabserve.serving.state import ServerState


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._counters: dict[tuple[str, int, str, str], Any] = {}
        self._latency: dict[tuple[str, str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler ends as a 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.IN_FLIGHT.dec()
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self._observe(path, status, time.perf_counter() - started)

    def _observe(self, route: str, status: int, seconds: float) -> None:
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
