"""The request body limit, applied to the bytes a route will parse: after decompression.

Every route reads its body through this middleware, so Content-Encoding is handled once for
every protocol: ``gzip`` and ``deflate`` bodies are inflated as they stream in, and
``--max-body-bytes`` bounds the *inflated* size. A few hundred KiB of gzip can inflate to
gigabytes; a server that inflated first and measured after would spend that memory before
answering. Here at most ``limit + 1`` inflated bytes exist before the 413.

- a declared ``Content-Length`` over the limit: 413 before reading anything;
- more bytes than the limit, sent or inflated: 413 (``PayloadTooLarge``, raised into the
  route's ``receive`` and rendered by the one error handler);
- a body that is not valid gzip/deflate data: 400; any other Content-Encoding: 415.

Downstream sees an identity body: the Content-Encoding and Content-Length headers are removed
from the scope once the body is decoded.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabserve.serving.errors import (
    BadRequest,
    PayloadTooLarge,
    ServingError,
    UnsupportedMediaType,
    asgi_response,
)

# zlib window bits: 16 + 15 reads a gzip member; 15 reads a zlib (RFC 1950, HTTP "deflate") one.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding, declared = _body_headers(scope)
        try:
            if declared is not None and declared > self.limit:
                raise PayloadTooLarge(self._over())
            if encoding in ("", "identity"):
                body_receive = self._counting(receive)
            elif encoding in _WBITS:
                body_receive = self._inflating(receive, encoding)
                # In place: the router records the matched route in this same dict, and the
                # metrics middleware outside reads it from there.
                scope["headers"] = [
                    (k, v)
                    for k, v in scope["headers"]
                    if k not in (b"content-encoding", b"content-length")
                ]
            else:
                raise UnsupportedMediaType(
                    f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none"
                )
        except ServingError as exc:
            await asgi_response(send, exc, close=True)
            return
        started = False

        async def watch_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body_receive, watch_send)
        except ServingError as exc:  # raised while reading a body no route handled
            if started:
                raise
            await asgi_response(send, exc, close=True)

    def _over(self) -> str:
        return f"request body over the {self.limit}-byte limit"

    def _counting(self, receive: Receive) -> Receive:
        limit, received = self.limit, 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(self._over())
            return message

        return counted

    def _inflating(self, receive: Receive, encoding: str) -> Receive:
        limit = self.limit
        inflater = zlib.decompressobj(_WBITS[encoding])
        state = {"raw": 0, "out": 0}

        async def inflated() -> Message:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            state["raw"] += len(chunk)
            if state["raw"] > limit:
                raise PayloadTooLarge(self._over())
            try:
                # max_length caps what this call may produce: one byte past the limit is proof
                # enough, and nothing more is ever inflated.
                data = inflater.decompress(chunk, limit - state["out"] + 1)
                more = message.get("more_body", False)
                if not more and not inflater.unconsumed_tail:
                    data += inflater.flush()
            except zlib.error:
                raise BadRequest(f"request body is not valid {encoding} data") from None
            state["out"] += len(data)
            if state["out"] > limit or inflater.unconsumed_tail:
                raise PayloadTooLarge(f"request body over the {limit}-byte limit once decompressed")
            if not more and not inflater.eof:
                raise BadRequest(f"request body is not valid {encoding} data (truncated)")
            if inflater.unused_data:
                raise BadRequest(f"request body has data after its {encoding} stream")
            return {"type": "http.request", "body": data, "more_body": more}

        return inflated


def _body_headers(scope: Scope) -> tuple[str, int | None]:
    encoding, length = "", None
    for name, value in scope.get("headers", ()):
        if name == b"content-encoding":
            encoding = value.decode("latin-1").strip().lower()
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return encoding, length
