"""PredictionLog: the serving side of the prediction log — one JSON line per request, handed to
a writer process; the request path pays one orjson call and a list append.

How the server uses it (once per worker process, in the app's lifespan, after any fork)::

    from tabserve.predlog import PredictionLog

    plog = PredictionLog.from_settings(settings)        # None when --log-db off
    ...
    # per request, after the runtime answered (never blocks, never raises):
    plog.submit(
        request_id,                  # the server's own id, unique by construction (the key)
        model_name, model_version,
        inputs,                      # the inputs as received: a list of records, or
                                     #   {feature: [values]} (numpy arrays work too)
        n_rows,                      # records in this request
        predictions,                 # np.ndarray [n_rows] (labels or values)
        probabilities=probs,         # np.ndarray [n_rows, n_classes] or None
        classes=spec.target.classes, # column labels of `probabilities`
        latency_ms=elapsed_ms,
        client_request_id=...,       # the client's X-Request-ID, kept for correlation
    )
    ...
    plog.submit_feedback(items)      # POST /feedback: checked (request_id, record_index,
                                     #   truth) items (feedback.py); False only when dropped
    ...
    plog.close()                     # at shutdown: ships the rest, waits for the writer

Why a writer process (docs/adr/0005): turning requests into rows and talking to the database
took ~20 % of a busy server's samples as a thread, all of it competing for the GIL with the
event loop, and doubled its p99. Now the server only encodes a line (entries.py); a shipper
thread writes the buffered lines to the writer's stdin every ``ship_interval_s`` (the write
releases the GIL), and a reader thread takes the writer's counts off its stdout into the
Prometheus metrics. The writer (process.py) does the rest: rows, inserts, spool, replay,
quarantine.

Nothing is lost when the writer cannot take lines: if it died, it is started again (at most
once per ``retry_interval_s``); lines it did not take, and lines past ``queue_rows`` buffered
rows, are written to an inbox file in the spool directory, which the writer reads on its next
round. Only when the spool directory is full too are rows dropped, counted in
``tabserve_prediction_log_dropped_total`` and logged: serving never waits for the log.
``sample`` keeps that share of requests (whole requests, chosen by a hash of the request id).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tabserve.predlog import feedback, metrics
from tabserve.predlog.entries import encode_entry
from tabserve.predlog.spool import write_inbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tabserve.settings import Settings

log = logging.getLogger("tabserve.predlog")

DROP_LOG_INTERVAL_S = 5.0
_COUNTERS = {
    "written": metrics.ROWS_WRITTEN,
    "spooled": metrics.ROWS_SPOOLED,
    "replayed": metrics.ROWS_REPLAYED,
    "dropped": metrics.ROWS_DROPPED,
    "quarantined": metrics.ROWS_QUARANTINED,
    "feedback": metrics.FEEDBACK_WRITTEN,
}
# A writer's cumulative counts, summed over the writers a restart replaced (``stats``).
_TOTALS = (*_COUNTERS, "handled")


def default_spool_dir(home: Path, url: str) -> Path:
    """One spool directory per database, under the tabserve home."""
    digest = hashlib.sha1(url.encode()).hexdigest()[:12]
    return home / ".tabserve" / "spool" / digest


class PredictionLog:
    """The serving side: buffer, shipper thread, writer process. See the module docstring."""

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
        ship_interval_s: float = 0.02,
        retry_interval_s: float = 1.0,
        connect_timeout_s: int = 5,
        log_format: str = "text",
    ) -> None:
        self.url = url
        self.sample = min(max(sample, 0.0), 1.0)
        self.queue_rows = max(1, queue_rows)
        self.spool_dir = spool_dir or default_spool_dir(Path.cwd(), url)
        self.spool_max_bytes = spool_max_bytes
        self.ship_interval_s = ship_interval_s
        self.retry_interval_s = retry_interval_s
        self._writer_config = {
            "url": url,
            "spool_dir": str(self.spool_dir),
            "server_pid": os.getpid(),
            "queue_rows": self.queue_rows,
            "spool_max_bytes": spool_max_bytes,
            "batch_rows": batch_rows,
            "flush_interval_s": flush_interval_s,
            "retry_interval_s": retry_interval_s,
            "connect_timeout_s": connect_timeout_s,
            "log_format": log_format,  # the writer's lines look like the server's (logs.py)
        }
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._buffered_rows = 0
        self._overflow: list[bytes] = []  # past queue_rows held: for the inbox, next round
        self._overflow_rows = 0
        self._submitted = 0
        self._dropped_here = 0
        self._spilled_here = 0
        self._writer_stats: dict[str, Any] = {}  # the current writer's last report
        self._earlier: dict[str, int] = dict.fromkeys(_TOTALS, 0)  # writers it replaced
        self._reported: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._last_drop_log = 0.0
        self._next_start = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        # Lines shipped to the current writer and not yet reported durable by it, oldest first,
        # as (index of the chunk's last line, lines, rows): given to the next writer if it dies.
        self._unacked: collections.deque[tuple[int, list[bytes], int]] = collections.deque()
        self._shipped_lines = 0
        self._unacked_rows = 0
        self._engine: Engine | None = None
        self._start_writer()
        self._shipper = threading.Thread(target=self._ship_loop, name="predlog-ship", daemon=True)
        self._shipper.start()

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
            "log_format": settings.log_format,
        }
        return cls(url, **(options | overrides))

    # -- the request path ----------------------------------------------------------------

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
    ) -> bool:
        """Take one request's records; False if sampled out (or unloggable). Never raises,
        never blocks: rows neither the writer nor the spool can keep are dropped later,
        counted and logged."""
        try:
            if n_rows <= 0 or self._stop.is_set():
                return False
            if self.sample < 1.0:
                bucket = zlib.crc32(request_id.encode()) % 1_000_000
                if bucket >= self.sample * 1_000_000:
                    return False
            line = encode_entry(
                request_id, client_request_id, model_name, str(model_version), n_rows, inputs,
                predictions, probabilities, classes, latency_ms, status,
            )  # fmt: skip
            return self._enqueue(line, n_rows)
        except Exception:  # the log must never fail a request
            log.exception("prediction log: submit failed; %d record(s) not logged", n_rows)
            with self._lock:
                self._dropped_here += max(n_rows, 0)
            metrics.ROWS_DROPPED.inc(max(n_rows, 0))
            return False

    def submit_feedback(self, items: Sequence[Sequence[Any]], ts: float | None = None) -> bool:
        """Queue checked ground-truth items (feedback.check_items) for the ``feedback`` table,
        through the same buffer, writer, spool and inbox as predictions, never sampled out.
        False only once the log is closing: the caller tells its client to send them again,
        since nobody else has them (past the bound they go to the inbox, as predictions do)."""
        if not items:
            return True
        if self._stop.is_set():
            return False
        return self._enqueue(feedback.encode_line(items, ts), len(items))

    def _enqueue(self, line: bytes, n_rows: int) -> bool:
        with self._lock:
            self._submitted += n_rows
            # Lines held for the writer (not shipped, or shipped and not yet stored) are
            # bounded together: past that the writer is behind, and the inbox takes them.
            held = self._buffered_rows + self._unacked_rows
            if held + n_rows <= self.queue_rows:
                self._buffer.append(line)
                self._buffered_rows += n_rows
            else:  # the writer is behind: the shipper puts these in the inbox instead
                self._overflow.append(line)
                self._overflow_rows += n_rows
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted row is in the database (spool replayed); True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.set()
            stats = self.stats()
            if (
                stats["pending"] == 0
                and stats["db_up"]
                and stats["spool_bytes"] == 0
                and not any(self.spool_dir.glob("inbox-*.jsonl"))
            ):
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking rows, ship the rest, let the writer drain and exit (bounded wait)."""
        self._stop.set()
        self._wake.set()
        self._shipper.join(timeout)
        process = self._process
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):  # EOF: the writer drains, replays, exits
                    process.stdin.close()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("prediction log: the writer did not finish within %.1f s; it goes on "
                          "in the background (pid %d)", timeout, process.pid)  # fmt: skip
        if self._reader is not None:
            self._reader.join(1.0)
        if process is not None and process.poll() is not None:
            self._reclaim_unacked()  # normally nothing: a clean exit reports all lines durable
        if self._engine is not None:
            self._engine.dispose()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            writer = dict(self._writer_stats)
            for key in _TOTALS:
                writer[key] = int(writer.get(key, 0)) + self._earlier[key]
            submitted = self._submitted
            dropped_here, spilled_here = self._dropped_here, self._spilled_here
        handled = int(writer.get("handled", 0))
        return {
            "submitted": submitted,
            "written": int(writer.get("written", 0)),
            "spooled": int(writer.get("spooled", 0)) + spilled_here,
            "replayed": int(writer.get("replayed", 0)),
            "quarantined": int(writer.get("quarantined", 0)),
            "dropped": int(writer.get("dropped", 0)) + dropped_here,
            "pending": max(0, submitted - handled - dropped_here - spilled_here),
            "db_up": bool(writer.get("db_up", False)),
            "spool_bytes": int(writer.get("spool_bytes", 0)),
            "feedback": int(writer.get("feedback", 0)),
        }

    @property
    def db_up(self) -> bool:
        return bool(self._writer_stats.get("db_up", False))

    @property
    def engine(self) -> Engine:
        """An engine on the log's database, for reading it (tests, tools); made on first use."""
        if self._engine is None:
            from tabserve.predlog.store import make_engine

            self._engine = make_engine(self.url)
        return self._engine

    # -- the writer process and the shipper thread -------------------------------------------

    def _start_writer(self) -> None:
        env = {**os.environ, "TABSERVE_PREDLOG_WRITER": orjson.dumps(self._writer_config).decode()}
        process = subprocess.Popen(
            [sys.executable, "-m", "tabserve.predlog.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        with self._lock:  # a new writer counts its lines and its totals from zero
            for key in _TOTALS:
                self._earlier[key] += int(self._writer_stats.get(key, 0))
            self._writer_stats = {}
            self._process = process
            self._shipped_lines = 0
            self._reported = dict.fromkeys(_COUNTERS, 0)
        self._reader = threading.Thread(
            target=self._read_stats, args=(process,), name="predlog-stats", daemon=True
        )
        self._reader.start()

    def _read_stats(self, process: subprocess.Popen[bytes]) -> None:
        if process.stdout is None:
            return
        for line in process.stdout:
            try:
                snapshot = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            with self._lock:
                if process is not self._process:
                    return  # a writer that was replaced: its counts are not ours any more
                self._writer_stats = snapshot
                durable = int(snapshot.get("durable_lines", 0))
                while self._unacked and self._unacked[0][0] <= durable:
                    self._unacked_rows -= self._unacked.popleft()[2]
                deltas = {key: int(snapshot.get(key, 0)) - self._reported[key] for key in _COUNTERS}
                for key, delta in deltas.items():
                    if delta > 0:
                        self._reported[key] += delta
            for key, delta in deltas.items():
                if delta > 0:
                    _COUNTERS[key].inc(delta)
            metrics.QUEUE_ROWS.set(int(snapshot.get("queue_rows", 0)) + self._buffered_rows)
            metrics.SPOOL_BYTES.set(int(snapshot.get("spool_bytes", 0)))
            metrics.DB_UP.set(1 if snapshot.get("db_up") else 0)

    def _ship_loop(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(self.ship_interval_s)
                self._wake.clear()
            self._ship()
            if stopping:
                return

    def _ship(self) -> None:
        with self._lock:
            lines, rows = self._buffer, self._buffered_rows
            self._buffer, self._buffered_rows = [], 0
            overflow, overflow_rows = self._overflow, self._overflow_rows
            self._overflow, self._overflow_rows = [], 0
        if overflow:  # one file per round, off the request path
            self._spill(overflow, overflow_rows, "the writer process is behind")
        if not lines:
            return
        process = self._process
        if process is not None and process.poll() is None and process.stdin is not None:
            try:
                process.stdin.write(b"".join(lines))
                process.stdin.flush()
                with self._lock:
                    self._shipped_lines += len(lines)
                    self._unacked.append((self._shipped_lines, lines, rows))
                    self._unacked_rows += rows
                return
            except (BrokenPipeError, OSError, ValueError):
                log.error("prediction log: the writer process (pid %d) stopped taking rows",
                          process.pid)  # fmt: skip
        # The writer is gone: what it took but did not store goes to the inbox with these
        # lines (rows it did store are written again and ignored: the key is unique).
        self._reclaim_unacked()
        if time.monotonic() >= self._next_start and not self._stop.is_set():
            self._next_start = time.monotonic() + self.retry_interval_s
            log.warning("prediction log: starting the writer process again")
            self._start_writer()
        self._spill(lines, rows, "the writer process is not running")

    def _reclaim_unacked(self) -> None:
        """Give lines a dead writer never reported durable to the inbox (the next writer's)."""
        with self._lock:
            chunks = list(self._unacked)
            self._unacked.clear()
            self._unacked_rows = 0
        lines = [line for _, chunk, _ in chunks for line in chunk]
        if lines:
            log.warning("prediction log: %d request(s) the stopped writer had not stored go "
                        "to the inbox", len(lines))  # fmt: skip
            self._spill(lines, sum(rows for _, _, rows in chunks), "the writer process stopped")

    def _spill(self, lines: list[bytes], n_rows: int, why: str) -> bool:
        if write_inbox(self.spool_dir, lines, self.spool_max_bytes):
            with self._lock:
                self._spilled_here += n_rows
            metrics.ROWS_SPOOLED.inc(n_rows)
            return True
        with self._lock:
            self._dropped_here += n_rows
            dropped = self._dropped_here
        metrics.ROWS_DROPPED.inc(n_rows)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.error("prediction log: DROPPED %d record(s): %s and the spool in %s is full "
                      "(dropped here %d)", n_rows, why, self.spool_dir, dropped)  # fmt: skip
        return False
