"""The few HTTP types routes need: Call (a request), Reply (an answer), Route and Router.

tabserve's routes take a raw body and answer bytes, so they need none of a web framework's
request parsing, dependency injection or response classes (docs/adr/0008). A ``Call`` reads
what a route asks for and nothing else: a header by name, a path parameter, the body (through
the limits of body.py). A ``Router`` matches exact paths with one dict lookup and path
templates (``/v2/models/{name}/infer``) with one compiled pattern each; the template is the
route's metrics label.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tabserve.predlog.entries import CLIENT_ID_MAX
from tabserve.serving.errors import BadRequest
from tabserve.serving.request_ids import request_ids

JSON = b"application/json"

Handler = Callable[["Call"], Awaitable["Reply"]]


@dataclass(slots=True)
class Reply:
    body: bytes
    status: int = 200
    media_type: bytes = JSON
    headers: Sequence[tuple[bytes, bytes]] = ()


class Call:
    """One request as a route sees it. ``read_body`` is set by the app (limits, decoding)."""

    __slots__ = ("_headers", "_request_id", "method", "path", "path_params", "read_body", "scope")

    def __init__(
        self,
        scope: dict[str, Any],
        read_body: Callable[[], Awaitable[bytes]],
        params: dict,
        request_id: str | None = None,
    ) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.path_params: dict[str, str] = params
        self.read_body = read_body
        self._headers: dict[bytes, bytes] | None = None
        self._request_id = request_id  # the app's front draws one per request

    def header(self, name: bytes, default: str = "") -> str:
        """A request header by lower-case name (the last one, if sent twice)."""
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        value = self._headers.get(name)
        return default if value is None else value.decode("latin-1")

    async def body(self) -> bytes:
        return await self.read_body()

    def client_request_id(self) -> str | None:
        """The client's X-Request-ID (kept beside the server's own key in the prediction log);
        400 when it could not be kept as sent."""
        value = self.header(b"x-request-id")
        if not value:
            return None
        if len(value) > CLIENT_ID_MAX or not (value.isascii() and value.isprintable()):
            raise BadRequest(
                f"X-Request-ID must be printable ASCII of at most {CLIENT_ID_MAX} characters"
            )
        return value

    @property
    def request_id(self) -> str:
        """The server's id for this request: unique, the prediction log's key."""
        if self._request_id is None:
            self._request_id = request_ids.next()
        return self._request_id

    def id_header(self) -> tuple[bytes, bytes]:
        """``X-Request-ID`` for the answer: the client's own when it sent one, else ours."""
        return (b"x-request-id", (self.client_request_id() or self.request_id).encode())


# What a route is, for the app's checks: "model" routes run the model (admission control and
# the API key apply), "probe" routes answer health checks (always open), "metrics" is
# Prometheus' (a key unless metrics are public), "private" is everything else (a key).
Access = Literal["model", "probe", "metrics", "private"]


@dataclass
class Route:
    path: str  # a template: /v2/models/{name}/infer
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    access: Access = "private"
    in_schema: bool = True  # False for pages the OpenAPI document need not describe
    pattern: re.Pattern[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if "{" in self.path:
            parts = re.split(r"(\{\w+\})", self.path)
            regex = "".join(
                f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
                for part in parts
            )
            self.pattern = re.compile(f"^{regex}$")


class NoRoute(Exception):
    """No route matches the path (404), or none for this method (405, ``allowed`` set)."""

    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        self.allowed = allowed


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._exact: dict[str, list[Route]] = {}
        self._templated: list[Route] = []
        for route in self.routes:
            if route.pattern is None:
                self._exact.setdefault(route.path, []).append(route)
            else:
                self._templated.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        candidates = self._exact.get(path)
        params: dict[str, str] = {}
        if candidates is None:
            for route in self._templated:
                assert route.pattern is not None
                found = route.pattern.match(path)
                if found:
                    candidates = [r for r in self._templated if r.path == route.path]
                    params = found.groupdict()
                    break
        if not candidates:
            raise NoRoute()
        for route in candidates:
            if method in route.methods or (method == "HEAD" and "GET" in route.methods):
                return route, params
        raise NoRoute(tuple(m for r in candidates for m in r.methods))
