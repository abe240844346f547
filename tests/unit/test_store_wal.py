"""The SQLite result store runs in write-ahead-log mode, on its own connections and in the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from parityprobe.store import ResultStore


def test_the_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = ResultStore(f"sqlite:///{path}")
    try:
        store.ping()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()
    # WAL is a property of the database file: a connection of our own sees it too.
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
