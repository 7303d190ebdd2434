"""Request metrics: one count per (route, status) and a latency histogram per route.

Outermost middleware, so it sees every answer, including the 413/415 the body middleware sends
before any route runs. Routes are labelled by their path template (``/v2/models/{name}/infer``),
never by the raw path: a client must not be able to grow the label set. Label children are
cached, since ``.labels()`` costs a lock and a dict build per call.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabserve.serving import metrics


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, int], Any] = {}
        self._latency: dict[str, Any] = {}

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

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self._observe(path, status, time.perf_counter() - started)

    def _observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.REQUESTS.labels(route, str(status))
        counter.inc()
        hist = self._latency.get(route)
        if hist is None:
            hist = self._latency[route] = metrics.LATENCY.labels(route)
        hist.observe(seconds)
