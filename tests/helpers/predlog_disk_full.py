"""The prediction log on a full disk, run as a real process over a real (small) tmpfs.

Run inside a private mount namespace with ``SPOOL`` a tmpfs of a few hundred KiB (the test does
``unshare -m`` and the mount). Phase 1: the database is unreachable, so rows go to the spool
until the disk is full; then they are dropped and counted, and ``submit`` never raises. Phase 2:
a reachable database and the same spool directory; what was spooled is replayed. Prints one JSON
object with both phases' counts on stdout.

    python tests/helpers/predlog_disk_full.py SPOOL DOWN_URL DB_PATH REQUESTS
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from tabserve.predlog import PredictionLog
from tabserve.predlog.store import count_rows

COLUMNS = {"Age": np.array([22.0, 38.0, 30.0]), "Sex": np.array(["male", "female", "male"])}
PREDS = np.array([0, 1, 0])
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])


def settle(plog: PredictionLog, timeout: float = 60.0) -> None:
    """Until the writer has handled (spooled or dropped) every submitted row."""
    deadline = time.monotonic() + timeout
    while plog.stats()["pending"] > 0 and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    spool, down_url, db_path, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    plog = PredictionLog(down_url, spool_dir=spool, retry_interval_s=0.2, connect_timeout_s=1)
    accepted = sum(
        plog.submit(f"r{i}", "titanic", "1", COLUMNS, 3, PREDS, PROBS, [0, 1], latency_ms=1.0)
        for i in range(n)
    )
    settle(plog)
    first = plog.stats()
    plog.close()
    usage = shutil.disk_usage(spool)

    replay = PredictionLog(f"sqlite:///{db_path}", spool_dir=spool, retry_interval_s=0.2)
    replayed = replay.flush(60)
    rows = count_rows(replay.engine)
    second = replay.stats()
    replay.close()
    print(json.dumps({
        "accepted": accepted, "first": first, "disk_free": usage.free, "disk_total": usage.total,
        "flushed": replayed, "rows": rows, "second": second,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
