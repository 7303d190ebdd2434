"""The prediction-log tables and the few statements run against them (SQLAlchemy Core).

``predictions``, and ``feedback`` beside it (ground truth: see feedback.py and
``FeedbackInserter``); the same code for SQLite (the embedded default, in WAL mode) and
PostgreSQL. The primary key is (request_id, record_index) — the server's own request id, unique by
construction — and every insert is ``ON CONFLICT DO NOTHING``, so replaying a spool, or a batch
whose commit was not acknowledged, never duplicates a row. The client's ``X-Request-ID`` is
kept in its own column for correlation: a client cannot collide with another request's key or
make a row too long for it. Timestamps are naive UTC on both dialects so window queries compare
the same way everywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tabserve.predlog.entries import CLIENT_ID_MAX

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
    # Added after the first release: ensure_schema adds it to older tables.
    sa.Column("client_request_id", sa.String(CLIENT_ID_MAX)),
)
sa.Index("ix_predictions_model_ts", predictions.c.model_name, predictions.c.ts)

COLUMNS = tuple(c.name for c in predictions.columns)

FEEDBACK_TABLE = "feedback"
# Ground truth, keyed as given: the server's request id or the client's X-Request-ID (so as
# wide as a client id may be). The report joins it to ``predictions`` (monitoring/quality.py).
feedback = sa.Table(
    FEEDBACK_TABLE,
    metadata,
    sa.Column("request_id", sa.String(CLIENT_ID_MAX), primary_key=True),
    sa.Column("record_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.DateTime(timezone=False), nullable=False),  # when it was received
    sa.Column("truth", sa.JSON, nullable=False),  # the class label, or the regression value
)
sa.Index("ix_feedback_ts", feedback.c.ts)


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
    """Create the table if missing, add columns a newer tabserve writes; tolerate another
    process doing the same at the same time."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        inspector = sa.inspect(engine)
        if not (inspector.has_table(TABLE_NAME) and inspector.has_table(FEEDBACK_TABLE)):
            raise
    present = {c["name"] for c in sa.inspect(engine).get_columns(TABLE_NAME)}
    if "client_request_id" not in present:
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {TABLE_NAME} ADD COLUMN client_request_id "
                        f"VARCHAR({CLIENT_ID_MAX})"
                    )
                )
        except sa.exc.DBAPIError:  # another worker added it first
            if "client_request_id" not in {
                c["name"] for c in sa.inspect(engine).get_columns(TABLE_NAME)
            }:
                raise


def insert_ignoring_duplicates(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows in one transaction; rows whose key exists already are skipped."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite  # here: the writer rarely needs them

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


# SQLite: executemany over ready-made tuples. In the writer process (its own GIL) this beats
# handing the batch over as one JSON document for json_each to unpack, whose per-row field
# extractions re-parse each row's text (measured, docs/adr/0005).
_SQLITE_MANY = (
    f"INSERT INTO {TABLE_NAME} ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (request_id, record_index) DO NOTHING"
)
# PostgreSQL: one statement per batch, the rows as one JSON array unpacked by the server (one
# round trip instead of one per row). `value` is one row: [request_id, record_index, epoch_s,
# inputs, prediction, probabilities, latency_ms, client_request_id]; model name, version and
# status are the same for a whole batch and travel as parameters.
_POSTGRES_BATCH = (
    f"INSERT INTO {TABLE_NAME} ({', '.join(COLUMNS)}) "
    "SELECT value->>0, (value->>1)::integer, to_timestamp((value->>2)::float8) AT TIME ZONE 'UTC',"
    " %s, %s, value->3, value->4, value->5, (value->>6)::float8, %s, value->>7 "
    "FROM json_array_elements(%s::json) AS value "
    "ON CONFLICT (request_id, record_index) DO NOTHING"
)
_SLIM = operator.itemgetter(0, 1, 2, 5, 6, 7, 8, 10)  # a row without model, version, status


class RowInserter:
    """Insert rows (entries.rows_of) in one transaction; rows whose key exists already are
    skipped. SQLite (sqlite3) and PostgreSQL (psycopg) get a statement of their own (above);
    any other driver goes through ``insert_ignoring_duplicates``, SQLAlchemy Core, which costs
    ~20 µs of Python per row. Schema and reads stay SQLAlchemy Core.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        name, driver = engine.dialect.name, engine.dialect.driver
        self.kind = (
            "sqlite" if (name, driver) == ("sqlite", "pysqlite")
            else "postgres" if (name, driver) == ("postgresql", "psycopg")
            else "core"
        )  # fmt: skip

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.kind == "core":
            insert_ignoring_duplicates(self.engine, [_row_dict(r) for r in rows])
            return
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            if self.kind == "sqlite":
                cursor.executemany(_SQLITE_MANY, _sqlite_tuples(rows))
            else:
                for (model, version, status), batch in _by_version(rows).items():
                    document = orjson.dumps(batch, option=orjson.OPT_SERIALIZE_NUMPY).decode()
                    cursor.execute(_POSTGRES_BATCH, (model, version, status, document))
            cursor.close()
            conn.commit()
        except Exception:
            # The connection may be broken (server gone): do not return it to the pool.
            conn.invalidate()
            raise
        finally:
            conn.close()


def _sqlite_tuples(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows as sqlite3 parameters: JSON columns as text, ``ts`` as the text SQLAlchemy's
    DateTime writes and reads on SQLite (one conversion per request: its records share it)."""
    dumps = orjson.dumps
    option = orjson.OPT_SERIALIZE_NUMPY
    stamps: dict[float, str] = {}
    out = []
    for r in rows:
        ts = stamps.get(r[2])
        if ts is None:
            ts = stamps[r[2]] = utc_naive(r[2]).isoformat(sep=" ", timespec="microseconds")
        out.append((
            r[0], r[1], ts, r[3], r[4], dumps(r[5], option=option).decode(),
            dumps(r[6], option=option).decode(), dumps(r[7], option=option).decode(),
            r[8], r[9], r[10],
        ))  # fmt: skip
    return out


def _by_version(rows: Sequence[Sequence[Any]]) -> dict[tuple[Any, Any, Any], list[Any]]:
    batches: dict[tuple[Any, Any, Any], list[Any]] = {}
    for row in rows:
        key = (row[3], row[4], row[9])
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = []
        batch.append(_SLIM(row))
    return batches


class FeedbackInserter:
    """Upsert feedback rows ([request_id, record_index, epoch_s, truth]) in one transaction:
    per key, the truth received last wins.

    Why latest and not first (docs/adr/0015): ground truth gets corrected — a reviewer fixes
    a label, a chargeback turns "legit" into "fraud" weeks later — and the newest word is the
    best one. "Received last" is the row's own ``ts``, not the order rows reach the database:
    the update applies only when the incoming ``ts`` is not older, so a spool replayed after
    a newer label leaves the newer one, and replaying a row twice changes nothing (exactly
    once, as for predictions). Volume is far below predictions', so this is plain SQLAlchemy
    Core, one executemany.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        name = engine.dialect.name
        if name not in ("sqlite", "postgresql"):  # pragma: no cover - not supported targets
            raise ValueError(f"prediction log supports sqlite and postgresql, not {name}")
        from sqlalchemy.dialects import postgresql, sqlite  # as in insert_statement

        insert = postgresql.insert if name == "postgresql" else sqlite.insert
        stmt = insert(feedback)
        self.stmt = stmt.on_conflict_do_update(
            index_elements=["request_id", "record_index"],
            set_={"ts": stmt.excluded.ts, "truth": stmt.excluded.truth},
            where=stmt.excluded.ts >= feedback.c.ts,
        )

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        # One statement may not touch a key twice (PostgreSQL refuses): keep each key's
        # latest, the later item on a tie (a request that names a record twice).
        latest: dict[tuple[str, int], Sequence[Any]] = {}
        for row in rows:
            key = (row[0], row[1])
            seen = latest.get(key)
            if seen is None or row[2] >= seen[2]:
                latest[key] = row
        params = [
            {"request_id": r[0], "record_index": r[1], "ts": utc_naive(r[2]), "truth": r[3]}
            for r in latest.values()
        ]
        with self.engine.begin() as conn:
            conn.execute(self.stmt, params)


def read_feedback(engine: Engine, since: datetime | None = None) -> dict[tuple[str, int], Any]:
    """Feedback received from ``since`` on, as {(request_id, record_index): truth}; empty when
    the table does not exist yet (a log no server of this version has written)."""
    if not sa.inspect(engine).has_table(FEEDBACK_TABLE):
        return {}
    stmt = sa.select(feedback.c.request_id, feedback.c.record_index, feedback.c.truth)
    if since is not None:
        stmt = stmt.where(feedback.c.ts >= to_utc_naive(since))
    with engine.connect() as conn:
        return {(r[0], r[1]): r[2] for r in conn.execute(stmt)}


def _row_dict(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(COLUMNS, row, strict=True))
    out["ts"] = utc_naive(out["ts"])
    return out


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
