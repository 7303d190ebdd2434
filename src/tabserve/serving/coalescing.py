"""One send per response: uvicorn's httptools protocol over a transport that coalesces writes.

ASGI sends a response as two messages (``http.response.start``, then ``http.response.body``) and
uvicorn writes each to the socket as it comes: two ``send`` syscalls, and on loopback two wakeups
of the client, for every one-record answer. Under load the first of those writes was the largest
single cost in a py-spy profile of the server (docs/adr/0008-pure-asgi-app.md). The transport
here keeps what is written during one turn of the event loop and hands it to the real transport
as one buffer at the start of the next turn (``loop.call_soon``): headers and body leave together,
and no write waits longer than the loop takes to come round.

Everything else about the connection is the real transport's (flow control calls the protocol
from the real transport, ``get_extra_info`` is forwarded). ``close`` and ``write_eof`` send what
is held first; ``abort`` drops it, as aborting means; a connection closed by the peer before the
turn ends drops it too (the real transport would discard those bytes anyway, with a warning).

Selected by ``run_uvicorn`` as uvicorn's ``http`` protocol class (an import string, so
uvicorn's worker processes can import it).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A write-through proxy for an asyncio transport that sends once per loop turn."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        held = self._held
        if not held:
            return
        self._held = []
        if self._transport.is_closing():
            return
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(cast(asyncio.Transport, coalescing))
