"""The sweep's outputs: a Rich table on the terminal, results.csv and results.json.

results.json carries the machine the figures came from (CPU model, cores, load, versions):
latency numbers without the machine they were measured on cannot be compared.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from tabserve.loadtest.stats import LevelResult

CSV_NAME = "results.csv"
JSON_NAME = "results.json"
TABLE_WIDTH = 130
VERSIONED = ("tabserve", "numpy", "orjson", "httpx", "uvloop", "rich", "matplotlib", "locust")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Where the numbers come from; the generator shares these cores with the server."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in VERSIONED},
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _errors(result: LevelResult) -> str:
    if not result.errors:
        return "0"
    kinds = ", ".join(f"{k}: {v}" for k, v in result.errors_by_kind.items())
    return f"[red]{result.errors}[/] ({kinds})"


def results_table(results: Sequence[LevelResult], title: str | None = None) -> Table:
    """The reference table (avg and quantiles) plus throughput and errors, latency in ms."""
    open_loop = any(r.mode == "open" for r in results)
    caption = (
        "latency from each request's scheduled send time; late = wait before it left the client"
        if open_loop
        else "N = concurrent keep-alive connections; latency over successful answers"
    )
    table = Table(title=title, header_style="bold", caption=caption)
    table.add_column("rate/s" if open_loop else "N", justify="right")
    for name in ("requests", "errors", "req/s"):
        table.add_column(name, justify="right")
    if any(r.batch_size > 1 for r in results):
        table.add_column("rows/s", justify="right")
    for name in ("avg", "q25", "q50", "q90", "q95", "q99"):
        table.add_column(f"{name} ms", justify="right")
    if open_loop:
        table.add_column("late q99 ms", justify="right")
    for r in results:
        row = [
            f"{r.target_rate:g}" if open_loop and r.target_rate else str(r.concurrency),
            str(r.requests),
            _errors(r),
            f"{r.throughput_rps:,.0f}",
        ]
        if any(x.batch_size > 1 for x in results):
            row.append(f"{r.rows_per_s:,.0f}")
        row += [_ms(v) for v in (r.avg_ms, r.q25_ms, r.q50_ms, r.q90_ms, r.q95_ms, r.q99_ms)]
        if open_loop:
            row.append(_ms(r.send_delay_q99_ms))
        table.add_row(*row)
    return table


def print_table(results: Sequence[LevelResult], console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal and console.width < TABLE_WIDTH:
        # Piped or captured output defaults to 80 columns, which would truncate the figures.
        console = Console(width=TABLE_WIDTH)
    console.print(results_table(results))


def write_csv(results: Sequence[LevelResult], path: Path) -> Path:
    rows = [r.as_row() for r in results]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _finite(value: Any) -> Any:
    """NaN is not JSON: a level with no good answer has no latency, written as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write_json(results: Sequence[LevelResult], info: dict[str, Any], path: Path) -> Path:
    levels = [{k: _finite(v) for k, v in r.as_row().items()} for r in results]
    for level, result in zip(levels, results, strict=True):
        level["errors_by_kind"] = result.errors_by_kind
    document = {"run": info, "machine": machine_info(), "levels": levels}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path


def write_results(results: Sequence[LevelResult], info: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(results, out_dir / CSV_NAME)
    write_json(results, info, out_dir / JSON_NAME)
