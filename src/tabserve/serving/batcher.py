"""DynamicBatcher: merge concurrent requests into one runtime call (as Triton's dynamic batcher).

A request waits at most ``max_queue_delay_us`` after the oldest queued request for others to
join, and a batch is dispatched as soon as it holds ``max_batch_size`` rows. Requests are never
split: one larger than the limit runs alone. While one batch runs, the requests arriving
meanwhile queue up and form the next one, so under load batches form even with no delay. An
exception fails only the requests of the batch that raised it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tabserve.serving import metrics
from tabserve.serving.errors import Overloaded
from tabserve.serving.runtimes import Prediction

# A batch up to this many rows runs on the event loop: a small model call (≈50 µs for 64
# Titanic rows) costs less than the hand-off to a thread and back. Larger ones go to the
# runtime thread so the loop keeps reading requests meanwhile.
INLINE_MAX_ROWS = 256

RunBatch = Callable[[dict[str, np.ndarray]], Prediction]
# Observers: rows per runtime call, and each request's wait in seconds.
OnBatch = Callable[[int], None]
OnDelay = Callable[[float], None]


@dataclass(frozen=True)
class BatchingOptions:
    enabled: bool = True
    max_batch_size: int = 64
    max_queue_delay_us: int = 500
    # A request that waited longer than this for its batch fails with Overloaded (503)
    # instead of running: its client has most likely given up. 0 = no bound.
    timeout_s: float = 0.0


@dataclass
class _Pending:
    columns: dict[str, np.ndarray]
    n_rows: int
    future: asyncio.Future[Prediction]
    enqueued: float


class DynamicBatcher:
    """One per DataPlane; call ``start()`` inside the event loop, ``close()`` to drain and stop."""

    def __init__(
        self,
        run: RunBatch,
        options: BatchingOptions,
        executor: ThreadPoolExecutor,
        on_batch: OnBatch | None = None,
        on_delay: OnDelay | None = None,
    ) -> None:
        self._run = run
        self._max_rows = max(1, options.max_batch_size)
        self._delay = max(0, options.max_queue_delay_us) / 1e6
        self._timeout = max(0.0, options.timeout_s)
        self._executor = executor
        self._on_batch = on_batch
        self._on_delay = on_delay
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # In an empty context, not a copy of the request that happened to start it: a model
        # call serves many requests, so its log lines carry no request's id (logs.REQUEST_ID).
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="tabserve-batcher", context=contextvars.Context()
            )

    async def submit(self, columns: dict[str, np.ndarray], n_rows: int) -> Prediction:
        if self._task is None:
            self.start()
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(columns, n_rows, future, time.perf_counter()))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Finish what is queued, then stop the loop."""
        while self._queue:
            await asyncio.sleep(0.001)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # One loop turn lets requests that arrived meanwhile (parsed in the same I/O
            # round) queue up too, so they share this runtime call without any added delay.
            await asyncio.sleep(0)
            group = await self._collect()
            try:
                await self._dispatch(group)
            except Exception as exc:  # never let the loop die: its requests would hang
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)

    async def _collect(self) -> list[_Pending]:
        """Take the oldest request and whatever joins it within the delay, up to max rows."""
        group = [self._queue.popleft()]
        rows = group[0].n_rows
        deadline = group[0].enqueued + self._delay
        while rows < self._max_rows:
            if self._queue:
                if rows + self._queue[0].n_rows > self._max_rows:
                    break
                item = self._queue.popleft()
                group.append(item)
                rows += item.n_rows
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            # A timer that sets the event is far cheaper than asyncio.wait_for's extra task.
            self._wakeup.clear()
            timer = asyncio.get_running_loop().call_later(remaining, self._wakeup.set)
            await self._wakeup.wait()
            timer.cancel()
        return group

    async def _dispatch(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        live = [p for p in group if not p.future.done()]  # a cancelled client needs no answer
        if self._timeout:
            late = [p for p in live if started - p.enqueued > self._timeout]
            for p in late:
                p.future.set_exception(
                    Overloaded(
                        f"waited {started - p.enqueued:.1f} s for the model, over the "
                        f"{self._timeout:g} s request timeout; retry later"
                    )
                )
            if late:
                metrics.SHED.labels("timeout").inc(len(late))
                live = [p for p in live if not p.future.done()]
        if not live:
            return
        if self._on_delay is not None:
            for p in live:
                self._on_delay(started - p.enqueued)
        rows = sum(p.n_rows for p in live)
        if self._on_batch is not None:
            self._on_batch(rows)
        try:
            columns = _concat([p.columns for p in live]) if len(live) > 1 else live[0].columns
            if rows <= INLINE_MAX_ROWS:
                result = self._run(columns)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._executor, self._run, columns)
        except Exception as exc:
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        offset = 0
        for p in live:
            if not p.future.done():
                p.future.set_result(result.slice(offset, offset + p.n_rows))
            offset += p.n_rows


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
