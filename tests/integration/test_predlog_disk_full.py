"""A full disk under the prediction log: a real tmpfs, a real unreachable database.

Rows go to the spool while the disk has room, are dropped *and counted* once it is full (never an
exception on the request path), and what was spooled reaches the database exactly once when it
is back. The database password never shows in what the processes print.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).parents[1] / "helpers" / "predlog_disk_full.py"
TMPFS_BYTES = 1024 * 1024
SECRET = "s3cr3t-disk-full"


def _run_in_own_mount_namespace(
    spool: Path, db: Path, requests: int
) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None:
        pytest.skip("util-linux's unshare is not installed")
    down = f"postgresql+psycopg://tabserve:{SECRET}@127.0.0.1:9/tabserve"  # port 9: refused
    script = f'mount -t tmpfs -o size={TMPFS_BYTES} tabserve-spool "$1" && shift && exec "$@"'
    argv = [sys.executable, str(HELPER), str(spool), down, str(db), str(requests)]
    flags = ["--mount"] if os.geteuid() == 0 else ["--mount", "--map-root-user"]
    probe = subprocess.run(["unshare", *flags, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.strip()}")
    return subprocess.run(
        ["unshare", *flags, "sh", "-c", script, "sh", str(spool), *argv],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_a_full_disk_drops_and_counts_and_the_spooled_rows_replay_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    requests = 10_000  # 30,000 rows, ~6 MB of spool lines: six times what the tmpfs holds
    done = _run_in_own_mount_namespace(spool, tmp_path / "p.db", requests)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    first, second = out["first"], out["second"]
    submitted = 3 * requests
    assert out["accepted"] == requests  # submit never failed a request
    assert first["written"] == 0 and first["db_up"] is False, out
    assert first["spooled"] > 0, (out, done.stderr[-3000:])
    assert first["dropped"] > 0, "the disk never filled: make the tmpfs smaller"
    assert first["spooled"] + first["dropped"] == submitted  # every row accounted for
    assert out["disk_free"] < TMPFS_BYTES // 8  # the tmpfs really was full (to one batch)
    # Back: the spooled rows replay, each once (the table's key); nothing dropped comes back.
    assert out["flushed"] is True
    # A failed append is cut back out of its segment: what was counted spooled is exactly
    # what the spool held, and what was counted dropped is not in it.
    assert out["rows"] == second["written"] == first["spooled"]
    assert SECRET not in done.stdout + done.stderr
