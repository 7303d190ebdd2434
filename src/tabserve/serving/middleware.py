"""One pure-ASGI middleware for every request: body-size limit, request count and latency.

Pure ASGI (not BaseHTTPMiddleware) because it runs on every request and the latter costs a task
and a memory stream per request.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabserve.serving import metrics


class BodyTooLarge(Exception):
    pass


class ServingMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._children: dict[tuple[str, int], Any] = {}
        self._latency: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        limit = self.max_body_bytes
        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                status = 413
                await _send_error(send, 413, f"request body over the {limit}-byte limit")
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge:
            status = 413
            if not response_started:
                await _send_error(send, 413, f"request body over the {limit}-byte limit")
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None:  # plain Starlette routes (/docs, /openapi.json) set no "route"
                path = scope["path"] if "endpoint" in scope else "unmatched"
            self._observe(path, status, time.perf_counter() - started)

    def _observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        counter = self._children.get(key)
        if counter is None:
            counter = self._children[key] = metrics.REQUESTS.labels(route, str(status))
        counter.inc()
        hist = self._latency.get(route)
        if hist is None:
            hist = self._latency[route] = metrics.LATENCY.labels(route)
        hist.observe(seconds)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
