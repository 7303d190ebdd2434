"""What both generators share: the plan of a run and one checked request on a connection slot."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tabserve.loadtest.answers import Checker
from tabserve.loadtest.client import Connection, ResponseError, Target, connect, watchdog
from tabserve.loadtest.payloads import Payloads

# Error kinds for failures below HTTP.
TIMEOUT = "timeout"
DISCONNECT = "disconnect"
CONNECT = "connect"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Plan:
    """Everything a level needs, encoded before the clock starts."""

    target: Target
    requests: list[bytes]
    check: Checker
    batch_size: int
    timeout: float

    @classmethod
    def build(cls, target: Target, payloads: Payloads, check: Checker, timeout: float) -> Plan:
        wire = [target.post(payloads.path, body) for body in payloads.bodies]
        return cls(target, wire, check, payloads.batch_size, timeout)


@dataclass
class Tally:
    """Outcomes as they arrive; ``done`` feeds the progress bar."""

    latencies_ok: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    done: int = 0

    def record(self, latency: float, kind: str | None) -> None:
        self.done += 1
        if kind is None:
            self.latencies_ok.append(latency)
        else:
            self.errors[kind] += 1


class Pool:
    """Connections opened up front, re-opened after a failure, watched for timeouts."""

    def __init__(self, plan: Plan, size: int) -> None:
        self.plan = plan
        self.size = size
        self.connections: list[Connection] = []
        self._stop = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Pool:
        target = self.plan.target
        self.connections = list(await asyncio.gather(*(connect(target) for _ in range(self.size))))
        self._watchdog = asyncio.create_task(
            watchdog(self.connections, self.plan.timeout, self._stop)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._watchdog is not None:
            await self._watchdog
        for conn in self.connections:
            conn.close()

    async def send(self, slot: int, data: bytes) -> tuple[float, str | None]:
        """Send on connection ``slot``: (latency in seconds, error kind or None)."""
        conn = self.connections[slot]
        if conn.closed:
            try:
                conn = self.connections[slot] = await connect(self.plan.target, self.plan.timeout)
            except ConnectionError:
                return 0.0, CONNECT
        start = time.perf_counter()
        try:
            status, body = await conn.request(data)
        except TimeoutError:
            return time.perf_counter() - start, TIMEOUT
        except (ResponseError, ConnectionError):
            return time.perf_counter() - start, DISCONNECT
        latency = time.perf_counter() - start
        if status != 200:
            return latency, f"status_{status}"
        return latency, self.plan.check(body)


async def tick(tally: Tally, progress: Progress | None, stop: asyncio.Event) -> None:
    """Report progress ten times a second instead of once per request (cheaper, same view)."""
    if progress is None:
        return
    while not stop.is_set():
        progress(tally.done)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    progress(tally.done)
