"""Reading a request body: the size limit applied to the bytes a route will parse.

Every route reads its body through ``reader``, so Content-Encoding is handled once for every
protocol: ``gzip`` and ``deflate`` bodies are inflated as they stream in, and
``--max-body-bytes`` bounds the *inflated* size. A few hundred KiB of gzip can inflate to
gigabytes; a server that inflated first and measured after would spend that memory before
answering. Here at most ``limit + 1`` inflated bytes ever exist.

- a declared ``Content-Length`` over the limit: 413 before reading anything;
- more bytes than the limit, sent or inflated: 413 (``PayloadTooLarge``);
- a body that is not valid gzip/deflate data: 400; any other Content-Encoding: 415.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from tabserve.serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# zlib window bits: 16 + 15 reads a gzip member; 15 reads a zlib (RFC 1950, HTTP "deflate") one.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
Receive = Callable[[], Awaitable[dict[str, Any]]]


def _body_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, int | None]:
    encoding, length = "", None
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"content-encoding":
            encoding = value.decode("latin-1").strip().lower()
    return encoding, length


def reader(scope: dict[str, Any], receive: Receive, limit: int) -> Callable[[], Awaitable[bytes]]:
    """A coroutine function returning the whole (decoded) body, read at most once."""
    cache: list[bytes] = []

    async def read() -> bytes:
        if cache:
            return cache[0]
        encoding, declared = _body_headers(scope["headers"])
        if declared is not None and declared > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        if encoding in ("", "identity"):
            body = await _plain(receive, limit)
        elif encoding in _WBITS:
            body = await _inflated(receive, limit, encoding)
        else:
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none"
            )
        cache.append(body)
        return body

    return read


async def _plain(receive: Receive, limit: int) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)


async def _inflated(receive: Receive, limit: int, encoding: str) -> bytes:
    inflater = zlib.decompressobj(_WBITS[encoding])
    parts: list[bytes] = []
    raw = out = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        more = bool(message.get("more_body", False))
        raw += len(chunk)
        if raw > limit:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit")
        try:
            # max_length caps what this call may produce: one byte past the limit is proof
            # enough, and nothing more is ever inflated.
            data = inflater.decompress(chunk, limit - out + 1)
            if not more and not inflater.unconsumed_tail:
                data += inflater.flush()
        except zlib.error:
            raise BadRequest(f"request body is not valid {encoding} data") from None
        out += len(data)
        if out > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"request body over the {limit}-byte limit once decompressed")
        parts.append(data)
    if not inflater.eof:
        raise BadRequest(f"request body is not valid {encoding} data (truncated)")
    if inflater.unused_data:
        raise BadRequest(f"request body has data after its {encoding} stream")
    return b"".join(parts)
