"""Many connections at once against one worker: what each answer was, and how long it took.

    python benchmarks/connections.py --connections 1000 [--before ../baseline/src] [--rounds 2]

Trains a Titanic model, serves it with one worker (ONNX, batching, prediction log on SQLite)
and drives it closed-loop with N keep-alive connections at once (tabserve's load tester), each
sending its next request when its answer came. Reports, per server: answers by kind (200, 503 +
Retry-After from load shedding, timeouts, refused connections), good answers per second, their
p50/p99, and the server's peak RSS. With ``--before SRC`` the same runs, interleaved, for the
tabserve in another checkout's ``src/`` (its own defaults). Writes connections.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import orjson
import psutil
from rich.console import Console
from rich.table import Table

from tabserve.loadtest.sweep import run_sweep


class PeakRss:
    """Samples a process tree's largest process RSS every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                root = psutil.Process(self.pid)
                rss = max(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            self.peak_mb = max(self.peak_mb, rss / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def one_run(label: str, src: Path | None, model: Path, work: Path, args: Any) -> dict[str, Any]:
    from tabserve.local_server import free_port, stop, wait_ready

    port = free_port()
    home = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    env = {**os.environ, "TABSERVE_HOME": str(home), "TABSERVE_LOG_DB": f"sqlite:///{home}/log.db"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    server = subprocess.Popen(
        [sys.executable, "-m", "tabserve", "serve", str(model), "--port", str(port)],
        env=env, stdout=(home / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, server)
        except Exception:
            sys.stderr.write((home / "server.log").read_text()[-3000:])
            raise
        run_sweep(url, [50], 2_000, None, progress=False)  # warm
        peak = PeakRss(server.pid)
        level = run_sweep(
            url, [args.connections], args.requests, None, warmup=0, timeout=30.0, progress=False
        )[0]
        peak_mb = peak.stop()
    finally:
        stop(server)
    return {
        "server": label, "connections": args.connections, "answers": level.requests,
        "ok": level.ok, "by_kind": level.errors_by_kind, "ok_per_s": level.throughput_rps,
        "p50_ms": level.q50_ms, "p99_ms": level.q99_ms, "max_ms": level.max_ms,
        "peak_rss_mb": peak_mb,
    }  # fmt: skip


TRAIN = """
import sys
from pathlib import Path
from tabserve.datasets import DATASETS, load_builtin
from tabserve.training import fit_model_dir
fit_model_dir(load_builtin("titanic"), DATASETS["titanic"].target, Path(sys.argv[1]), "logistic",
              name="titanic")
"""


def train(out: Path, src: Path | None) -> Path:
    """A Titanic logistic model directory, trained by ``src``'s tabserve (this one's if None)."""
    env = {**os.environ, **({"PYTHONPATH": str(src)} if src else {})}
    subprocess.run([sys.executable, "-c", TRAIN, str(out)], env=env, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--requests", type=int, default=30_000)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--before", type=Path, help="src/ of another checkout, run beside this one")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/connections"))
    args = p.parse_args(argv)
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="tabserve-connections-"))
    # Trained by the older checkout when there is one: a newer tabserve reads an older model
    # directory, not the other way round.
    model_path = train(work / "model", args.before.resolve() if args.before else None)
    plan: list[tuple[str, Path | None]] = [("tabserve", None)]
    if args.before:
        plan.insert(0, ("before", args.before.resolve()))
    results = []
    for _ in range(args.rounds):
        for label, src in plan:
            result = one_run(label, src, model_path, work, args)
            console.print(result)
            results.append(result)
    table = Table(title=f"{args.connections} connections, closed loop, one worker")
    for column in ("server", "answers", "200", "other answers", "ok/s", "p50 ms", "p99 ms",
                   "peak RSS MB"):  # fmt: skip
        table.add_column(column, justify="left" if column == "server" else "right")
    for r in results:
        other = ", ".join(f"{k} {v:,}" for k, v in sorted(r["by_kind"].items())) or "—"
        table.add_row(r["server"], f"{r['answers']:,}", f"{r['ok']:,}", other,
                      f"{r['ok_per_s']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                      f"{r['peak_rss_mb']:.0f}")  # fmt: skip
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "connections.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
