"""An append-only local spool for log rows the database could not take (down or too slow),
and the inbox files a server writes when its writer process cannot take entries.

Segment files ``spool-<pid>-<seq>.jsonl`` hold JSON lines: entry lines as the server encoded
them (entries.py; spooling one costs no parsing — what a writer that is behind can afford) and,
from older versions, one object per row. Each process appends only to
its own active segment, so several server workers can share one directory. To replay, the writer
rotates the active segment and reads closed segments oldest first, deleting each only after its
rows are committed; a crash between commit and delete replays rows the database already has, which
the table's (request_id, record_index) key ignores. Segments left by a dead process are claimed
(renamed to this pid) and replayed too. A torn last line from a crash is skipped, not fatal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger(__name__)

SEGMENT_RE = re.compile(r"^spool-(\d+)-(\d+)\.jsonl$")
# Entries a server process wrote itself while its writer process could not take them.
INBOX_RE = re.compile(r"^inbox-(\d+)-(\d+)\.jsonl$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # kill() accepts a thread's id too. In a fresh container PIDs start over, so the PID of an
    # earlier container's writer is often a thread of the new writer itself: that segment's
    # owner is gone. Only a thread-group leader is a process (Linux; elsewhere trust kill()).
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    for line in status.splitlines():
        if line.startswith("Tgid:"):
            return int(line.split()[1]) == pid
    return True


def write_inbox(directory: Path, lines: list[bytes], max_bytes: int) -> bool:
    """Write entry lines as one complete inbox file (renamed into place whole); False when the
    spool directory already holds ``max_bytes`` or the disk refuses."""
    directory.mkdir(parents=True, exist_ok=True)
    data = b"".join(lines)
    try:
        used = sum(p.stat().st_size for p in directory.iterdir() if p.suffix == ".jsonl")
        if used + len(data) > max_bytes:
            return False
        final = directory / f"inbox-{os.getpid()}-{time.time_ns()}.jsonl"
        part = final.with_suffix(".part")
        part.write_bytes(data)
        os.replace(part, final)
    except OSError as exc:
        log.error("prediction log: cannot write to %s: %s", directory, exc)
        return False
    return True


class Spool:
    """Append-only JSON-lines segments in one directory, bounded by ``max_bytes`` in total."""

    def __init__(self, directory: Path, *, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._seq = 0
        self._active: IO[bytes] | None = None
        self._active_path: Path | None = None
        self._bytes = 0
        self._claim_orphans()
        self._bytes = sum(p.stat().st_size for p in self._own_segments())

    # -- appending (writer thread, or a request thread when the queue is full) ---------------

    def append(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Append rows as JSON objects; False (nothing written) past the bound or on a failed
        write. (The writer spools entry lines instead, ``append_lines``; replay reads both.)"""
        if not rows:
            return True
        return self._write(
            b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in rows)
        )

    def append_lines(self, lines: Sequence[bytes]) -> bool:
        """Append lines as they are (without their newlines): entry lines, not parsed."""
        return self._write(b"\n".join(lines) + b"\n") if lines else True

    def _write(self, data: bytes) -> bool:
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                return False
            start = None
            try:
                if self._active is None:
                    self._open_new_segment()
                assert self._active is not None
                start = self._active.tell()
                self._active.write(data)
                # Out of Python's buffer into the OS: survives a crash of this process.
                self._active.flush()
            except OSError as exc:
                log.error("prediction log spool write failed in %s: %s", self.directory, exc)
                self._abandon_segment(start)
                return False
            self._bytes += len(data)
            return True

    def _abandon_segment(self, start: int | None) -> None:
        """After a failed write (a full disk): cut the segment back to where the write began,
        so the rows reported as not spooled are not in it either (and no torn line is), close
        it without retrying what its buffer holds, and start a new one next time."""
        active, self._active = self._active, None
        if active is not None:
            with contextlib.suppress(OSError, ValueError):
                active.close()
        if start is not None and self._active_path is not None:
            with contextlib.suppress(OSError):
                os.truncate(self._active_path, start)
        self._active_path = None
        with contextlib.suppress(OSError):
            self._bytes = sum(p.stat().st_size for p in self._own_segments())

    def _open_new_segment(self) -> None:
        while True:
            self._seq += 1
            path = self.directory / f"spool-{self.pid}-{self._seq:08d}.jsonl"
            if not path.exists():
                break
        self._active_path = path
        self._active = open(path, "ab")  # noqa: SIM115 - kept open across appends

    # -- replaying (writer thread only) -------------------------------------------------------

    def closed_segments(self) -> list[Path]:
        """Rotate the active segment and return every segment of this process, oldest first."""
        with self._lock:
            if self._active is not None:
                self._active.close()
                self._active = None
                self._active_path = None
        self._claim_orphans()
        return self._own_segments()

    @staticmethod
    def read(path: Path, chunk_rows: int = 1000) -> Iterator[list[Any]]:
        """One segment's lines, parsed, in chunks of about ``chunk_rows`` rows: a row object
        (``{...}``) counts one, an entry line (``[n_rows, ...]``) its n_rows. Unparsable (torn)
        lines are skipped with a warning."""
        chunk: list[Any] = []
        rows = 0
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("skipping a torn line %d in spool segment %s", lineno, path)
                    continue
                chunk.append(item)
                rows += int(item[0]) if isinstance(item, list) and item else 1
                if rows >= chunk_rows:
                    yield chunk
                    chunk, rows = [], 0
        if chunk:
            yield chunk

    def remove(self, path: Path) -> None:
        size = path.stat().st_size if path.exists() else 0
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with self._lock:
            self._bytes = max(0, self._bytes - size)

    # -- state -----------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        return self._bytes

    def is_empty(self) -> bool:
        with self._lock:
            active_has_data = self._active is not None and self._active.tell() > 0
        return not active_has_data and not self._own_segments()

    def close(self) -> None:
        with self._lock:
            if self._active is not None:
                self._active.close()
                self._active = None
            # An empty active segment is noise for the next start.
            path = self._active_path
            if path is not None and path.exists() and path.stat().st_size == 0:
                path.unlink()
            self._active_path = None

    def _own_segments(self) -> list[Path]:
        found = []
        for path in self.directory.iterdir():
            m = SEGMENT_RE.match(path.name)
            if m and int(m.group(1)) == self.pid and path != self._active_path:
                found.append((int(m.group(2)), path))
        return [p for _, p in sorted(found)]

    def _claim_orphans(self) -> None:
        """Take over segments of processes that are gone, keeping their relative order."""
        orphans = []
        for path in self.directory.iterdir():
            m = SEGMENT_RE.match(path.name)
            if m and int(m.group(1)) != self.pid and not _pid_alive(int(m.group(1))):
                orphans.append((int(m.group(1)), int(m.group(2)), path))
        for _, _, path in sorted(orphans):
            with self._lock:
                self._seq += 1
                target = self.directory / f"spool-{self.pid}-{self._seq:08d}.jsonl"
            try:
                # rename is atomic: if another worker claimed it first, this one just misses.
                path.rename(target)
                with self._lock:
                    self._bytes += target.stat().st_size
            except FileNotFoundError:
                continue
