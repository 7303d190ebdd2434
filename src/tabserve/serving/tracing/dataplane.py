"""The traced data plane: validation in a ``validate`` span, the prediction log's submit in a
``log_enqueue`` span, and each model call handed to ``Tracing.model_call`` with the sampled
requests it serves (the batcher remembers which, with the time each queued).

Subclasses and a wrapper, chosen when the plane is built (``Tracing.data_plane``), so the plane
of a server without tracing runs none of this code; inside a traced server a sampled-out
request finds no RequestTrace and takes the parent class's path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tabserve.serving.batcher import DynamicBatcher, _Pending
from tabserve.serving.dataplane import DataPlane
from tabserve.serving.runtimes import Prediction
from tabserve.serving.tracing.request import CURRENT, RequestTrace, fail, now
from tabserve.serving.validation import Batch

if TYPE_CHECKING:  # spans.py builds this plane
    from tabserve.serving.tracing.spans import Tracing


@dataclass
class _TracedPending(_Pending):
    trace: RequestTrace | None = None
    enqueued_ns: int = 0


class TracedBatcher(DynamicBatcher):
    """The dynamic batcher, remembering which sampled requests each model call serves."""

    current: Sequence[_Pending] = ()

    async def submit(self, columns: dict[str, np.ndarray], n_rows: int) -> Prediction:
        request = CURRENT.get()
        if request is None:
            return await super().submit(columns, n_rows)
        # As DynamicBatcher.submit, with the request's trace and the time it queued.
        if self._task is None:
            self.start()
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        pending = _TracedPending(columns, n_rows, future, time.perf_counter(), request, now())
        self._queue.append(pending)
        self._wakeup.set()
        return await future

    async def _dispatch(self, group: list[_Pending]) -> None:
        self.current = group
        try:
            await super()._dispatch(group)
        finally:
            self.current = ()


class _TracedSink:
    """The prediction log's sink, its submit in a ``log_enqueue`` span."""

    def __init__(self, sink: Any, tracer: Any) -> None:
        self._sink = sink
        self._tracer = tracer

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        request = CURRENT.get()
        if request is None:
            return self._sink.submit(*args, **kwargs)
        span = self._tracer.start_span("log_enqueue", request.context)
        try:
            queued = self._sink.submit(*args, **kwargs)
            span.set_attribute("tabserve.log.queued", bool(queued))
            return queued
        finally:
            span.end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)


class TracedDataPlane(DataPlane):
    """The data plane with spans for validation, the model call and the log's enqueue."""

    batcher_class = TracedBatcher

    def __init__(self, tracing: Tracing, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracing = tracing
        if self.prediction_log is not None:
            self.prediction_log = _TracedSink(self.prediction_log, tracing.tracer)
        self._call_attributes = {
            "tabserve.model.name": self.model_name,
            "tabserve.model.version": self.model_version,
            "tabserve.runtime": self.runtime.name,
        }

    def validate_records(self, records: list[Any], *, indexed: bool = True) -> Batch:
        request = CURRENT.get()
        if request is None:
            return super().validate_records(records, indexed=indexed)
        return self._validate(request, super().validate_records, records, indexed=indexed)

    def validate_columns(self, columns: dict[str, Any], n_rows: int) -> Batch:
        request = CURRENT.get()
        if request is None:
            return super().validate_columns(columns, n_rows)
        return self._validate(request, super().validate_columns, columns, n_rows)

    def _validate(self, request: RequestTrace, validate: Any, *args: Any, **kwargs: Any) -> Batch:
        request.model = (self.model_name, self.model_version)
        request.validate_start = now()
        span = self._tracing.tracer.start_span(
            "validate", request.context, start_time=request.validate_start
        )
        try:
            batch: Batch = validate(*args, **kwargs)
            span.set_attribute("tabserve.rows", batch.n_rows)
            if batch.ood_fields:
                span.set_attribute("tabserve.ood_fields", list(batch.ood_fields))
            return batch
        except BaseException as exc:
            fail(span, exc)
            raise
        finally:
            span.end()

    async def predict(
        self, batch: Batch, request_id: str | None = None, client_request_id: str | None = None
    ) -> Prediction:
        try:
            return await super().predict(batch, request_id, client_request_id)
        finally:
            request = CURRENT.get()
            if request is not None:
                request.predict_end = now()

    def _run(self, columns: dict[str, np.ndarray]) -> Prediction:
        batcher = self._batcher
        if isinstance(batcher, TracedBatcher):
            live = [p for p in batcher.current if not p.future.done()]
            traced = [
                (p.trace, p.enqueued_ns)
                for p in live
                if isinstance(p, _TracedPending) and p.trace is not None
            ]
            n_requests = len(live)
        else:  # no batching: the call is this request's alone
            request = CURRENT.get()
            traced = [(request, 0)] if request is not None else []
            n_requests = 1
        if not traced:
            return super()._run(columns)
        return self._tracing.model_call(
            super()._run, columns, traced, n_requests, self._call_attributes
        )
