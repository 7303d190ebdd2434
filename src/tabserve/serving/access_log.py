"""The access log (``--access-log``): one line per request, on the logger ``tabserve.access``.

    … tabserve.access INFO [3f…-1a] POST /predict 200 0.84 ms model=titanic version=1 client=…

JSON lines (``--log-format json``) carry the same as fields: method, route, status,
duration_ms, request_id, client_request_id (when the client sent a usable X-Request-ID),
model, version, client. What a line never holds: a body, a query string, a header's value
other than X-Request-ID (so never ``Authorization``), a raw path — the route's template
(``/v2/models/{name}/infer``; ``unmatched`` for a 404), as in the metrics' labels, so a client
cannot write what it likes into the log.

Off by default: it is installed by wrapping the app's front (and each gRPC method) when the
app is built, so a server without it runs no line of it. gRPC lines have the method
``GRPC``, the full method name as route and the gRPC status code's name as status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tabserve.predlog.entries import CLIENT_ID_MAX
from tabserve.serving.http import NoRoute, Router
from tabserve.serving.request_metrics import UNMATCHED
from tabserve.serving.state import ServerState

log = logging.getLogger("tabserve.access")


def _client_id(scope: dict[str, Any]) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if len(text) <= CLIENT_ID_MAX and text.isascii() and text.isprintable():
                return text
    return None


class AccessLog:
    def __init__(self, state: ServerState, router: Router) -> None:
        self.state = state
        self.router = router

    def _route(self, method: str, path: str) -> str:
        try:
            return self.router.match(method, path)[0].path
        except NoRoute:
            return UNMATCHED

    def write(
        self,
        method: str,
        route: str,
        status: int | str,
        seconds: float,
        client: str,
        client_id: str | None = None,
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        plane = self.state.plane
        model, version = (plane.model_name, plane.model_version) if plane else ("", "")
        ms = seconds * 1000.0
        fields: dict[str, Any] = {
            "method": method, "route": route, "status": status, "duration_ms": round(ms, 3),
            "model": model, "version": version, "client": client,
        }  # fmt: skip
        tail = f" client_request_id={client_id}" if client_id else ""
        if client_id:
            fields["client_request_id"] = client_id
        # The request id leads the line (logs.py stamps it, as on every line of a request).
        # A record made here skips logging's caller lookup (a stack walk per line).
        record = log.makeRecord(
            log.name, logging.INFO, "", 0,
            "%s %s %s %.2f ms model=%s version=%s client=%s%s",
            (method, route, status, ms, model, version, client, tail),
            None, extra={"fields": fields},
        )  # fmt: skip
        log.handle(record)

    def wrap_http(self, http: Callable[..., Awaitable[None]]) -> Any:
        """The app's front, writing one line after each answer is sent."""

        async def logged(scope: dict[str, Any], receive: Any, send: Any) -> None:
            started = time.perf_counter()
            answer = [500]

            async def send_status(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    answer[0] = message["status"]
                await send(message)

            try:
                await http(scope, receive, send_status)
            finally:
                client = scope.get("client")
                self.write(
                    scope["method"],
                    self._route(scope["method"], scope["path"]),
                    answer[0],
                    time.perf_counter() - started,
                    f"{client[0]}:{client[1]}" if client else "",
                    _client_id(scope),
                )

        return logged

    @classmethod
    def grpc(cls, state: ServerState, name: str, call: Any) -> Any:
        """One gRPC method, writing one line after each call."""
        write = cls(state, Router([])).write

        async def logged(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return await call(request, context)
            except BaseException:
                found = context.code()
                code = found.name if found is not None else "UNKNOWN"
                raise
            finally:
                write("GRPC", name, code, time.perf_counter() - started, context.peer())

        return logged
