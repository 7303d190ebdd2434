"""The data plane: row limit → validation → dynamic batcher → runtime → metrics → log.

Every protocol route (v1 ``/predict``, v2 ``/infer``) is a codec over one DataPlane, so these
steps exist once. The data plane knows no HTTP: it raises ServingErrors (errors.py) and the
route's renderer turns them into answers. One DataPlane serves one model version; a hot reload
builds a new one and swaps it in, and the old one keeps answering the requests that hold it.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from tabserve.modeldir import ModelDir
from tabserve.serving import metrics
from tabserve.serving.batcher import INLINE_MAX_ROWS, BatchingOptions, DynamicBatcher
from tabserve.serving.errors import (
    BadRequest,
    PayloadTooLarge,
    RuntimeFailure,
    ServingError,
    ValidationFailed,
)
from tabserve.serving.request_ids import request_ids
from tabserve.serving.runtimes import Prediction, Runtime
from tabserve.serving.validation import (
    Batch,
    ValidationOptions,
    validate_columns,
    validate_records,
)

DEFAULT_MAX_ROWS = 10_000

log = logging.getLogger("tabserve.serving")


def freeze_heap() -> None:
    """Hide every object alive now (the loaded model, the app, the imports) from the collector.

    A full (generation 2) collection walks the whole heap: ~100k objects here, 30-55 ms, and
    under load one ran every ~0.5 s, which set the p99 at c=50 (ADR 0002). ``gc.freeze`` moves
    them to a permanent generation that collections skip; reference counting still frees them.
    ``unfreeze`` first, so the cycles of a plane replaced by a hot reload are collected on the
    next start instead of staying frozen for good.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class PredictionSink(Protocol):
    """Where predictions go after the answer is computed: tabserve.predlog's
    ``PredictionLog`` has this shape. ``submit`` is called on the event loop once per request
    and must not block (enqueue and return); an exception it raises is logged, never sent on.
    """

    def submit(
        self,
        request_id: str,
        model_name: str,
        model_version: str,
        inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        n_rows: int,
        predictions: Any,
        probabilities: Any = None,
        classes: Sequence[Any] | None = None,
        latency_ms: float | None = None,
        status: str = "ok",
        client_request_id: str | None = None,
    ) -> Any: ...


class DataPlane:
    """One loaded model version with its batcher. Build it, ``await start()``, then ``predict``."""

    # What start() builds when batching is on (tracing/dataplane.py builds its subclass).
    batcher_class: type[DynamicBatcher] = DynamicBatcher

    def __init__(
        self,
        model_dir: ModelDir,
        runtime: Runtime,
        batching: BatchingOptions | None = None,
        prediction_log: PredictionSink | None = None,
        validation: ValidationOptions | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self.model_dir = model_dir
        self.runtime = runtime
        self.spec = model_dir.spec()
        self.model_name = model_dir.name
        self.model_version = model_dir.version
        self.validation = validation or ValidationOptions()
        self.batching = batching or BatchingOptions()
        self.prediction_log = prediction_log
        self.is_classifier = self.spec.target.task == "classification"
        self.classes: list[Any] = list(self.spec.target.classes or [])
        # Probability keys in answers: class labels as JSON object keys are strings.
        self.class_keys: list[str] = [str(c) for c in self.classes]
        self.max_rows = max_rows
        self._served = (self.model_name, self.model_version)
        self._batch_rows = metrics.BATCH_SIZE.labels(*self._served)
        self.in_flight = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tabserve-runtime")
        self._batcher: DynamicBatcher | None = None
        self._class_counters: dict[Any, Any] = {}
        self._log_failed = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the batcher in the running loop and mark the model as served."""
        if self.batching.enabled:
            self._batcher = self.batcher_class(
                self._run,
                self.batching,
                self._executor,
                on_batch=self._batch_rows.observe,
                on_delay=metrics.QUEUE_DELAY.labels(*self._served).observe,
            )
            self._batcher.start()
        metrics.MODEL_INFO.labels(*self._served, self.runtime.name).set(1)
        # After the model is loaded and warm: what is alive now lives as long as the plane.
        freeze_heap()

    async def close(self, grace_s: float = 30.0) -> None:
        """Wait for in-flight predictions (bounded), then stop the batcher and the thread."""
        deadline = time.monotonic() + grace_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
        # The runtime thread is not shut down: a request that took this plane just before a
        # swap may still need it; the executor's thread ends when the plane is collected.
        metrics.MODEL_INFO.labels(*self._served, self.runtime.name).set(0)

    # ---- validation (the row limit once for every protocol; counts the metric) ------------

    def check_rows(self, n_rows: int) -> None:
        if n_rows == 0:
            raise BadRequest("the request holds no records")
        if n_rows > self.max_rows:
            raise PayloadTooLarge(
                f"{n_rows} records in one request is over the {self.max_rows}-record limit"
            )

    def validate_records(self, records: list[Any], *, indexed: bool = True) -> Batch:
        self.check_rows(len(records))
        try:
            return validate_records(self.spec, records, self.validation, indexed=indexed)
        except ValidationFailed as exc:
            self._count_errors(exc)
            raise

    def validate_columns(self, columns: dict[str, Any], n_rows: int) -> Batch:
        self.check_rows(n_rows)
        try:
            return validate_columns(self.spec, columns, n_rows, self.validation)
        except ValidationFailed as exc:
            self._count_errors(exc)
            raise

    def _count_errors(self, exc: ValidationFailed) -> None:
        for d in exc.details:
            # An extra field's name is the client's text: keep it out of label values.
            field = "(extra)" if d["reason"] == "extra_field" else str(d.get("field") or "(record)")
            metrics.VALIDATION_ERRORS.labels(*self._served, field, d["reason"]).inc()

    # ---- prediction ----------------------------------------------------------------------------

    async def predict(
        self, batch: Batch, request_id: str | None = None, client_request_id: str | None = None
    ) -> Prediction:
        """Run one validated batch (through the batcher when enabled) and record it.

        The prediction log keys the rows by the server's own request id; the client's
        ``X-Request-ID`` is kept beside it. A runtime that raises on a valid batch is our
        fault: logged here, answered as RuntimeFailure (500)."""
        started = time.perf_counter()
        self.in_flight += 1
        try:
            if self._batcher is not None:
                prediction = await self._batcher.submit(batch.columns, batch.n_rows)
            elif batch.n_rows <= INLINE_MAX_ROWS:
                self._batch_rows.observe(batch.n_rows)
                prediction = self._run(batch.columns)
            else:
                self._batch_rows.observe(batch.n_rows)
                loop = asyncio.get_running_loop()
                # In the request's context: its log lines keep its id (a large batch, rare).
                run = contextvars.copy_context().run
                prediction = await loop.run_in_executor(
                    self._executor, run, self._run, batch.columns
                )
        except ServingError:
            raise  # shed by the batcher: already the client's answer
        except Exception as exc:
            log.exception("the %s runtime failed on a batch of %d rows", self.runtime.name,
                          batch.n_rows)  # fmt: skip
            raise RuntimeFailure(
                f"the model failed on this request ({type(exc).__name__}); see the server log"
            ) from None
        finally:
            self.in_flight -= 1
        self._record(
            batch, prediction, time.perf_counter() - started, request_id, client_request_id
        )
        return prediction

    def _run(self, columns: dict[str, np.ndarray]) -> Prediction:
        return self.runtime.predict(columns)

    def _record(
        self,
        batch: Batch,
        prediction: Prediction,
        latency_s: float,
        request_id: str | None,
        client_request_id: str | None,
    ) -> None:
        for name in batch.ood_fields:
            metrics.OOD_WARNINGS.labels(*self._served, name).inc()
        if self.is_classifier:
            self._count_classes(prediction.labels)
        if self.prediction_log is not None:
            try:
                self.prediction_log.submit(
                    request_id or request_ids.next(),
                    self.model_name,
                    self.model_version,
                    batch.received if batch.received is not None else batch.columns,
                    batch.n_rows,
                    prediction.labels,
                    probabilities=prediction.probabilities,
                    classes=self.classes or None,
                    latency_ms=latency_s * 1000.0,
                    client_request_id=client_request_id,
                )
            except Exception:  # the log must never fail a prediction
                if not self._log_failed:
                    log.exception("prediction log rejected a batch; continuing without it")
                    self._log_failed = True

    def _count_classes(self, labels: np.ndarray) -> None:
        if len(labels) == 1:
            self._class_counter(labels[0]).inc()
            return
        # Counter over Python values: a third of np.unique's cost for a 100-row batch.
        for value, count in Counter(labels.tolist()).items():
            self._class_counter(value).inc(count)

    def _class_counter(self, label: Any) -> Any:
        key = label.item() if hasattr(label, "item") else label
        counter = self._class_counters.get(key)
        if counter is None:
            counter = metrics.PREDICTIONS.labels(*self._served, str(key))
            self._class_counters[key] = counter
        return counter
