"""The prediction-log writer process: entries on stdin → rows in the database, nothing lost.

Started by the serving process's PredictionLog (writer.py), one per server worker, so turning
entries into rows and talking to the database never take the server's GIL or its event loop.

    stdin    JSON lines, one per request (entries.py)
    stdout   JSON lines of cumulative counts, ~5 per second (read back into the server's
             metrics and ``PredictionLog.stats``)
    config   the environment variable TABSERVE_PREDLOG_WRITER (JSON)

A reader thread takes lines off the pipe at once (the server never waits on a slow database);
the writer loop inserts them in batches every ``flush_interval_s``. When the database is down,
or too slow for the traffic (the queue is past its high-water mark), rows go to the spool
(spool.py) and are replayed when it answers again; inserts ignore existing keys, so a replay
never duplicates. A batch refused with a data or integrity error is a content problem, not an
outage: it is bisected, the good rows are written, and each refused row goes to
the quarantine file with a metric — never retried forever. If queue and spool are full, rows
are dropped and counted. On EOF (the server closed the pipe or died) the writer drains what it
has, tries the spool once more, reports, and exits.

Ground truth (``POST /feedback``) travels the same way: a feedback line (a JSON object, where an
entry is an array: feedback.py) becomes rows of the ``feedback`` table, inserted, spooled,
replayed and quarantined like prediction rows, and counted with them (``feedback`` counts
those of the written rows that were feedback).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from tabserve import logs
from tabserve.predlog import feedback
from tabserve.predlog.entries import Row, from_spool, row_count, rows_of, to_spool
from tabserve.predlog.spool import INBOX_RE, Spool
from tabserve.predlog.store import FeedbackInserter, RowInserter, ensure_schema, make_engine

log = logging.getLogger("tabserve.predlog")

CONFIG_ENV = "TABSERVE_PREDLOG_WRITER"
STATS_INTERVAL_S = 0.2
ORPHAN_SCAN_INTERVAL_S = 60.0
DROP_LOG_INTERVAL_S = 5.0
DEFAULT_NICENESS = 10
# A queued entry: its line as received, its row count, and whether the server already counted
# it (an inbox spill) rather than it coming off the pipe.
Queued = tuple[bytes, int, bool]


class LogWriter:
    """Queue + writer loop + spool + quarantine (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        spool_dir: Path,
        server_pid: int,
        queue_rows: int = 100_000,
        spool_max_bytes: int = 512 * 1024 * 1024,
        batch_rows: int = 1000,
        flush_interval_s: float = 0.2,
        retry_interval_s: float = 1.0,
        connect_timeout_s: int = 5,
    ) -> None:
        self.url = url
        self.server_pid = server_pid
        self.queue_rows = max(1, queue_rows)
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.engine = make_engine(url, connect_timeout_s=connect_timeout_s)
        self._inserter = RowInserter(self.engine)
        self._feedback_inserter = FeedbackInserter(self.engine)
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.quarantine_path = Path(spool_dir) / f"quarantine-{os.getpid()}.jsonl"
        self._queue: collections.deque[Queued] = collections.deque()
        self._lock = threading.Lock()
        self._pending = 0
        self.counts = {
            "handled": 0, "written": 0, "spooled": 0, "replayed": 0,
            "dropped": 0, "quarantined": 0, "feedback": 0,
        }  # fmt: skip
        self._db_up = False
        self._down_reported = False
        self._next_retry = 0.0
        self._next_orphan_scan = 0.0
        self._last_drop_log = 0.0
        self._eof = threading.Event()
        # Lines read off the pipe, and those of them whose rows are not yet stored anywhere:
        # the server keeps every line until the difference (``durable_lines``) covers it,
        # and gives the rest to the next writer if this one dies (docs/adr/0005).
        self._lines_read = 0
        self._undelivered_lines = 0

    # -- input ---------------------------------------------------------------------------

    def accept(self, line: bytes, *, handled: bool = False) -> None:
        """Queue one entry line. ``handled``: not from the pipe, already counted by the server
        (an inbox spill). A line from the pipe counts towards ``durable_lines`` once its rows
        are in the database, the spool or the quarantine (or it was not an entry at all).
        The line is queued as bytes and parsed when it is stored (entries.row_count)."""
        line = line.rstrip(b"\n")  # queued without it; the spool adds one per line
        try:
            n_rows = feedback.item_count(line) if feedback.is_feedback(line) else row_count(line)
        except ValueError:
            if line.strip():
                log.error("prediction log: skipping a malformed entry line")
            if not handled:
                with self._lock:
                    self._lines_read += 1
            return
        with self._lock:
            self._pending += n_rows
            if not handled:
                self._lines_read += 1
                self._undelivered_lines += 1
            self._queue.append((line, n_rows, handled))

    def read_stream(self, stream: Any) -> None:
        """The reader thread: lines off the pipe until EOF, read in large chunks (iterating a
        pipe line by line cost a quarter of this process's samples under load)."""
        tail = b""
        while True:
            chunk = stream.read1(1 << 20)
            if not chunk:
                break
            lines = (tail + chunk).split(b"\n") if tail else chunk.split(b"\n")
            tail = lines.pop()
            for line in lines:
                self.accept(line)
        if tail:
            self.accept(tail)  # a last line without its newline (the server died mid-write)
        self._eof.set()

    # -- the writer loop ------------------------------------------------------------------

    def run(self, report: Any) -> None:
        last_report = 0.0
        while True:
            stopping = self._eof.is_set()
            if stopping:
                self._next_retry = 0.0  # shutting down: try the database now
            try:
                self._recover_and_replay()
            except Exception as exc:
                self._mark_down(exc)
            self._take_inbox()
            while True:
                batch = self._take()
                if not batch:
                    break
                self._deliver(batch)
                # Under steady load the queue never empties: report as we go, or the server
                # would see no counts and no acks (it keeps every unacked line) until it does.
                if time.monotonic() - last_report >= STATS_INTERVAL_S:
                    report(self.snapshot())
                    last_report = time.monotonic()
            now = time.monotonic()
            if now - last_report >= STATS_INTERVAL_S or stopping:
                report(self.snapshot())
                last_report = now
            if stopping and not self._queue:
                break
            self._eof.wait(self.flush_interval_s)
        self._next_retry = 0.0
        try:
            self._recover_and_replay()
        except Exception:
            log.warning("prediction log: spooled rows kept in %s for the next start",
                        self.spool.directory)  # fmt: skip
        self.spool.close()
        report(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
            pending = self._pending
            durable = self._lines_read - self._undelivered_lines
        return counts | {
            "db_up": self._db_up, "spool_bytes": self.spool.bytes, "queue_rows": pending,
            "durable_lines": durable,
        }  # fmt: skip

    def _take(self) -> list[Queued]:
        """Queued entries up to batch_rows rows (one more entry may cross the bound)."""
        items: list[Queued] = []
        rows = 0
        while rows < self.batch_rows:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            items.append(item)
            rows += item[1]
        return items

    def _deliver(self, items: list[Queued]) -> None:
        taken = sum(n for _, n, _ in items)
        fresh = sum(n for _, n, handled in items if not handled)
        with self._lock:
            backlog = self._pending
        # Past the high-water mark the database is too slow for the traffic: spool the lines
        # as they are (no parsing: the cheapest thing a writer that is behind can do), catch up.
        too_slow = backlog > 0.8 * self.queue_rows
        stored = False
        rows_stored = False
        if self._db_up and not too_slow:
            rows, truths, bad = self._rows(items)
            try:
                refused = self._insert(rows) if rows else 0
                self._count(written=len(rows) - refused)
                rows_stored = True
                if truths:
                    refused = self._insert(truths, feedback_rows=True)
                    self._count(written=len(truths) - refused, feedback=len(truths) - refused)
                self._count(dropped=bad, handled=fresh)
                stored = True
            except Exception as exc:
                self._mark_down(exc)
        if not stored:
            # Predictions already in the database are not spooled again (their counts would
            # say twice); only the feedback lines that did not make it.
            kept = [i for i in items if feedback.is_feedback(i[0])] if rows_stored else items
            self._spool_or_drop([line for line, _, _ in kept], sum(n for _, n, _ in kept), fresh)
        with self._lock:
            self._pending -= taken
            self._undelivered_lines -= sum(1 for _, _, handled in items if not handled)

    @staticmethod
    def _rows(items: list[Queued]) -> tuple[list[Row], list[feedback.FeedbackRow], int]:
        """The prediction rows and the feedback rows of queued lines, and how many records could
        not be made rows (a malformed entry must not take the batch with it)."""
        rows: list[Row] = []
        truths: list[feedback.FeedbackRow] = []
        bad = 0
        for line, n, _ in items:
            try:
                if feedback.is_feedback(line):
                    truths.extend(feedback.rows_of(orjson.loads(line)))
                else:
                    rows.extend(rows_of(orjson.loads(line)))
            except Exception as exc:
                log.error("prediction log: cannot turn an entry into rows (%s): %d record(s) "
                          "not logged", exc, n)  # fmt: skip
                bad += n
        return rows, truths, bad

    def _spool_or_drop(self, lines: list[bytes], n_rows: int, fresh: int) -> None:
        if self.spool.append_lines(lines):
            self._count(spooled=n_rows, handled=fresh)
            return
        self._count(dropped=n_rows, handled=fresh)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.error("prediction log: DROPPED %d record(s): the database is unavailable and "
                      "the spool is full (total dropped %d)", n_rows,
                      self.counts["dropped"])  # fmt: skip

    # -- inserting, and telling an outage from a bad row ------------------------------------

    def _insert(self, rows: list[Row], *, feedback_rows: bool = False) -> int:
        """Insert ``rows`` (prediction rows, or feedback rows); a batch refused by a live
        database is bisected down to the rows it refuses, which are quarantined. Returns how
        many were; raises on an outage."""
        inserter = self._feedback_inserter if feedback_rows else self._inserter
        try:
            inserter.insert(rows)
            return 0
        except Exception as exc:
            if not _refused_for_content(exc):
                raise  # an outage (or a lock, a timeout): the caller spools
        if len(rows) == 1:
            self._quarantine(rows[0], feedback_rows)
            return 1
        middle = len(rows) // 2
        return self._insert(rows[:middle], feedback_rows=feedback_rows) + self._insert(
            rows[middle:], feedback_rows=feedback_rows
        )

    def _quarantine(self, row: Row, feedback_row: bool = False) -> None:
        obj = feedback.to_quarantine(row) if feedback_row else to_spool(row)
        line = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        with self.quarantine_path.open("ab") as fh:
            fh.write(line)
        self._count(quarantined=1)
        log.error("prediction log: the database refused request %r record %s for its content; "
                  "kept in %s (not retried)", row[0], row[1], self.quarantine_path)  # fmt: skip

    # -- outages, spool and inbox ------------------------------------------------------------

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
            log.info("prediction log: database %s accepts writes", self._safe_url())
        if self.spool.bytes > 0 or now >= self._next_orphan_scan:
            self._next_orphan_scan = now + ORPHAN_SCAN_INTERVAL_S
            self._replay(until_queue_rows=self.queue_rows // 2)

    def _replay(self, until_queue_rows: int | None) -> None:
        """Move spooled rows into the database; yields to live traffic past a queue depth."""
        for segment in self.spool.closed_segments():
            for chunk in Spool.read(segment, chunk_rows=self.batch_rows):
                rows: list[Row] = []
                truths: list[feedback.FeedbackRow] = []
                for item in chunk:  # an entry line, a feedback line, or an older row object
                    try:
                        if isinstance(item, list):
                            rows.extend(rows_of(item))
                        elif "feedback" in item:
                            truths.extend(feedback.rows_of(item))
                        else:
                            rows.append(from_spool(item))
                    except Exception as exc:
                        log.error("prediction log: skipping a spooled entry that is not rows "
                                  "(%s) in %s", exc, segment)  # fmt: skip
                refused = self._insert(rows) if rows else 0
                self._count(written=len(rows) - refused, replayed=len(rows) - refused)
                if truths:
                    refused = self._insert(truths, feedback_rows=True)
                    stored = len(truths) - refused
                    self._count(written=stored, replayed=stored, feedback=stored)
                if until_queue_rows is not None and self._pending > until_queue_rows:
                    return  # the rest of this segment replays next round (duplicates ignored)
            self.spool.remove(segment)

    def _take_inbox(self) -> None:
        """Entries the server spilled to files while this process could not take them."""
        directory = self.spool.directory
        for path in sorted(directory.iterdir()):
            match = INBOX_RE.match(path.name)
            if not match:
                continue
            pid = int(match.group(1))
            if pid != self.server_pid and _pid_alive(pid):
                continue  # another live server's spill: its own writer takes it
            with path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        self.accept(line, handled=True)
            path.unlink(missing_ok=True)

    def _mark_down(self, exc: Exception | None) -> None:
        if not self._down_reported:
            self._down_reported = True
            first = str(exc).splitlines()[0] if exc and str(exc) else repr(exc)
            log.error("prediction log: database %s unavailable (%s); spooling to %s",
                      self._safe_url(), first, self.spool.directory)  # fmt: skip
        self._db_up = False
        self._next_retry = time.monotonic() + self.retry_interval_s

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for key, n in deltas.items():
                self.counts[key] += n

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


# PEP 249's classes for a statement the database refuses for what it holds (a value too long
# for its column, a character it cannot store): retrying cannot help. Everything else — a lost
# connection, a lock, a timeout — is an outage that a retry outlives.
_CONTENT_ERRORS = frozenset({"DataError", "IntegrityError"})


def _refused_for_content(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if any(c.__name__ in _CONTENT_ERRORS for c in type(seen).__mro__):
            return True  # e.g. psycopg's UntranslatableCharacter is a DataError
        if isinstance(seen, TypeError | ValueError) and type(seen).__module__ == "builtins":
            return True  # a row that cannot be encoded at all
        seen = seen.__cause__
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    _yield_cpu()
    config = orjson.loads(os.environ[CONFIG_ENV])
    logs.configure(config.pop("log_format", "text"))
    writer = LogWriter(
        config.pop("url"),
        spool_dir=Path(config.pop("spool_dir")),
        server_pid=int(config.pop("server_pid")),
        **config,
    )
    out = sys.stdout.buffer

    def report(snapshot: dict[str, Any]) -> None:
        try:
            out.write(orjson.dumps(snapshot) + b"\n")
            out.flush()
        except (BrokenPipeError, ValueError):  # the server is gone: nobody reads the counts
            pass

    reader = threading.Thread(
        target=writer.read_stream, args=(sys.stdin.buffer,), name="predlog-reader", daemon=True
    )
    reader.start()
    writer.run(report)
    writer.engine.dispose()


def _yield_cpu() -> None:
    """Lower this process's CPU priority, so the serving process wins a contended core.

    The writer is behind a queue and a spool: a slower writer costs rows a little more delay,
    a slower server costs every client latency. Ten steps below the server, the scheduler gives
    it about a tenth of a core it has to share, and all of any idle one (docs/adr/0005).
    """
    niceness = int(os.environ.get("TABSERVE_PREDLOG_NICENESS", DEFAULT_NICENESS))
    with contextlib.suppress(OSError):
        os.nice(niceness)  # relative to the server that started it


if __name__ == "__main__":
    main()
