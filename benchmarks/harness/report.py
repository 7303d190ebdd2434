"""What a run leaves behind: the table (terminal and Markdown), results.json, a PNG, the machine.

Every figure in a row is followed by its ratio to the ``tabserve`` row (batching on, one
worker), so a reader compares servers measured in the same run on the same machine, not
absolute numbers on a shared 2-core box.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

REFERENCE = "tabserve"
TIMES = "\u00d7"  # the multiplication sign, as in "(0.05 times)"
VERSIONED = ("tabserve", "fastapi", "uvicorn", "onnxruntime", "scikit-learn", "mlflow", "numpy")


def machine_info(peer_versions: dict[str, str]) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "load_average": os.getloadavg(),
        "versions": {**versions, **peer_versions},
        "git": _git_head(),
    }


def _git_head() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def _ratio(value: float, ref: float) -> str:
    if not (math.isfinite(value) and math.isfinite(ref)) or ref == 0:
        return ""
    r = value / ref
    return f" ({r:.2f}{TIMES})" if r < 10 else f" ({r:.0f}{TIMES})"


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _fmt(value: float, digits: int = 0) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def columns(results: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(header, path into one server's merged result) for every column."""
    levels = results["config"]["levels"]
    top = max(levels)
    cols: list[tuple[str, tuple[str, ...]]] = [
        (f"c={c} req/s", ("single", str(c), "throughput_rps")) for c in levels
    ]
    cols += [
        (f"p50 ms c={top}", ("single", str(top), "q50_ms")),
        (f"p99 ms c={top}", ("single", str(top), "q99_ms")),
        ("batch100 c=4 rows/s", ("batch", "rows_per_s")),
        ("perf_analyzer json /s", ("perf_analyzer", "throughput_rps")),
        ("perf_analyzer binary /s", ("perf_analyzer_binary", "throughput_rps")),
        ("perf_analyzer gRPC /s", ("perf_analyzer_grpc", "throughput_rps")),
        ("cold start s", ("cold_start_s",)),
        ("RSS MB", ("memory", "rss_mb")),
    ]
    return cols


def value_at(server: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = server
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return _num(value)


def _errors(server: dict[str, Any]) -> str:
    total = int(server.get("errors_total", 0))
    failed = [k for k, v in server.get("single", {}).items() if "failed" in v]
    text = str(total)
    if failed or server.get("failed"):
        text += " + failed"
    return text


def _correct(server: dict[str, Any]) -> str:
    checks = server.get("correctness", [])
    if not checks:
        return "n/a" if server.get("kind") == "floor" else "—"
    checked = sum(c["checked"] for c in checks)
    bad = sum(c["wrong"] + c["failed"] for c in checks)
    return f"{checked - bad}/{checked}"


def tables(results: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Two tables (throughput by concurrency; everything else), one row per server."""
    from harness.rounds import merge

    servers = merge(results["servers"])
    ref = servers.get(REFERENCE, {})
    cols = columns(results)
    n_levels = len(results["config"]["levels"])
    groups = [
        (
            "single record, closed loop: requests/s (ratio to tabserve) [range over rounds]",
            cols[:n_levels],
            False,
        ),
        (
            "latency, batches, perf_analyzer, start-up, memory (ratio to tabserve) [range]",
            cols[n_levels:],
            True,
        ),
    ]
    out = []
    for title, group, with_checks in groups:
        header = ["server", *[h for h, _ in group]] + (["errors", "correct"] if with_checks else [])
        body = []
        for name, server in servers.items():
            rounds = server.get("rounds", 1)
            cells = [name if rounds == 1 else f"{name} ({rounds} rounds)"]
            for head, path in group:
                value, base = value_at(server, path), value_at(ref, path)
                digits = 2 if head.startswith(("p50", "p99", "cold")) else 0
                cell = _fmt(value, digits)
                if name != REFERENCE and math.isfinite(value):
                    cell += _ratio(value, base)
                low_high = server.get("spread", {}).get("/".join(path))
                if rounds > 1 and low_high and low_high[0] != low_high[1]:
                    cell += f" [{_fmt(low_high[0], digits)}..{_fmt(low_high[1], digits)}]"
                cells.append(cell)
            if with_checks:
                cells += [_errors(server), _correct(server)]
            body.append(cells)
        out.append((title, header, body))
    return out


def print_table(results: dict[str, Any], console: Console) -> None:
    for title, header, body in tables(results):
        table = Table(title=title)
        for h in header:
            table.add_column(h, justify="left" if h == "server" else "right")
        for row in body:
            table.add_row(*row)
        console.print(table)
    m = results["machine"]
    console.print(
        f"{m['date']} · {m['cpu']} · {m['cores']} cores · Python {m['python']} · "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average'])}"
    )


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for title, header, body in tables(results):
        lines += [f"**{title}**", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        lines.append("")
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines += [f"{m['date']} · {m['cpu']} · {m['cores']} cores · Python {m['python']} · {versions}"]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    (out / "results.json").write_bytes(orjson.dumps(_finite(results), option=options))
    (out / "results.md").write_text(markdown(results))
    chart(results, out / "serving.png")


def _finite(value: Any) -> Any:
    """NaN is not JSON: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def chart(results: dict[str, Any], path: Path) -> None:
    """Left: single-record req/s by concurrency (log scale). Right: 100-row batches, rows/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.rounds import merge

    levels = results["config"]["levels"]
    servers = merge(results["servers"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for name, server in servers.items():
        ys = [_num(server.get("single", {}).get(str(c), {}).get("throughput_rps")) for c in levels]
        style = "--" if server.get("kind") == "floor" else "-"
        left.plot(levels, ys, style, marker="o", label=name)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xticks(levels, [str(c) for c in levels])
    left.set_xlabel("concurrency (closed loop, single record)")
    left.set_ylabel("requests / s (log)")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    names = list(servers)
    rows_s = [_num(servers[n].get("batch", {}).get("rows_per_s")) for n in names]
    bars = right.barh(names, [0 if math.isnan(v) else v for v in rows_s], color="tab:blue")
    right.bar_label(bars, labels=[_fmt(v) for v in rows_s], fontsize=8, padding=2)
    right.set_xlabel("rows / s, 100-row batches at c=4")
    right.invert_yaxis()
    m = results["machine"]
    fig.suptitle(f"tabserve serving benchmark · {m['date']} · {m['cpu']} · {m['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
