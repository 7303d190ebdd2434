"""The prediction log on a real PostgreSQL that is stopped and started under load."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tabserve.predlog import PredictionLog
from tabserve.predlog.store import predictions
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

COLUMNS = {"Age": np.array([22.0, 35.0]), "Sex": np.array(["male", "female"], dtype=object)}


def _counts(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one()
        keys = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(predictions.c.request_id, predictions.c.record_index)
                .distinct()
                .subquery()
            )
        ).scalar_one()
    engine.dispose()
    return int(total), int(keys)


def test_postgres_outage_mid_load_loses_and_duplicates_nothing(
    postgres_database: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    plog = PredictionLog(postgres_database, spool_dir=tmp_path / "spool", retry_interval_s=0.2)
    n_requests = 3000
    progress = {"sent": 0}

    def load() -> None:
        for i in range(n_requests):
            plog.submit(f"req-{i}", "titanic", "1", COLUMNS, 2, np.array([0, 1]))
            progress["sent"] = i + 1
            if i % 50 == 0:
                time.sleep(0.01)  # a steady stream over ~1 s, so the outage lands mid-way

    sender = threading.Thread(target=load)
    sender.start()
    try:
        while progress["sent"] < n_requests // 3:
            time.sleep(0.005)
        postgres_server.stop()
        time.sleep(1.0)  # the writer keeps getting rows while the database is gone
        stats_during = plog.stats()
        postgres_server.start()
    finally:
        sender.join(30)
        if not postgres_server.is_running():
            postgres_server.start()
    assert plog.flush(60), plog.stats()
    plog.close()
    stats = plog.stats()
    assert stats_during["spooled"] > 0, "the outage did not hit the writer"
    assert stats["dropped"] == 0
    assert _counts(postgres_database) == (2 * n_requests, 2 * n_requests)


def test_postgres_down_at_shutdown_keeps_rows_for_the_next_start(
    postgres_database: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    first = PredictionLog(postgres_database, spool_dir=spool_dir, retry_interval_s=0.2)
    for i in range(100):
        first.submit(f"a-{i}", "titanic", "1", COLUMNS, 2, np.array([0, 1]))
    assert first.flush(20)
    postgres_server.stop()
    try:
        for i in range(100):
            first.submit(f"b-{i}", "titanic", "1", COLUMNS, 2, np.array([0, 1]))
        first.close()
        assert list(spool_dir.glob("*.jsonl")), "rows were not spooled at shutdown"
    finally:
        postgres_server.start()
    # A new process (same spool directory) replays what the last one could not write.
    second = PredictionLog(postgres_database, spool_dir=spool_dir, retry_interval_s=0.2)
    assert second.flush(30), second.stats()
    second.close()
    assert _counts(postgres_database) == (400, 400)


def test_a_row_postgres_refuses_is_quarantined_not_retried_forever(
    postgres_database: str, tmp_path: Path
) -> None:
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("tabserve_prediction_log_rows_quarantined_total") or 0.0
    spool_dir = tmp_path / "spool"
    plog = PredictionLog(postgres_database, spool_dir=spool_dir, retry_interval_s=0.2)
    for i in range(200):
        # PostgreSQL cannot store a NUL character as text: a row it refuses for its content.
        client_id = "poison\x00id" if i == 77 else f"client-{i}"
        plog.submit(f"req-{i}", "titanic", "1", COLUMNS, 2, np.array([0, 1]),
                    client_request_id=client_id)  # fmt: skip
    assert plog.flush(30), plog.stats()
    stats = plog.stats()
    plog.close()
    assert stats["quarantined"] == 2 and stats["dropped"] == 0, stats
    assert _counts(postgres_database) == (398, 398)  # every other row, once
    quarantined = [p for p in spool_dir.glob("quarantine-*.jsonl")]
    assert len(quarantined) == 1 and quarantined[0].read_text().count("req-77") == 2
    assert not list(spool_dir.glob("spool-*.jsonl"))  # nothing left to retry
    after = REGISTRY.get_sample_value("tabserve_prediction_log_rows_quarantined_total") or 0.0
    assert after - before == 2
