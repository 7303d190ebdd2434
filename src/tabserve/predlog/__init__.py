"""The prediction log: every predicted record to SQL, off the request path, nothing lost.

Its own package because two sides use it and neither owns it: serving writes it (through the
``PredictionSink`` shape the data plane declares) and monitoring reads it (drift, quality).
It imports neither of them.

    writer.py   PredictionLog: bounded queue, background writer, spool fallback (the public API)
    rows.py     queued requests → rows, column-wise
    store.py    the table and the statements run against it (SQLite or PostgreSQL)
    spool.py    the append-only local file rows go to while the database is away
    metrics.py  its Prometheus counters and gauges
"""

from tabserve.predlog.writer import PredictionLog

__all__ = ["PredictionLog"]
