"""The prediction log: every predicted record to SQL, off the request path, nothing lost.

Its own package because two sides use it and neither owns it: serving writes it (through the
``PredictionSink`` shape the data plane declares) and monitoring reads it (drift, quality).
It imports neither of them.

    writer.py   PredictionLog, the serving side: one line per request to the writer process
    process.py  the writer process: lines → rows → the database, spool, replay, quarantine
    entries.py  the line format (one per request) and the rows made from it (one per record)
    store.py    the table and the statements run against it (SQLite or PostgreSQL)
    spool.py    the append-only local files lines go to while the database is away or slow
    metrics.py  its Prometheus counters and gauges (the serving side sets them)

``PredictionLog`` is imported on first use: the writer process imports this package too, and
needs neither the serving side's metrics nor numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tabserve.predlog.writer import PredictionLog

__all__ = ["PredictionLog"]


def __getattr__(name: str) -> Any:
    if name == "PredictionLog":
        from tabserve.predlog.writer import PredictionLog

        return PredictionLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
