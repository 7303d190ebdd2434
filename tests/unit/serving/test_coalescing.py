"""CoalescingTransport: what one loop turn writes leaves as one write, in order, and nothing
written before close is lost."""

from __future__ import annotations

import asyncio

from tabserve.serving.coalescing import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def write_eof(self) -> None:
        self.events.append("eof")

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def run(body) -> RecordingTransport:
    async def main() -> RecordingTransport:
        real = RecordingTransport()
        await body(CoalescingTransport(real, asyncio.get_running_loop()), real)  # type: ignore[arg-type]
        return real

    return asyncio.run(main())


def test_headers_and_body_of_one_turn_are_one_write_next_turn() -> None:
    async def body(t: CoalescingTransport, real: RecordingTransport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")  # an empty body message adds nothing
        t.write(bytearray(b"{}"))
        assert real.writes == []  # held until the loop comes round
        await asyncio.sleep(0)
        t.write(b"next")
        await asyncio.sleep(0)

    real = run(body)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"next"]


def test_close_and_eof_send_what_is_held_first() -> None:
    async def body(t: CoalescingTransport, real: RecordingTransport) -> None:
        t.write(b"a")
        t.write_eof()
        t.write(b"b")
        t.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left

    real = run(body)
    assert real.events == ["write", "eof", "write", "close"]
    assert real.writes == [b"a", b"b"]


def test_abort_and_a_closed_peer_drop_what_is_held() -> None:
    async def body(t: CoalescingTransport, real: RecordingTransport) -> None:
        t.write(b"lost")
        t.abort()
        await asyncio.sleep(0)
        real.closing = False
        t.write(b"also lost")
        real.closing = True  # the peer went away before the turn ended
        await asyncio.sleep(0)

    real = run(body)
    assert real.writes == []


def test_everything_else_is_the_real_transports() -> None:
    async def body(t: CoalescingTransport, real: RecordingTransport) -> None:
        assert t.get_extra_info("peername") == "info:peername"
        assert t.is_closing() is False

    run(body)
