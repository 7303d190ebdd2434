"""PredictionLog: the bounded queue, the background writer thread and the spool fallback.

How the server uses it (once per worker process, in the app's lifespan, after any fork)::

    from tabserve.predlog import PredictionLog

    plog = PredictionLog.from_settings(settings)        # None when --log-db off
    ...
    # per request, after the runtime answered (never blocks, never raises):
    plog.submit(
        request_id,                  # str, unique per request (e.g. uuid4().hex or X-Request-ID)
        model_name, model_version,   # ModelDir.name / ModelDir.version
        columns,                     # the validated inputs as given to the runtime:
                                     #   {feature: np.ndarray of n_rows values} (lists work too)
        n_rows,                      # records in this request
        predictions,                 # np.ndarray [n_rows] (labels) or [n_rows] / [n_rows, 1]
        probabilities=probs,         # np.ndarray [n_rows, n_classes] or None
        classes=spec.target.classes, # column labels of `probabilities`
        latency_ms=elapsed_ms,       # request latency measured by the server
        status="ok",
    )
    ...
    plog.close()                     # at shutdown: drains the queue (to the DB or the spool)

``submit`` only appends one tuple to a bounded in-memory queue (bounded in rows, ``queue_rows``)
and does not wake the writer: the arrays are referenced, not copied, so the caller must not
mutate them afterwards. Every ``flush_interval_s`` the background writer thread takes all queued
requests, turns them into rows column-wise (rows.py) and inserts them through the driver's
``executemany`` in transactions of up to ``batch_rows`` rows (store.RowInserter).
When the database is down or slow (the queue is past its high-water mark), rows go to an
append-only local spool (spool.py), replayed when the database answers again; inserts ignore
existing (request_id, record_index) keys, so replays never duplicate. If the queue is full,
``submit`` appends to the spool itself; if the spool is full too, the rows are dropped, counted
in ``tabserve_prediction_log_dropped_total`` and logged as errors: serving never waits for the log.
``sample`` keeps that share of requests (whole requests, chosen by a hash of the request id).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabserve.predlog import metrics
from tabserve.predlog.rows import Item, Row, encode, from_spool, to_spool
from tabserve.predlog.spool import Spool
from tabserve.predlog.store import RowInserter, ensure_schema, make_engine

if TYPE_CHECKING:
    from tabserve.settings import Settings

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 5.0
ORPHAN_SCAN_INTERVAL_S = 60.0
ENCODE_CHUNK = 256  # requests encoded between two chances for the request thread to take the GIL


def default_spool_dir(home: Path, url: str) -> Path:
    """One spool directory per database, under the tabserve home."""
    digest = hashlib.sha1(url.encode()).hexdigest()[:12]
    return home / ".tabserve" / "spool" / digest


class PredictionLog:
    """Bounded queue + background writer thread + spool. See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        sample: float = 1.0,
        queue_rows: int = 100_000,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 512 * 1024 * 1024,
        batch_rows: int = 1000,
        flush_interval_s: float = 0.2,
        retry_interval_s: float = 1.0,
        connect_timeout_s: int = 5,
    ) -> None:
        self.url = url
        self.sample = min(max(sample, 0.0), 1.0)
        self.queue_rows = max(1, queue_rows)
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.engine = make_engine(url, connect_timeout_s=connect_timeout_s)
        self._inserter = RowInserter(self.engine)
        self.spool = Spool(
            spool_dir or default_spool_dir(Path.cwd(), url), max_bytes=spool_max_bytes
        )
        # deque.append/popleft are atomic: no lock, and no wake-up of the writer per request.
        self._queue: collections.deque[Item] = collections.deque()
        self._wake = threading.Event()  # set on close, or when the queue passes half full
        self._lock = threading.Lock()
        self._pending = 0  # rows queued and not yet written or spooled (includes in-flight)
        self._stats = {"submitted": 0, "written": 0, "spooled": 0, "replayed": 0, "dropped": 0}
        self._db_up = False
        self._down_reported = False
        self._next_retry = 0.0
        self._next_orphan_scan = 0.0
        self._last_drop_log = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PredictionLog | None:
        """The log configured by TABSERVE_LOG_DB / --log-db; None when the log is off."""
        url = settings.resolved_log_db()
        if url is None:
            return None
        options: dict[str, Any] = {
            "sample": settings.log_sample,
            "queue_rows": settings.log_queue_size,
            "spool_dir": default_spool_dir(settings.home, url),
        }
        return cls(url, **(options | overrides))

    # -- the request path -------------------------------------------------------------------

    def submit(
        self,
        request_id: str,
        model_name: str,
        model_version: str,
        columns: Mapping[str, Any],
        n_rows: int,
        predictions: Any,
        probabilities: Any = None,
        classes: Sequence[Any] | None = None,
        latency_ms: float | None = None,
        status: str = "ok",
    ) -> bool:
        """Queue one request's records; False if sampled out or dropped. Never raises."""
        try:
            if n_rows <= 0 or self._stop.is_set():
                return False
            if self.sample < 1.0:
                bucket = zlib.crc32(request_id.encode()) % 1_000_000
                if bucket >= self.sample * 1_000_000:
                    return False
            item: Item = (
                time.time(), request_id, model_name, str(model_version), columns, n_rows,
                predictions, probabilities, classes, latency_ms, status,
            )  # fmt: skip
            with self._lock:
                self._stats["submitted"] += n_rows
                room = self._pending + n_rows <= self.queue_rows
                if room:
                    self._pending += n_rows
            if room:
                self._queue.append(item)
                if self._pending > self.queue_rows // 2 and not self._wake.is_set():
                    self._wake.set()
                return True
            # The writer cannot keep up even by spooling: spool here rather than lose the rows.
            rows, bad = encode([item])
            if bad:
                raise bad[0][1]
            if self.spool.append([to_spool(r) for r in rows]):
                self._count("spooled", len(rows))
                return True
            self._drop(len(rows), "queue and spool are full")
            return False
        except Exception:  # the log must never fail a request
            log.exception("prediction log: submit failed; %d record(s) not logged", n_rows)
            self._count("dropped", max(n_rows, 0))
            return False

    # -- lifecycle ---------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted row is in the database (spool replayed); True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pending = self._pending
            if pending == 0 and self._db_up and self.spool.bytes == 0:
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking rows, drain the queue (to the database, else the spool), stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("prediction log: writer did not finish within %.1fs", timeout)
            return
        self.spool.close()
        self.engine.dispose()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats) | {"pending": self._pending}

    @property
    def db_up(self) -> bool:
        return self._db_up

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if stopping:
                # Shutting down: try the database now, not after the retry timer, so a database
                # that came back a moment ago gets the queue instead of the spool.
                self._next_retry = 0.0
            try:
                self._recover_and_replay()
            except Exception as exc:
                self._mark_down(exc)
            if not stopping:
                # Sleep the whole interval: a transaction per request would cost more CPU (and
                # GIL time taken from the request thread) than the prediction itself.
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
            while True:
                items = self._take()
                if not items:
                    break
                self._deliver(self._encode(items))
                with self._lock:
                    self._pending -= sum(item[5] for item in items)
            metrics.QUEUE_ROWS.set(self._pending)
            metrics.SPOOL_BYTES.set(self.spool.bytes)
            if stopping and not self._queue:
                break
        # Last chance for rows spooled during an outage, bounded by the database's timeouts.
        self._next_retry = 0.0
        try:
            self._recover_and_replay()
        except Exception:
            log.warning(
                "prediction log: spooled rows kept in %s for the next start", self.spool.directory
            )
        metrics.QUEUE_ROWS.set(0)

    def _take(self) -> list[Item]:
        """Queued requests, up to batch_rows rows (one more request may cross the bound)."""
        items: list[Item] = []
        rows = 0
        popleft = self._queue.popleft
        while rows < self.batch_rows:
            try:
                item = popleft()
            except IndexError:
                break
            items.append(item)
            rows += item[5]
        return items

    def _encode(self, items: list[Item]) -> list[Row]:
        rows: list[Row] = []
        for start in range(0, len(items), ENCODE_CHUNK):
            if start:
                # Hand the GIL to the request thread between chunks: without this a waiting
                # request sits out the whole batch (up to the 5 ms switch interval).
                time.sleep(0)
            chunk_rows, bad = encode(items[start : start + ENCODE_CHUNK])
            rows.extend(chunk_rows)
            for item, exc in bad:  # a malformed submit must not kill the writer
                log.error("prediction log: cannot turn request %r into rows: %s", item[1], exc)
                self._count("dropped", item[5])
        return rows

    def _deliver(self, rows: list[Row]) -> None:
        if not rows:
            return
        with self._lock:
            backlog = self._pending
        # Past the high-water mark the database is too slow for the traffic: spool, catch up later.
        too_slow = backlog > 0.8 * self.queue_rows
        if self._db_up and not too_slow:
            try:
                self._inserter.insert(rows)
                self._count("written", len(rows))
                return
            except Exception as exc:
                self._mark_down(exc)
        try:
            spooled = self.spool.append([to_spool(r) for r in rows])
        except Exception:
            log.exception("prediction log: rows not serialisable for the spool")
            spooled = False
        if spooled:
            self._count("spooled", len(rows))
        else:
            self._drop(len(rows), "the database is unavailable and the spool is full")

    def _recover_and_replay(self) -> None:
        now = time.monotonic()
        if not self._db_up:
            if now < self._next_retry:
                return
            try:
                ensure_schema(self.engine)
            except Exception as exc:
                self._mark_down(exc)
                return
            self._db_up = True
            self._down_reported = False
            metrics.DB_UP.set(1)
            log.info("prediction log: database %s accepts writes", self._safe_url())
        if self.spool.bytes > 0 or now >= self._next_orphan_scan:
            self._next_orphan_scan = now + ORPHAN_SCAN_INTERVAL_S
            self._replay(until_queue_rows=self.queue_rows // 2)

    def _replay(self, until_queue_rows: int | None) -> None:
        """Move spooled rows into the database; yields to live traffic past a queue depth."""
        for segment in self.spool.closed_segments():
            for chunk in Spool.read(segment, chunk_rows=self.batch_rows):
                self._inserter.insert([from_spool(obj) for obj in chunk])
                self._count("written", len(chunk))
                self._count("replayed", len(chunk))
                if until_queue_rows is not None and self._pending > until_queue_rows:
                    return  # the rest of this segment replays next round (duplicates ignored)
            self.spool.remove(segment)

    def _mark_down(self, exc: Exception | None) -> None:
        if not self._down_reported:
            self._down_reported = True
            log.error(
                "prediction log: database %s unavailable (%s); spooling to %s",
                self._safe_url(), str(exc).splitlines()[0] if exc else "?", self.spool.directory,
            )  # fmt: skip
        self._db_up = False
        metrics.DB_UP.set(0)
        self._next_retry = time.monotonic() + self.retry_interval_s

    def _count(self, key: str, n: int) -> None:
        with self._lock:
            self._stats[key] += n
        counter = {
            "written": metrics.ROWS_WRITTEN,
            "spooled": metrics.ROWS_SPOOLED,
            "replayed": metrics.ROWS_REPLAYED,
            "dropped": metrics.ROWS_DROPPED,
        }[key]
        counter.inc(n)

    def _drop(self, n: int, why: str) -> None:
        self._count("dropped", n)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.error(
                "prediction log: DROPPED %d record(s): %s (total dropped %d)",
                n, why, self._stats["dropped"],
            )  # fmt: skip

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)
