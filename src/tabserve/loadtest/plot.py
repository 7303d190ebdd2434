"""latency.png: latency quantiles and throughput against concurrency.

matplotlib is imported here, not at package import, and with the Agg backend: the CLI must not
pay for it on --help, and a headless server has no display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tabserve.loadtest.stats import LevelResult

SERIES = (
    ("q25", "q25_ms"),
    ("q50", "q50_ms"),
    ("q90", "q90_ms"),
    ("q95", "q95_ms"),
    ("q99", "q99_ms"),
    ("avg", "avg_ms"),
)


def plot_sweep(results: Sequence[LevelResult], path: Path, title: str | None = None) -> Path:
    """Two panels sharing the concurrency axis: quantiles (ms) left, throughput (req/s) right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r.concurrency for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, attr in SERIES:
        style = "--" if label == "avg" else "-"
        left.plot(levels, [getattr(r, attr) for r in results], style, marker="o", label=label)
    left.set_xlabel("concurrency (connections)")
    left.set_ylabel("latency (ms)")
    left.set_title("latency quantiles")
    left.legend()
    right.plot(levels, [r.throughput_rps for r in results], marker="o", color="tab:green")
    right.set_xlabel("concurrency (connections)")
    right.set_ylabel("successful requests / s")
    right.set_title("throughput")
    right.set_ylim(bottom=0)
    for axis in (left, right):
        if len(levels) > 1 and max(levels) / max(min(levels), 1) >= 10:
            axis.set_xscale("log")
            axis.minorticks_off()
        axis.set_xticks(levels, [str(c) for c in levels])
        axis.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
