"""The prediction-log table and the few statements run against it (SQLAlchemy Core).

One table, the same code for SQLite (the embedded default, in WAL mode) and PostgreSQL. The
primary key is (request_id, record_index) and every insert is ``ON CONFLICT DO NOTHING``, so
replaying a spool, or a batch whose commit was not acknowledged, never duplicates a row.
Timestamps are naive UTC on both dialects so window queries compare the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

TABLE_NAME = "predictions"

metadata = sa.MetaData()

predictions = sa.Table(
    TABLE_NAME,
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("record_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.DateTime(timezone=False), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("prediction", sa.JSON),
    sa.Column("probabilities", sa.JSON),
    sa.Column("latency_ms", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
)
sa.Index("ix_predictions_model_ts", predictions.c.model_name, predictions.c.ts)

COLUMNS = tuple(c.name for c in predictions.columns)


def _dumps(value: Any) -> str:
    # orjson writes NaN as null, which is how a missing numeric input is stored.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _loads(value: Any) -> Any:
    # SQLite's NUMERIC affinity on a JSON column turns the text "0" into the integer 0.
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the report read while the server writes; NORMAL sync is safe with WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, *, connect_timeout_s: int = 5) -> Engine:
    """An engine for the log: fast JSON, bounded connect time, WAL on SQLite."""
    args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        args["timeout"] = connect_timeout_s  # seconds to wait on a locked database
    elif url.startswith("postgresql"):
        args["connect_timeout"] = connect_timeout_s
    engine = sa.create_engine(
        url,
        json_serializer=_dumps,
        json_deserializer=_loads,
        connect_args=args,
        pool_pre_ping=True,
    )
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create the table if missing; tolerate another process creating it at the same time."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(TABLE_NAME):
            raise


def insert_ignoring_duplicates(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows in one transaction; rows whose key exists already are skipped."""
    if not rows:
        return
    dialect = engine.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(predictions).on_conflict_do_nothing(
            index_elements=["request_id", "record_index"]
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(predictions).on_conflict_do_nothing(
            index_elements=["request_id", "record_index"]
        )
    else:  # pragma: no cover - other dialects are not supported targets
        raise ValueError(f"prediction log supports sqlite and postgresql, not {dialect}")
    with engine.begin() as conn:
        conn.execute(stmt, list(rows))


def utc_naive(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).replace(tzinfo=None)


def to_utc_naive(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC already; aware ones are converted."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def iter_window(
    engine: Engine,
    model_name: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    columns: Sequence[str] = ("ts", "model_version", "inputs", "prediction", "status"),
    chunk_rows: int = 20_000,
) -> Iterator[Sequence[Any]]:
    """Stream logged rows of one model in [since, until) in timestamp order (JSON as text)."""
    # JSON columns come back as their text, parsed by the caller with orjson: SQLAlchemy's JSON
    # result processing costs more than the rest of a 100k-row drift report.
    selected = [
        sa.cast(predictions.c[c], sa.Text) if isinstance(predictions.c[c].type, sa.JSON)
        else predictions.c[c]
        for c in columns
    ]  # fmt: skip
    stmt = sa.select(*selected)
    if model_name is not None:
        stmt = stmt.where(predictions.c.model_name == model_name)
    if since is not None:
        stmt = stmt.where(predictions.c.ts >= to_utc_naive(since))
    if until is not None:
        stmt = stmt.where(predictions.c.ts < to_utc_naive(until))
    stmt = stmt.order_by(predictions.c.ts)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk_rows).execute(stmt)
        for partition in result.partitions():
            yield from partition


def count_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one())
