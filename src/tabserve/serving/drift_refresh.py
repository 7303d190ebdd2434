"""The drift refresher (``tabserve serve --drift-interval 10m [--drift-window 24h]``): drift and
quality from the prediction log on an interval, as Prometheus gauges and as the model page's
report.

Serving never imports monitoring (it needs scipy and reads the log in bulk): a refresh runs
``tabserve drift MODEL_DIR --since WINDOW --json … --out …`` as a child process at a lower CPU
priority (``NICENESS`` steps below the server, as the log's writer), reads the JSON it wrote,
sets the gauges (serving/metrics.py: per-feature score and drifted, dataset drift, the model's
quality from ground truth) and renames the JSON and HTML into the report directory
(``settings.resolved_report_dir()``), where the model page's ``/report`` reads it.

One refresh per interval across ``--workers``, never two at once: every worker checks every
few seconds; the one that takes an exclusive ``flock`` on a stamp file in the directory the
workers share (the metrics directory) and finds the last refresh's start an interval old writes
the stamp and refreshes, holding the lock until it is done. The gauges are ``mostrecent`` in
multiprocess mode, so every worker's ``/metrics`` shows that refresh's values. A worker that
dies mid-refresh releases the lock with its file; the next interval runs anyway.

A refresh that fails (the log unreachable, the monitoring libraries missing, the child killed
after ``timeout``) is one log line and ``tabserve_drift_refreshes_total{outcome="failed"}``;
the gauges keep their last good values and ``tabserve_drift_last_refresh_timestamp_seconds``
says how old they are. An empty window (no traffic yet) is ``outcome="no_data"``, not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tabserve.errors import EmptyWindow
from tabserve.serving import metrics
from tabserve.serving.state import ServerState

log = logging.getLogger("tabserve.serving")

NICENESS = 10
STAMP = "drift-refresh.stamp"
MAX_CHECK_S = 5.0
QUALITY_METRICS = ("accuracy", "f1", "roc_auc", "rmse", "mae")


def shared_dir() -> Path:
    """Where the workers of one server meet: the multiprocess metrics directory, or (one
    worker) a private one."""
    found = os.environ.get(metrics.MULTIPROC_ENV)
    return Path(found) if found else Path(tempfile.mkdtemp(prefix="tabserve-drift-"))


class DriftRefresher:
    def __init__(
        self,
        state: ServerState,
        interval_s: float,
        window: str,
        *,
        directory: Path | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.state = state
        self.interval_s = interval_s
        self.window = window
        self.directory = directory or shared_dir()
        self.timeout_s = timeout_s or max(60.0, interval_s)
        self.check_s = min(MAX_CHECK_S, interval_s / 4)

    async def run(self) -> None:
        """Until cancelled: take a turn when one is due, refresh, never raise."""
        while True:
            try:
                turn = self._take_turn() if self.state.plane is not None else None
                if turn is not None:
                    with turn:  # held while refreshing: no other worker starts one meanwhile
                        await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # never take the server down; say so once per refresh
                metrics.DRIFT_REFRESHES.labels("failed").inc()
                log.exception("drift refresh failed")
            await asyncio.sleep(self.check_s)

    def _take_turn(self) -> BinaryIO | None:
        """The locked stamp file for the one worker whose turn it is (the stamp is an interval
        old), else None. The caller refreshes while holding it, then closes it."""
        handle = open(self.directory / STAMP, "a+b")  # noqa: SIM115 - held across the refresh
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return None  # another worker is refreshing (or deciding) right now
            handle.seek(0)
            try:
                last = float(handle.read() or 0)
            except ValueError:
                last = 0.0
            now = time.time()
            if now - last < self.interval_s:
                handle.close()
                return None
            handle.seek(0)
            handle.truncate()
            handle.write(repr(now).encode())
            handle.flush()
            return handle
        except BaseException:
            handle.close()
            raise

    async def refresh(self) -> str:
        """One refresh: the child, the gauges, the report. Returns the outcome."""
        plane = self.state.plane
        if plane is None:
            return "no_data"
        settings = self.state.settings
        report_dir = settings.resolved_report_dir()
        report_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".drift-refresh-", dir=report_dir))
        started = time.perf_counter()
        try:
            outcome, detail = await self._run_child(plane.model_dir.path, work)
            if outcome == "ok":
                report = orjson.loads((work / "drift.json").read_bytes())
                self._set_gauges(plane.model_name, report)
                for name in ("drift.html", "drift.json"):  # the JSON last: the page reads it
                    os.replace(work / name, report_dir / name)
                metrics.DRIFT_REFRESHED_AT.set(time.time())
        finally:
            for leftover in work.iterdir():
                leftover.unlink(missing_ok=True)
            work.rmdir()
        elapsed = time.perf_counter() - started
        metrics.DRIFT_REFRESH_SECONDS.set(elapsed)
        metrics.DRIFT_REFRESHES.labels(outcome).inc()
        if outcome == "failed":
            log.warning("drift refresh failed after %.1f s: %s", elapsed, detail)
        elif outcome == "no_data":
            log.info("drift refresh: %s", detail)
        else:
            log.info("drift refresh: %s (%.1f s)", detail, elapsed)
        return outcome

    async def _run_child(self, model_path: Path, work: Path) -> tuple[str, str]:
        settings = self.state.settings
        argv = [
            sys.executable, "-m", "tabserve", "drift", str(model_path),
            "--since", self.window,
            "--json", str(work / "drift.json"), "--out", str(work / "drift.html"),
        ]  # fmt: skip
        log_db = settings.resolved_log_db()
        if log_db is None:
            return "failed", "the prediction log is off (--log-db off): nothing to refresh from"
        argv += ["--log-db", log_db]
        env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
        env["TABSERVE_HOME"] = str(settings.home)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
        )
        with contextlib.suppress(OSError):  # the server's requests win a contended core
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0)
                           + NICENESS)  # fmt: skip
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            return "failed", f"`tabserve drift` took longer than {self.timeout_s:.0f} s; killed"
        if process.returncode == 0:
            lines = out.decode(errors="replace").strip().splitlines()
            return "ok", lines[0] if lines else "done"
        last = (err or out).decode(errors="replace").strip().splitlines()
        detail = last[-1] if last else f"`tabserve drift` exited {process.returncode}"
        if process.returncode == EmptyWindow.exit_code:
            return "no_data", detail.removeprefix("error: ")
        return "failed", detail.removeprefix("error: ")

    @staticmethod
    def _set_gauges(model: str, report: dict[str, Any]) -> None:
        for feature in report.get("features") or []:
            name = str(feature.get("name"))
            value = feature.get("value")
            if value is not None:
                metrics.FEATURE_DRIFT_SCORE.labels(model, name).set(float(value))
            metrics.FEATURE_DRIFTED.labels(model, name).set(1 if feature.get("drifted") else 0)
        metrics.DATASET_DRIFT.labels(model).set(1 if report.get("dataset_drift") else 0)
        overall = (report.get("quality") or {}).get("overall") or {}
        for name in QUALITY_METRICS:
            value = overall.get(name)
            if isinstance(value, int | float):
                metrics.MODEL_QUALITY.labels(model, name).set(float(value))
