"""The performance goals (issues 7 and 14), checked against a run's merged results: the median
over rounds of each figure; pass, miss, or not measured."""

from __future__ import annotations

import math
from typing import Any

from harness.rounds import merge

PEERS = ("handwritten", "mlflow", "mlserver")


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per goal: what, measured value, target, and pass (None when not measured)."""
    top = max(results["config"]["levels"])
    servers = merge(results["servers"])
    rows: list[dict[str, Any]] = []

    def single(server: str, key: str) -> float:
        value = servers.get(server, {}).get("single", {}).get(str(top), {}).get(key)
        return float(value) if isinstance(value, int | float) else math.nan

    def add(goal: str, value: float, target: str, ok: bool | None) -> None:
        rows.append({"goal": goal, "value": value, "target": target, "pass": ok})

    rate, p99 = single("tabserve", "throughput_rps"), single("tabserve", "q99_ms")
    onnx_rate, onnx_p99 = (
        single("handwritten-onnx", "throughput_rps"),
        single("handwritten-onnx", "q99_ms"),
    )
    add(f"tabserve ÷ hand-written FastAPI+onnxruntime, c={top}", rate / onnx_rate, "≥ 2.0",
        _cmp(rate / onnx_rate, 2.0, True))  # fmt: skip
    add(f"tabserve p99 ÷ hand-written ONNX p99, c={top}", p99 / onnx_p99, "≤ 0.5",
        _cmp(p99 / onnx_p99, 0.5, False, inclusive=True))  # fmt: skip
    floor = single("floor", "throughput_rps")
    add(f"tabserve ÷ FastAPI constant floor, c={top}", rate / floor, "≥ 0.9",
        _cmp(rate / floor, 0.9, True))  # fmt: skip
    nolog, nolog_p99 = (
        single("tabserve-nolog", "throughput_rps"),
        single("tabserve-nolog", "q99_ms"),
    )
    add(f"log on ÷ log off, c={top}", rate / nolog, "≥ 0.95", _cmp(rate / nolog, 0.95, True))
    add(f"log-on p99 ÷ log-off p99, c={top}", p99 / nolog_p99, "≤ 1.2",
        _cmp(p99 / nolog_p99, 1.2, False, inclusive=True))  # fmt: skip
    for peer in PEERS:
        other = single(peer, "throughput_rps")
        add(f"tabserve ÷ {peer}, c={top}", rate / other, "≥ 20", _cmp(rate / other, 20, True))
    rows_s = servers.get("tabserve", {}).get("batch", {}).get("rows_per_s", math.nan)
    add("tabserve 100-row batches, rows/s", rows_s, "≥ 300,000", _cmp(rows_s, 300_000, True))
    grpc = servers.get("tabserve-grpc", {})
    g = grpc.get("perf_analyzer_grpc", {}).get("throughput_rps", math.nan)
    rest = grpc.get("perf_analyzer_binary", {}).get("throughput_rps", math.nan)
    add("gRPC ÷ REST (perf_analyzer, binary v2)", g / rest, "≥ 1.5", _cmp(g / rest, 1.5, True))
    cold = results.get("cold_start", {})
    add("cold start, cached model, s", cold.get("cached_s", math.nan), "< 1.0",
        _cmp(cold.get("cached_s", math.nan), 1.0, False))  # fmt: skip
    add("cold start, first resolve (adoption), s", cold.get("first_s", math.nan), "< 3",
        _cmp(cold.get("first_s", math.nan), 3.0, False))  # fmt: skip
    rss = servers.get("tabserve", {}).get("memory", {}).get("max_process_rss_mb", math.nan)
    add("tabserve RSS per worker, MB", rss, "< 150", _cmp(rss, 150, False))
    return rows


def _cmp(value: Any, bound: float, at_least: bool, inclusive: bool = False) -> bool | None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if at_least:
        return value >= bound
    return value <= bound if inclusive else value < bound
