"""Load testing a tabserve service: concurrency sweep, open loop, quantile table, plot, Locust.

From Python (what ``make demo`` calls)::

    from tabserve.loadtest import run_sweep, run_open, print_table

    results = run_sweep("http://127.0.0.1:8000", [1, 2, 5, 10, 20, 50], 500, "results/")
    print_table(results)            # the Rich table; results/ has results.csv/.json, latency.png
    open_loop = run_open("http://127.0.0.1:8000", rate=2000, duration=30)

Modules: ``payloads`` (bodies from the FeatureSpec or a CSV), ``client`` (raw HTTP/1.1 keep-alive
on asyncio), ``closed_loop`` / ``open_loop`` (the generators), ``answers`` (answer checks),
``stats`` (quantiles), ``report`` / ``plot`` (outputs), ``locustfile``, ``ceiling`` (vs wrk).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tabserve.loadtest.report import print_table
    from tabserve.loadtest.stats import LevelResult
    from tabserve.loadtest.sweep import run_open, run_sweep

__all__ = ["LevelResult", "print_table", "run_open", "run_sweep"]

_HOMES = {
    "run_sweep": "tabserve.loadtest.sweep",
    "run_open": "tabserve.loadtest.sweep",
    "print_table": "tabserve.loadtest.report",
    "LevelResult": "tabserve.loadtest.stats",
}


def __getattr__(name: str) -> Any:
    # Lazy, so importing one submodule (e.g. stats) does not pull in rich, httpx and the rest.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'tabserve.loadtest' has no attribute {name!r}")
