"""End to end: a real `tabserve serve` logging to a real PostgreSQL that goes down mid-load."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tabserve.modeldir import ModelDir
from tabserve.monitoring.drift import analyze
from tabserve.predlog.store import predictions
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration

REQUESTS = 400
RECORDS_PER_REQUEST = 2


def test_every_predicted_record_is_logged_once_across_a_postgres_outage(
    titanic_model_dir: Path,
    postgres_database: str,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    example = ModelDir(titanic_model_dir).spec().example_record()
    ok = {"count": 0, "failed": 0}
    sent = {"n": 0}
    with running_server(
        titanic_model_dir, "--log-db", postgres_database, env={"TABSERVE_HOME": str(tmp_path)}
    ) as server:

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for i in range(REQUESTS):
                    body = [example | {"Age": 20 + (i % 40)}, example | {"Fare": 5.0 + i % 50}]
                    r = client.post("/predict", json=body)
                    if r.status_code == 200:
                        ok["count"] += 1
                    else:
                        ok["failed"] += 1
                    sent["n"] = i + 1
                    time.sleep(0.003)  # a steady stream, so the outage lands mid-load

        sender = threading.Thread(target=load)
        sender.start()
        try:
            deadline = time.monotonic() + 60
            while sent["n"] < REQUESTS // 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            postgres_server.stop()
            during_outage_from = sent["n"]
            time.sleep(1.5)
            during_outage_to = sent["n"]
            postgres_server.start()
        finally:
            sender.join(60)
            if not postgres_server.is_running():
                postgres_server.start()
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        # SIGTERM: the server drains, and the log flushes its queue and spool before exit.
        exit_code = server.stop(timeout=30)
    assert during_outage_to > during_outage_from, "no request was served during the outage"
    assert ok == {"count": REQUESTS, "failed": 0}
    spooled = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("tabserve_prediction_log_rows_spooled_total")
    ]
    assert spooled and sum(spooled) > 0, "the outage did not reach the writer"
    engine = sa.create_engine(postgres_database, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one()
        keys = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(predictions.c.request_id, predictions.c.record_index)
                .distinct()
                .subquery()
            )
        ).scalar_one()
    assert total == keys == REQUESTS * RECORDS_PER_REQUEST, (exit_code, server.log()[-3000:])
    # The drift report reads the same table on PostgreSQL.
    result = analyze(ModelDir(titanic_model_dir), engine)
    engine.dispose()
    assert result.n_current == REQUESTS * RECORDS_PER_REQUEST
    assert result.prediction is not None and result.prediction.n_current == result.n_current
