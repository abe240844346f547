"""The result store's databases in tests: a fresh PostgreSQL database per module in the session's cluster,
and the ``url`` fixture giving each test an empty store's URL, SQLite or PostgreSQL (fixtures registered for
the integration tests by tests/integration/conftest.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from parityprobe.lab.postgres import PostgresServer
from tests.postgres_support import admin


@pytest.fixture(scope="module")
def pg_database(postgres: PostgresServer) -> Iterator[URL]:
    """A fresh database in the session's cluster, for this module; dropped at its end."""
    name = "store_" + secrets.token_hex(4)
    with admin(postgres) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield URL.create(
        "postgresql+psycopg",
        username=postgres.admin_user,
        password=postgres.admin_password.reveal(),
        host=postgres.host,
        port=postgres.port,
        database=name,
    )
    with admin(postgres) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# Every table, dependants first.
TABLES = ("evidence", "observations", "pending_undos", "schedule_events", "runs", "schema_version")


def plain(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL: a new SQLite file, or the module's PostgreSQL database, its tables dropped."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    pg: URL = request.getfixturevalue("pg_database")
    engine = create_engine(pg)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {', '.join(TABLES)}"))
    finally:
        engine.dispose()
    return plain(pg)
