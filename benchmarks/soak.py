"""Soak: one tabserve worker at ~70 % of its measured capacity for N minutes (open loop).

    python benchmarks/soak.py --minutes 10 --out benchmarks/results/soak/     (make soak)

Trains a Titanic model, serves it with its defaults (ONNX, batching, the prediction log on
SQLite), measures its capacity (closed loop, c=50, 5 s), then sends 70 % of that rate on a
fixed schedule, one minute at a time, and reports per minute: requests, errors, p50/p99
(latency from the scheduled send time: coordinated omission is not hidden), and the RSS of the
server and of its prediction-log writer. Goals: RSS growth < 5 %, 0 errors, p99 flat. Writes
soak.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import psutil
from rich.console import Console
from rich.table import Table

from tabserve.loadtest.sweep import run_open, run_sweep


def rss_mb(pid: int) -> tuple[float, float]:
    """(server process, its children: the prediction-log writer) RSS in MB."""
    proc = psutil.Process(pid)
    children = sum(c.memory_info().rss for c in proc.children(recursive=True))
    return proc.memory_info().rss / 2**20, children / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--share", type=float, default=0.7, help="share of the measured capacity")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/soak"))
    args = p.parse_args(argv)
    console = Console()
    from tabserve.datasets import DATASETS, load_builtin
    from tabserve.local_server import free_port, stop, wait_ready
    from tabserve.training import fit_model_dir

    work = Path(tempfile.mkdtemp(prefix="tabserve-soak-"))
    model = fit_model_dir(load_builtin("titanic"), DATASETS["titanic"].target, work / "model",
                          "logistic", name="titanic")  # fmt: skip
    port = free_port()
    import os
    import subprocess

    env = {**os.environ, "TABSERVE_HOME": str(work), "TABSERVE_LOG_DB": f"sqlite:///{work}/log.db"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tabserve", "serve", str(model.path), "--port", str(port)],
        env=env, stdout=(work / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    minutes: list[dict[str, Any]] = []
    try:
        wait_ready(url, server)
        capacity = run_sweep(url, [50], 20_000, None, progress=False)[0].throughput_rps
        rate = capacity * args.share
        console.print(f"capacity {capacity:,.0f} req/s at c=50; soaking at {rate:,.0f} req/s")
        start_rss = rss_mb(server.pid)
        for minute in range(1, args.minutes + 1):
            level = run_open(url, rate, 60.0, connections=128, progress=False)
            server_rss, writer_rss = rss_mb(server.pid)
            minutes.append({
                "minute": minute, "requests": level.requests, "errors": level.errors,
                "errors_by_kind": level.errors_by_kind, "p50_ms": level.q50_ms,
                "p99_ms": level.q99_ms, "server_rss_mb": server_rss, "writer_rss_mb": writer_rss,
            })  # fmt: skip
            console.print(
                f"  minute {minute}: {level.requests} requests, {level.errors} errors, "
                f"p99 {level.q99_ms:.1f} ms, RSS {server_rss:.0f} + {writer_rss:.0f} MB"
            )
    finally:
        stop(server)
    table = Table(title=f"soak at {rate:,.0f} req/s ({args.share:.0%} of {capacity:,.0f})")
    for col in (
        "minute",
        "requests",
        "errors",
        "p50 ms",
        "p99 ms",
        "server RSS MB",
        "writer RSS MB",
    ):
        table.add_column(col, justify="right")
    for m in minutes:
        table.add_row(str(m["minute"]), f"{m['requests']:,}", str(m["errors"]),
                      f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['server_rss_mb']:.0f}",
                      f"{m['writer_rss_mb']:.0f}")  # fmt: skip
    console.print(table)
    growth = (minutes[-1]["server_rss_mb"] - minutes[0]["server_rss_mb"]) / minutes[0][
        "server_rss_mb"
    ]
    errors = sum(m["errors"] for m in minutes)
    console.print(f"RSS at start {start_rss[0]:.0f} MB (writer {start_rss[1]:.0f}); server RSS "
                  f"growth from minute 1 to {len(minutes)}: {growth:+.1%} (goal < 5 %); "
                  f"errors {errors} (goal 0)")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"capacity_rps": capacity, "rate_rps": rate, "start_rss_mb": start_rss,
              "minutes": minutes, "rss_growth": growth, "errors": errors}  # fmt: skip
    (args.out / "soak.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0 if errors == 0 and growth < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
