"""Per-level statistics: latency quantiles over good answers, errors by kind, throughput.

Quantiles are taken over successful requests only: a server that answers 500 in 50 µs must show
up as errors, not as a fast row. Throughput counts successful requests per second of wall time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# The reference table's columns, in its order.
QUANTILES: tuple[tuple[str, float], ...] = (
    ("q25", 0.25),
    ("q50", 0.50),
    ("q90", 0.90),
    ("q95", 0.95),
    ("q99", 0.99),
)


def quantiles_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """The table's quantiles in milliseconds, numpy's default (linear) interpolation; NaN for
    an empty sample."""
    if not latencies_s:
        return {name: math.nan for name, _ in QUANTILES}
    values = np.quantile(
        np.asarray(latencies_s, dtype=np.float64) * 1000.0, [q for _, q in QUANTILES]
    )
    return {name: float(v) for (name, _), v in zip(QUANTILES, values, strict=True)}


@dataclass
class LevelResult:
    """One row of the table: a concurrency level (closed loop) or a target rate (open loop)."""

    mode: str  # "closed" or "open"
    concurrency: int  # connections used
    requests: int  # requests whose outcome is known (ok + errors)
    ok: int
    errors: int
    errors_by_kind: dict[str, int]
    elapsed_s: float
    throughput_rps: float  # successful requests per second
    rows_per_s: float  # predictions per second (throughput * batch size)
    avg_ms: float
    q25_ms: float
    q50_ms: float
    q90_ms: float
    q95_ms: float
    q99_ms: float
    min_ms: float
    max_ms: float
    batch_size: int = 1
    # Open loop only: the schedule asked for, and how late requests left the client (queueing
    # that a closed-loop tool would silently leave out of the latency).
    target_rate: float | None = None
    send_delay_q99_ms: float | None = None
    # CPU time the load generator itself spent per request (its own ceiling, see closed_loop).
    client_us_per_request: float | None = None

    def as_row(self) -> dict[str, Any]:
        """A flat dict for CSV: errors by kind as one ``kind=count;…`` cell."""
        row = asdict(self)
        row["errors_by_kind"] = ";".join(f"{k}={v}" for k, v in sorted(self.errors_by_kind.items()))
        return row


def summarize(
    *,
    mode: str,
    concurrency: int,
    latencies_ok: Sequence[float],
    errors_by_kind: Counter[str] | dict[str, int],
    elapsed_s: float,
    batch_size: int = 1,
    target_rate: float | None = None,
    send_delays: Sequence[float] | None = None,
) -> LevelResult:
    """Build a LevelResult from raw samples; latencies and delays are in seconds."""
    ok = len(latencies_ok)
    errors = sum(errors_by_kind.values())
    ms = np.asarray(latencies_ok, dtype=np.float64) * 1000.0
    qs = quantiles_ms(latencies_ok)
    throughput = ok / elapsed_s if elapsed_s > 0 else 0.0
    delay_q99 = None
    if send_delays is not None:
        delay_q99 = float(np.quantile(send_delays, 0.99)) * 1000.0 if send_delays else math.nan
    return LevelResult(
        mode=mode,
        concurrency=concurrency,
        requests=ok + errors,
        ok=ok,
        errors=errors,
        errors_by_kind=dict(sorted(errors_by_kind.items())),
        elapsed_s=elapsed_s,
        throughput_rps=throughput,
        rows_per_s=throughput * batch_size,
        avg_ms=float(ms.mean()) if ok else math.nan,
        q25_ms=qs["q25"],
        q50_ms=qs["q50"],
        q90_ms=qs["q90"],
        q95_ms=qs["q95"],
        q99_ms=qs["q99"],
        min_ms=float(ms.min()) if ok else math.nan,
        max_ms=float(ms.max()) if ok else math.nan,
        batch_size=batch_size,
        target_rate=target_rate,
        send_delay_q99_ms=delay_q99,
    )
