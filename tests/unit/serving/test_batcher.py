"""DynamicBatcher: merging, the batch-size and delay bounds, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tabserve.serving.batcher import BatchingOptions, DynamicBatcher
from tabserve.serving.runtimes import Prediction


class Recorder:
    """A runtime that echoes column x as the label and records each call's rows."""

    def __init__(self, delay_s: float = 0.0, fail_on: float | None = None) -> None:
        self.calls: list[list[float]] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, columns: dict[str, np.ndarray]) -> Prediction:
        rows = columns["x"].tolist()
        with self.lock:
            self.calls.append(rows)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in rows:
            raise ValueError("boom")
        return Prediction(columns["x"] * 10, np.stack([columns["x"], -columns["x"]], axis=1))


def cols(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, dtype=np.float64)}


async def run_with(recorder: Recorder, options: BatchingOptions, coro_factory):  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(1) as pool:
        batcher = DynamicBatcher(recorder, options, pool)
        batcher.start()
        try:
            return await coro_factory(batcher)
        finally:
            await batcher.close()


def test_concurrent_requests_merge_into_one_call_and_get_their_own_rows() -> None:
    recorder = Recorder()

    async def go(batcher: DynamicBatcher) -> list[Prediction]:
        return await asyncio.gather(*(batcher.submit(cols(i, i + 0.5), 2) for i in range(5)))

    results = asyncio.run(run_with(recorder, BatchingOptions(True, 64, 20_000), go))
    assert len(recorder.calls) == 1 and len(recorder.calls[0]) == 10
    for i, result in enumerate(results):
        assert result.labels.tolist() == [i * 10, (i + 0.5) * 10]
        assert result.probabilities is not None
        assert result.probabilities[:, 0].tolist() == [i, i + 0.5]


def test_max_batch_size_bounds_each_call_and_large_requests_run_alone() -> None:
    recorder = Recorder()

    async def go(batcher: DynamicBatcher) -> None:
        await asyncio.gather(
            *(batcher.submit(cols(float(i)), 1) for i in range(10)),
            batcher.submit(cols(*range(100, 108)), 8),
        )

    asyncio.run(run_with(recorder, BatchingOptions(True, 4, 50_000), go))
    sizes = [len(c) for c in recorder.calls]
    assert sum(sizes) == 18
    assert all(s <= 4 for s in sizes if s != 8) and 8 in sizes


def test_a_lone_request_waits_no_longer_than_the_delay() -> None:
    recorder = Recorder()

    async def go(batcher: DynamicBatcher) -> float:
        started = time.perf_counter()
        await batcher.submit(cols(1.0), 1)
        return time.perf_counter() - started

    elapsed = asyncio.run(run_with(recorder, BatchingOptions(True, 64, 20_000), go))
    assert 0.015 <= elapsed < 0.5


def test_an_exception_fails_only_the_batch_that_raised() -> None:
    # The first call is slow, so requests 1-3 queue behind it and form the second batch.
    recorder = Recorder(delay_s=0.05, fail_on=2.0)

    async def go(batcher: DynamicBatcher) -> list[object]:
        first = asyncio.create_task(batcher.submit(cols(0.0), 1))
        await asyncio.sleep(0.01)
        failing = [asyncio.create_task(batcher.submit(cols(float(i)), 1)) for i in (1, 2, 3)]
        await asyncio.sleep(0.1)
        after = asyncio.create_task(batcher.submit(cols(9.0), 1))
        return await asyncio.gather(first, *failing, after, return_exceptions=True)

    results = asyncio.run(run_with(recorder, BatchingOptions(True, 64, 1000), go))
    assert [c for c in recorder.calls] == [[0.0], [1.0, 2.0, 3.0], [9.0]]
    assert isinstance(results[0], Prediction)
    assert all(isinstance(r, ValueError) for r in results[1:4])
    assert isinstance(results[4], Prediction) and results[4].labels.tolist() == [90.0]


@pytest.mark.parametrize("delay_us", [0, 500])
def test_sequential_requests_all_answered(delay_us: int) -> None:
    recorder = Recorder()

    async def go(batcher: DynamicBatcher) -> list[float]:
        out = []
        for i in range(20):
            out.extend((await batcher.submit(cols(float(i)), 1)).labels.tolist())
        return out

    assert asyncio.run(run_with(recorder, BatchingOptions(True, 8, delay_us), go)) == [
        i * 10.0 for i in range(20)
    ]


def test_a_failing_observer_does_not_stall_the_batcher() -> None:
    calls = {"n": 0}

    def flaky_observer(rows: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("metrics backend hiccup")

    async def go() -> list[object]:
        with ThreadPoolExecutor(1) as pool:
            batcher = DynamicBatcher(
                Recorder(), BatchingOptions(True, 8, 0), pool, on_batch=flaky_observer
            )
            batcher.start()
            first = await asyncio.gather(batcher.submit(cols(1.0), 1), return_exceptions=True)
            second = await asyncio.wait_for(batcher.submit(cols(2.0), 1), 5)
            await batcher.close()
            return [*first, second]

    first, second = asyncio.run(go())
    assert isinstance(first, RuntimeError)
    assert isinstance(second, Prediction) and second.labels.tolist() == [20.0]


class Busy(Recorder):
    """A runtime that holds the caller for ``busy_s`` per call, as a real model call does."""

    def __init__(self, busy_s: float) -> None:
        super().__init__()
        self.busy_s = busy_s

    def __call__(self, columns: dict[str, np.ndarray]) -> Prediction:
        end = time.perf_counter() + self.busy_s
        while time.perf_counter() < end:  # spin: time.sleep may oversleep on a loaded machine
            pass
        return super().__call__(columns)


@pytest.mark.parametrize("delay_us", [0, 500])
def test_every_request_of_a_burst_waits_a_bounded_time_in_fifo_order(delay_us: int) -> None:
    # 640 one-row requests at once with 64-row batches: 10 calls of ~2 ms. FIFO batching
    # bounds every request's wait by the calls ahead of it; an unfair queue (newest first,
    # a request left behind for a timer or for the next arrival) shows as a long wait.
    recorder = Busy(0.002)
    waits: list[float] = []

    async def go() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = DynamicBatcher(
                recorder, BatchingOptions(True, 64, delay_us), pool, on_delay=waits.append
            )
            batcher.start()
            results = await asyncio.wait_for(
                asyncio.gather(*(batcher.submit(cols(float(i)), 1) for i in range(640))), 10
            )
            await batcher.close()
        assert [r.labels.tolist() for r in results] == [[i * 10.0] for i in range(640)]

    started = time.perf_counter()
    asyncio.run(go())
    elapsed = time.perf_counter() - started
    flat = [x for call in recorder.calls for x in call]
    assert flat == [float(i) for i in range(640)], "batches must be taken oldest first"
    assert len(recorder.calls) == 10
    assert len(waits) == 640
    # Generous: 10 calls of 2 ms are 20 ms; a loaded machine may stretch that many times.
    assert max(waits) < min(1.0, elapsed), max(waits)


def test_a_request_arriving_while_a_batch_runs_is_served_right_after_it() -> None:
    # A 300-row request runs in the runtime thread (over INLINE_MAX_ROWS) for 100 ms; a lone
    # request arriving meanwhile must go as soon as that call ends, not wait for a timer or
    # for a third request to wake the batcher.
    recorder = Recorder(delay_s=0.1)
    waits: list[float] = []

    async def go() -> float:
        with ThreadPoolExecutor(1) as pool:
            batcher = DynamicBatcher(
                recorder, BatchingOptions(True, 64, 0), pool, on_delay=waits.append
            )
            batcher.start()
            big = asyncio.create_task(batcher.submit(cols(*range(300)), 300))
            await asyncio.sleep(0.02)  # the big call is running now
            started = time.perf_counter()
            await asyncio.wait_for(batcher.submit(cols(-1.0), 1), 5)
            lone = time.perf_counter() - started
            await big
            await batcher.close()
            return lone

    lone = asyncio.run(go())
    assert [len(c) for c in recorder.calls] == [300, 1]
    # ~80 ms of the big call left, then its own ~100 ms call; generous for a loaded machine.
    assert lone < 1.0
    assert waits[-1] < 0.5
