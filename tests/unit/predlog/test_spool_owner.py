"""A spool segment's owner is a process, not a thread that happens to carry its PID.

In a fresh container PIDs start over: the writer that spooled ``spool-8-*.jsonl`` before a
restart was PID 8, and after it PID 8 can be a thread of the new writer (PID 7). kill(8, 0)
succeeds on that thread; the segment must still count as orphaned, or it is never replayed
(tests/integration/test_images.py::test_spooled_rows_survive_a_container_restart).
"""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tabserve.predlog.spool import _pid_alive


def test_this_process_is_alive() -> None:
    assert _pid_alive(os.getpid())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread ids are Linux's")
def test_a_thread_id_is_not_a_live_owner() -> None:
    ready, done = threading.Event(), threading.Event()
    tid: list[int] = []

    def hold() -> None:
        tid.append(threading.get_native_id())
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        ready.wait(10)
        assert tid[0] != os.getpid()
        os.kill(tid[0], 0)  # the kernel answers for the thread ...
        assert not _pid_alive(tid[0])  # ... but it owns no segment
    finally:
        done.set()
        thread.join()
