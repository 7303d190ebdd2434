"""Issue 7's goals, checked against a run's results (pass, miss, or not measured)."""

from __future__ import annotations

import math
from typing import Any

PEERS = ("handwritten", "mlflow", "mlserver")


def _single(results: dict[str, Any], server: str, level: int, key: str) -> float:
    value = results["servers"].get(server, {}).get("single", {}).get(str(level), {}).get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per goal: what, measured value, target, and pass (None when not measured)."""
    top = max(results["config"]["levels"])
    servers = results["servers"]
    ts = servers.get("tabserve", {})
    rate = _single(results, "tabserve", top, "throughput_rps")
    rows: list[dict[str, Any]] = []

    def add(goal: str, value: float, target: str, ok: bool | None) -> None:
        rows.append({"goal": goal, "value": value, "target": target, "pass": ok})

    floor = _single(results, "floor", top, "throughput_rps")
    ratio = rate / floor if floor else math.nan
    add(f"tabserve ÷ floor, c={top}", ratio, "≥ 0.5 (0.7 moonshot)", _cmp(ratio, 0.5, True))
    nolog = _single(results, "tabserve-nolog", top, "throughput_rps")
    r = nolog / floor if floor else math.nan
    add(f"tabserve-nolog ÷ floor, c={top}", r, "≥ 0.5 (0.7 moonshot)", _cmp(r, 0.5, True))
    for peer in PEERS:
        other = _single(results, peer, top, "throughput_rps")
        r = rate / other if other else math.nan
        add(f"tabserve ÷ {peer}, c={top}", r, "≥ 20", _cmp(r, 20, True))
    p99 = _single(results, "tabserve", top, "q99_ms")
    add(f"tabserve p99 at c={top}, ms", p99, "< 20", _cmp(p99, 20, False))
    for name in ("tabserve", "tabserve-2w"):
        rows_s = servers.get(name, {}).get("batch", {}).get("rows_per_s", math.nan)
        add(f"{name} 100-row batches, rows/s", rows_s, "≥ 150,000", _cmp(rows_s, 150_000, True))
    cold = ts.get("cold_start_s", math.nan)
    add("tabserve cold start, s", cold, "< 2", _cmp(cold, 2, False))
    rss = ts.get("memory", {}).get("max_process_rss_mb", math.nan)
    add("tabserve RSS per worker, MB", rss, "< 150", _cmp(rss, 150, False))
    return rows


def _cmp(value: Any, bound: float, at_least: bool) -> bool | None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value >= bound if at_least else value < bound
