"""Rounds: the same servers measured several times, interleaved (A B A B ...), in one run.

On a shared machine a neighbour's burst lands on whichever server runs then; interleaving
spreads it over all of them, and the spread between rounds says how far to trust a ratio. The
report reads ``merge``'s view: per server, the median of each figure over its rounds, and
``spread`` — each figure's (min, max) — for the table to print beside the median.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

# The figures the tables and goals read (path into one server's result dict).
FIGURES: list[tuple[str, ...]] = [
    ("batch", "rows_per_s"),
    ("perf_analyzer", "throughput_rps"),
    ("perf_analyzer_binary", "throughput_rps"),
    ("perf_analyzer_grpc", "throughput_rps"),
    ("cold_start_s",),
    ("memory", "rss_mb"),
    ("memory", "max_process_rss_mb"),
]


def _get(result: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = result
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return float(value) if isinstance(value, int | float) else math.nan


def _set(result: dict[str, Any], path: tuple[str, ...], value: float) -> None:
    for key in path[:-1]:
        result = result.setdefault(key, {})
    result[path[-1]] = value


def base_name(name: str) -> str:
    return name.split("#", 1)[0]


def merge(servers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One entry per server: medians over its rounds, with ``rounds`` and ``spread``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, result in servers.items():
        groups.setdefault(base_name(name), []).append(result)
    merged: dict[str, dict[str, Any]] = {}
    for name, results in groups.items():
        first = results[0]
        out: dict[str, Any] = {k: v for k, v in first.items() if k not in ("single", "batch")}
        out["single"] = {}
        out["batch"] = dict(first.get("batch", {}))
        out["rounds"] = len(results)
        spread: dict[str, tuple[float, float]] = {}
        paths = list(FIGURES)
        for level in first.get("single", {}):
            for key in ("throughput_rps", "q50_ms", "q99_ms"):
                paths.append(("single", level, key))
            out["single"][level] = dict(first["single"][level])
        for path in paths:
            values = [v for v in (_get(r, path) for r in results) if math.isfinite(v)]
            if not values:
                continue
            _set(out, path, statistics.median(values))
            spread["/".join(path)] = (min(values), max(values))
        out["spread"] = spread
        out["errors_total"] = sum(
            int(v.get("errors", 0)) for r in results for v in r.get("single", {}).values()
        ) + sum(int(r.get("batch", {}).get("errors", 0)) for r in results)
        out["correctness"] = [c for r in results for c in r.get("correctness", [])]
        merged[name] = out
    return merged
