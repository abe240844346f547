"""The store's daemon tables against real databases (SQLite in a file, the session's PostgreSQL): the undo
journal (durable before the action, amended, resolved; held secrets never written), schedule events,
evidence rows, retention, and the migration of a version-1 store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from parityprobe.daemon.records import ScheduleEvent, ScheduleOutcome
from parityprobe.errors import StoreError
from parityprobe.secret import Secret
from parityprobe.store import ResultStore
from parityprobe.store.events import read_events, record_event
from parityprobe.store.journal import StoreJournal
from parityprobe.store.schema import SCHEMA_VERSION
from parityprobe.undo import Undo

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def dump(url: str) -> str:
    """Every row of every table, as text: what a secret must never be found in."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = ("runs", "observations", "evidence", "pending_undos", "schedule_events")
            return "\n".join(str(conn.execute(text(f"SELECT * FROM {name}")).all()) for name in names)
    finally:
        engine.dispose()


def test_the_journal_keeps_pending_undos_until_resolved_across_processes(url: str) -> None:
    store = ResultStore(url)
    journal = StoreJournal(store)
    token = Secret("s.journal-held-" + "x" * 12, "token")
    first = journal.record(
        "run1", "staging", T0, Undo("revoke token", "vault.token_revoke", held={"token": token})
    )
    second = journal.record(
        "run1", "staging", T0 + timedelta(seconds=1), Undo("destroy id", "vault.x", {"role": "r"})
    )
    journal.record("run2", "production", T0, Undo("other", "vault.x", {"role": "p"}), recorded_by="pp-run2-a")
    amended = journal.amend(second.id, second.undo.amended({}, {"accessor": "acc-1"}))
    assert dict(amended.undo.params) == {"role": "r", "accessor": "acc-1"}

    # This process still holds the token; a journal read by another process (after a crash) does not.
    assert journal.pending("run1")[0].undo.held == {"token": token}
    elsewhere = StoreJournal(ResultStore(url))
    read = elsewhere.pending(environment="staging")
    assert [(e.id, e.undo.description, dict(e.undo.params)) for e in read] == [
        (first.id, "revoke token", {}),
        (second.id, "destroy id", {"role": "r", "accessor": "acc-1"}),
    ]
    assert read[0].undo.held == {} and read[0].recorded_at == T0
    assert [e.recorded_by for e in elsewhere.pending("run2")] == ["pp-run2-a"]
    assert token.reveal() not in dump(url)

    elsewhere.resolve(first.id)
    journal.resolve(second.id)
    assert [e.run_id for e in journal.pending()] == ["run2"]
    with pytest.raises(StoreError, match="no such pending undo"):
        journal.amend(first.id, first.undo)


def test_schedule_events_are_kept_in_order_and_retained_by_age(url: str) -> None:
    store = ResultStore(url)
    old = ScheduleEvent(T0 - timedelta(days=40), "staging", "s", ScheduleOutcome.MISSED, "due long ago")
    new = ScheduleEvent(T0, "production", "s", ScheduleOutcome.SKIPPED_OVERLAP, "still going")
    for event in (old, new):
        record_event(store, event)
    assert read_events(store, EPOCH) == [old, new]
    assert read_events(store, EPOCH, "production") == [new]
    store.retain(T0 - timedelta(days=30))
    assert read_events(store, EPOCH) == [new]


def test_a_version_1_store_is_migrated(url: str) -> None:
    ResultStore(url).ping()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # back to the first schema: runs, observations and the version row
            conn.execute(text("DROP TABLE evidence"))
            conn.execute(text("DROP TABLE pending_undos"))
            conn.execute(text("DROP TABLE schedule_events"))
            conn.execute(text("UPDATE schema_version SET version = 1"))
    finally:
        engine.dispose()
    store = ResultStore(url)
    journal = StoreJournal(store)
    journal.record("run", "staging", T0, Undo("remove", "test.remove", {"name": "n"}))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
            assert conn.execute(text("SELECT count(*) FROM evidence")).scalar() == 0
    finally:
        engine.dispose()
    assert [e.undo.description for e in journal.pending()] == ["remove"]
