"""Closed loop: C connections, each sending its next request as soon as the last one answered.

This is the reference projects' sweep (N requests at concurrency C) done over keep-alive
connections opened before the clock starts, with every answer checked.

The loop runs in the connections' own callbacks (see ``client.Listener``): the answer to request
i arrives in ``data_received``, is timed and checked, and request i+1 is written right there.
Against a constant-answer server this halves the generator's CPU per request compared with a
coroutine per connection awaiting a future per request.
"""

from __future__ import annotations

import asyncio
import math
import time

from tabserve.loadtest.client import Connection, connect
from tabserve.loadtest.engine import CONNECT, DISCONNECT, TIMEOUT, Plan, Pool, Progress, Tally, tick
from tabserve.loadtest.stats import LevelResult, summarize


class _Driver:
    """Hands out request indices to connections until ``count`` are sent or time is up."""

    def __init__(self, pool: Pool, count: int, tally: Tally, deadline: float) -> None:
        self.pool = pool
        self.plan = pool.plan
        self.count = count
        self.tally = tally
        self.deadline = deadline
        self.sent = 0
        self.active = 0
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()

    async def run(self) -> None:
        self.active = self.pool.size
        for slot, conn in enumerate(self.pool.connections):
            conn.slot = slot
            conn.listener = self
            self._next(slot)
        await self.finished

    def _next(self, slot: int) -> None:
        if self.sent >= self.count or time.perf_counter() >= self.deadline:
            self.active -= 1
            if self.active == 0 and not self.finished.done():
                self.finished.set_result(None)
            return
        conn = self.pool.connections[slot]
        if conn.closed:
            self.loop.create_task(self._reopen(slot))
            return
        index = self.sent
        self.sent += 1
        wire = self.plan.requests
        conn.send(wire[index % len(wire)])

    async def _reopen(self, slot: int) -> None:
        try:
            conn = await connect(self.plan.target, self.plan.timeout)
        except ConnectionError:
            # A refused connection uses up a request: the run ends even if the server is gone.
            self.sent += 1
            self.tally.record(0.0, CONNECT)
        else:
            conn.slot, conn.listener = slot, self
            self.pool.connections[slot] = conn
        self._next(slot)

    # ---- client.Listener ----
    def on_response(self, conn: Connection, status: int, body: bytes) -> None:
        latency = time.perf_counter() - conn.sent_at
        kind = self.plan.check(body) if status == 200 else f"status_{status}"
        self.tally.record(latency, kind)
        self._next(conn.slot)

    def on_failure(self, conn: Connection, exc: Exception) -> None:
        latency = time.perf_counter() - conn.sent_at
        self.tally.record(latency, TIMEOUT if isinstance(exc, TimeoutError) else DISCONNECT)
        # Not from inside the transport's own callback: reconnecting happens on the next pass.
        self.loop.call_soon(self._next, conn.slot)


async def run_level(
    plan: Plan,
    concurrency: int,
    requests: int,
    *,
    warmup: int = 0,
    progress: Progress | None = None,
    duration: float | None = None,
) -> LevelResult:
    """One level of the sweep: ``warmup`` unrecorded requests, then ``requests`` timed ones.

    With ``duration`` (seconds) the level also stops starting requests once that time is up.
    """
    async with Pool(plan, concurrency) as pool:
        if warmup:
            await _Driver(pool, warmup, Tally(), math.inf).run()
        tally = Tally()
        stop = asyncio.Event()
        ticker = asyncio.create_task(tick(tally, progress, stop))
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            deadline = start + duration if duration else math.inf
            await _Driver(pool, requests, tally, deadline).run()
        finally:
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            stop.set()
            await ticker
    result = summarize(
        mode="closed",
        concurrency=concurrency,
        latencies_ok=tally.latencies_ok,
        errors_by_kind=tally.errors,
        elapsed_s=elapsed,
        batch_size=plan.batch_size,
    )
    # The generator's own CPU per request: its ceiling on one core is 1e6 / this figure.
    result.client_us_per_request = cpu / max(tally.done, 1) * 1e6
    return result
