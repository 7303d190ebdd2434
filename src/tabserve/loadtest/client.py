"""A lean HTTP/1.1 keep-alive client over asyncio, built for generating load.

httpx spends tens of microseconds per request in Python (request objects, header models,
connection-pool bookkeeping); on a 2-core machine that is the generator's ceiling, not the
server's. This client sends pre-encoded request bytes on a persistent connection and parses only
the status line, Content-Length (or chunked framing) and Connection: close — one future per
request, woken from ``data_received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

from tabserve.errors import UserError


class ResponseError(ConnectionError):
    """The server closed the connection or sent something that is not HTTP/1.1."""


@dataclass(frozen=True)
class Target:
    """Where requests go: host, port, TLS and the URL's base path."""

    host: str
    port: int
    tls: bool
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"{url!r} is not an http(s) URL")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        return cls(parts.hostname, port, tls, parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{self.base_path}"

    def post(self, path: str, body: bytes) -> bytes:
        """The full bytes of a keep-alive POST, encoded once and sent many times."""
        head = (
            f"POST {self.base_path}{path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body


class Listener(Protocol):
    """Receives a connection's outcomes directly from the event loop's callbacks.

    The closed loop uses this instead of awaiting a future per request: no Future, no task
    wake-up, one event-loop pass per request — about half the generator's Python cost.
    """

    def on_response(self, conn: Connection, status: int, body: bytes) -> None: ...

    def on_failure(self, conn: Connection, exc: Exception) -> None: ...


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time.

    Two ways to use it: ``await request(data)`` (a future per request), or ``send(data)`` with
    a ``listener`` that is called back when the answer (or a failure) arrives.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.listener: Listener | None = None
        self._in_flight = False
        # (status, body start, body length, closing) of a head whose body is still arriving.
        self._head: tuple[int, int, int, bool] | None = None
        self.closed = False
        # perf_counter() when the request in flight was sent; the watchdog reads it.
        self.sent_at = 0.0
        # Which slot of a pool this connection fills (set by the closed loop).
        self.slot = 0

    # ---- asyncio.Protocol ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._in_flight:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ResponseError("connection closed by the server"))

    # ---- client side ----
    def send(self, data: bytes) -> None:
        """Write one request; the answer goes to ``listener`` (callback mode)."""
        if self.closed or self.transport is None:
            raise ResponseError("connection is closed")
        self._in_flight = True
        self.sent_at = time.perf_counter()
        self.transport.write(data)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send ``data`` and wait for the whole response: (status, body)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            self.send(data)
        except ResponseError:
            self._waiter = None
            raise
        return await waiter

    def abort(self, exc: Exception) -> None:
        """Fail the request in flight and drop the connection (used on timeouts)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._fail(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def busy(self) -> bool:
        return self._in_flight

    def _fail(self, exc: Exception) -> None:
        if not self._in_flight:
            return
        self._in_flight = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            if not waiter.done():
                waiter.set_exception(exc)
        elif self.listener is not None:
            self.listener.on_failure(self, exc)

    def _deliver(self, status: int, body: bytes) -> None:
        self._in_flight = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            if not waiter.done():
                waiter.set_result((status, body))
        elif self.listener is not None:
            self.listener.on_response(self, status, body)

    def _parse(self) -> None:
        # Servers often write the head and the body separately: remember a parsed head with a
        # Content-Length and only wait for the body's bytes on the next call.
        buf = self._buffer
        if self._head is not None:
            status, start, length, closing = self._head
            if len(buf) < start + length:
                return
            self._head = None
            self._complete(status, bytes(buf[start : start + length]), start + length, closing)
            return
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        if not head.startswith(b"http/1."):
            self.abort(ResponseError("not an HTTP/1.x response"))
            return
        status = int(head[9:12])
        start = end + 4
        closing = b"\r\nconnection: close" in head
        length_at = head.find(b"\r\ncontent-length:")
        if length_at >= 0:
            stop = head.find(b"\r\n", length_at + 2)
            length = int(head[length_at + 17 : stop if stop >= 0 else len(head)])
            if len(buf) < start + length:
                self._head = (status, start, length, closing)
                return
            self._complete(status, bytes(buf[start : start + length]), start + length, closing)
        elif b"\r\ntransfer-encoding: chunked" in head:
            parsed = _dechunk(buf, start)
            if parsed is None:
                return
            self._complete(status, *parsed, closing)
        else:
            # Neither length nor chunks: the body ends when the server closes. Not worth
            # supporting for a load tester; say so instead of hanging.
            self.abort(ResponseError("response without Content-Length"))

    def _complete(self, status: int, body: bytes, consumed: int, closing: bool) -> None:
        del self._buffer[:consumed]
        if closing:
            # Closed before delivering, so whoever sends next sees it and reconnects.
            self.close()
        self._deliver(status, body)


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """A chunked body starting at ``start``: (body, bytes consumed) or None if incomplete."""
    body = bytearray()
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        pos += size + 2


async def connect(target: Target, timeout: float = 5.0) -> Connection:
    """Open one connection; a refused or unreachable server becomes a clear error."""
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if target.tls else None
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(Connection, target.host, target.port, ssl=context),
            timeout,
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise ConnectionError(f"cannot connect to {target.url}: {exc}") from exc
    return protocol


async def watchdog(connections: list[Connection], timeout: float, stop: asyncio.Event) -> None:
    """Abort requests older than ``timeout``: one timer for all, not one per request."""
    period = min(0.25, timeout / 4)
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
        now = time.perf_counter()
        for conn in connections:
            if conn.busy and now - conn.sent_at > timeout:
                conn.abort(TimeoutError(f"no answer in {timeout:g}s"))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it roughly doubles what one core can generate), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
