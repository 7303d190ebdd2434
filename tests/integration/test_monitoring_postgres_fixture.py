"""The PostgreSQL fixture gives a real server that survives a stop/start on the same port."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_postgres_fixture_accepts_connections_and_restarts(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS fixture_probe (x int)"))
            conn.execute(sa.text("INSERT INTO fixture_probe VALUES (1)"))
        postgres_server.stop()
        assert not postgres_server.is_running()
        engine.dispose()
        postgres_server.start()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM fixture_probe")).scalar() >= 1
    finally:
        if not postgres_server.is_running():
            postgres_server.start()
        engine.dispose()
