"""Open loop: requests leave on a fixed schedule, whatever the server is doing.

A closed-loop client waits for an answer before sending again, so when the server stalls the
client stalls with it and the requests it *would* have sent never get a latency: the stall is
hidden (coordinated omission). Here request i is due at ``start + i / rate``; its latency runs from
that intended time, so time spent queued — in the server or waiting for a free connection here —
is part of what is reported.
"""

from __future__ import annotations

import asyncio
import time

from tabserve.loadtest.engine import Plan, Pool, Progress, Tally, tick
from tabserve.loadtest.stats import LevelResult, summarize

# Requests still unsent or unanswered when the run's deadline passes.
UNSENT = "unsent"
# Sleeping less than this is below the event loop's timer resolution: send now instead.
MIN_SLEEP_S = 0.0005


async def run_open_loop(
    plan: Plan,
    rate: float,
    duration: float,
    *,
    connections: int = 64,
    drain_s: float | None = None,
    progress: Progress | None = None,
) -> LevelResult:
    """Send ``rate * duration`` requests at ``rate`` per second over up to ``connections``.

    After the last request is due, answers are awaited for ``drain_s`` (default: the request
    timeout); anything still pending then is counted as an error, not dropped.
    """
    total = max(1, round(rate * duration))
    wire = plan.requests
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    tally = Tally()
    send_delays: list[float] = []

    async with Pool(plan, connections) as pool:
        start = time.perf_counter() + 0.005
        cpu_start = time.process_time()

        async def dispatch() -> None:
            for i in range(total):
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > MIN_SLEEP_S:
                    await asyncio.sleep(wait)
                queue.put_nowait((i, due))
            for _ in range(connections):
                queue.put_nowait(None)

        async def worker(slot: int) -> None:
            while (item := await queue.get()) is not None:
                index, due = item
                send_delays.append(max(0.0, time.perf_counter() - due))
                _, kind = await pool.send(slot, wire[index % len(wire)])
                finished = time.perf_counter()
                tally.record(finished - due, kind)

        stop = asyncio.Event()
        ticker = asyncio.create_task(tick(tally, progress, stop))
        tasks = [asyncio.create_task(dispatch())]
        tasks += [asyncio.create_task(worker(slot)) for slot in range(connections)]
        deadline = duration + (plan.timeout if drain_s is None else drain_s)
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        stop.set()
        await ticker

    errors = tally.errors.copy()
    if tally.done < total:
        errors[UNSENT] += total - tally.done
    result = summarize(
        mode="open",
        concurrency=connections,
        latencies_ok=tally.latencies_ok,
        errors_by_kind=errors,
        elapsed_s=elapsed,
        batch_size=plan.batch_size,
        target_rate=rate,
        send_delays=send_delays,
    )
    result.client_us_per_request = cpu / max(tally.done, 1) * 1e6
    return result
