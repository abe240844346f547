"""The result store's tables, and the one function that creates or migrates them.

Why SQLAlchemy's own DDL plus a version table, not Alembic: the schema is three small tables, written by
this package alone, and Alembic would be one more dependency (with its own configuration, environment
script and revision files to ship inside a wheel) for that. Instead the database holds its schema version
in ``schema_version`` (one row), and :data:`MIGRATIONS` maps each version to a plain function that brings a
database from the version before it, run inside the same transaction that records the new version. A fresh
database gets the current tables straight from :data:`metadata` (``CREATE … IF NOT EXISTS``, so two daemons
starting together both succeed) and the current version; a database recorded by a *newer* parityprobe is
refused (:class:`~parityprobe.errors.StoreError`) rather than written in a shape it does not expect.

The layout: a run is stored whole, as its codec record (``runs.record``: the source of truth, read back
with :func:`parityprobe.codec.from_record`), beside the columns it is looked up by: scenario, its digest,
environment, tier and times. Comparing after the fact selects runs by time, scenario and environment, which
the two indexes on ``runs`` serve: ``(scenario, environment, started_at)`` for one scenario,
``(started_at)`` for everything since a moment and for retention. ``observations`` and ``evidence`` copy
each step's outcome and latency, and each SIEM expectation's status and delay, into rows, so people and
dashboards can query them with SQL; nothing reads runs back from them, but the latency judge reads the
steps' latencies from them (:mod:`~parityprobe.store.history`). ``pending_undos`` is the durable undo
journal (:mod:`~parityprobe.store.journal`), ``schedule_events`` what a daemon's schedule did besides
running (:mod:`~parityprobe.store.events`).

Timestamps are stored in UTC (``timestamp with time zone`` on PostgreSQL; SQLite keeps them as text in one
fixed format, which sorts and compares as time only because every value is converted to UTC first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.expression import Executable

from parityprobe.errors import StoreError

SCHEMA_VERSION = 3
DIALECTS = ("sqlite", "postgresql")
# Any constant: PostgreSQL's transaction-scoped advisory lock that serialises schema creation between
# daemons starting at once (concurrent CREATE TABLE IF NOT EXISTS can still collide in its catalogue).
_LOCK_KEY = 0x70617269747970  # "paritypr"

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: the table has one row
    Column("version", Integer, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(), primary_key=True),
    Column("scenario", String(), nullable=False),
    Column("scenario_digest", String(), nullable=False),
    Column("environment", String(), nullable=False),
    Column("tier", String(), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("record", Text, nullable=False),
    Index("ix_runs_scenario_environment_started", "scenario", "environment", "started_at"),
    Index("ix_runs_started", "started_at"),
)

observations = Table(
    "observations",
    metadata,
    Column("run_id", String(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),  # the step's place in its run
    Column("step", String(), nullable=False),
    Column("probe", String(), nullable=False),
    Column("outcome", String(), nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    # A step with ``repeat: N``: every repetition's latency, a JSON list of milliseconds (version 3).
    Column("latency_samples", Text, nullable=True),
)

evidence = Table(
    "evidence",
    metadata,
    Column("run_id", String(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),  # its place in the run's evidence
    Column("step", String(), nullable=False),
    Column("connector", String(), nullable=False),
    Column("expect", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("seen_after_seconds", Float, nullable=True),
)

# The undo journal: an entry is written before the action it undoes and deleted once the undo has run, so
# what is left after a crash is what the daemon must still remove. Only plain identifiers: never a secret.
pending_undos = Table(
    "pending_undos",
    metadata,
    Column("id", String(), primary_key=True),
    Column("run_id", String(), nullable=False),
    Column("environment", String(), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(), nullable=False),
    Column("description", Text, nullable=False),
    Column("probe", String(), nullable=False),
    Column("params", Text, nullable=False),  # a JSON object of plain values
    Index("ix_pending_undos_environment", "environment", "recorded_at"),
)

# What the daemon's schedule did besides running: skipped (overlap, kill switch, budget), missed, failed.
schedule_events = Table(
    "schedule_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("environment", String(), nullable=False),
    Column("scenario", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_schedule_events_at", "at"),
)


def _to_2(connection: Connection) -> None:
    """Version 2 adds tables (evidence, pending undos, schedule events), which
    :func:`create_or_migrate` creates as it creates any missing table; no existing table changes."""


def _to_3(connection: Connection) -> None:
    """Version 3 keeps the latency of every repetition of a step (``observations.latency_samples``), for the
    latency judge's history. A store whose tables this version created already has it."""
    columns = {column["name"] for column in inspect(connection).get_columns(observations.name)}
    if "latency_samples" not in columns:
        connection.execute(text("ALTER TABLE observations ADD COLUMN latency_samples TEXT"))


# version → the function that brings a database at version - 1 to it.
MIGRATIONS: Mapping[int, Callable[[Connection], None]] = {2: _to_2, 3: _to_3}


def create_or_migrate(connection: Connection, where: str) -> int:
    """Bring the database behind ``connection`` (in a transaction the caller commits) to
    :data:`SCHEMA_VERSION` and return it. ``where`` names the store in errors.

    Missing tables are created; an older recorded version is migrated step by step; a newer one is refused
    with StoreError, before anything is written.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(text(f"pg_advisory_xact_lock({_LOCK_KEY})")))
    found = _recorded_version(connection)
    if found is not None and found > SCHEMA_VERSION:
        raise StoreError(
            f"{where}: its schema is version {found}, newer than this parityprobe's {SCHEMA_VERSION}; "
            "upgrade parityprobe to use this store"
        )
    if found is not None:
        for version in range(found + 1, SCHEMA_VERSION + 1):
            step = MIGRATIONS.get(version)
            if step is None:
                raise StoreError(f"{where}: no migration from schema version {version - 1} to {version}")
            step(connection)
    _create_missing(connection)
    if found is None:
        # Once: a second process creating the schema at the same moment (SQLite) finds the row written.
        connection.execute(
            insert_once(connection.dialect.name, schema_version), {"id": 1, "version": SCHEMA_VERSION}
        )
    elif found != SCHEMA_VERSION:
        connection.execute(
            schema_version.update().where(schema_version.c.id == 1).values(version=SCHEMA_VERSION)
        )
    return SCHEMA_VERSION


def _recorded_version(connection: Connection) -> int | None:
    """The version the database records; None for a database without one (a fresh one)."""
    if not inspect(connection).has_table(schema_version.name):
        return None
    version = connection.execute(select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    return None if version is None else int(version)


def _create_missing(connection: Connection) -> None:
    for table in metadata.sorted_tables:
        connection.execute(CreateTable(table, if_not_exists=True))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            connection.execute(CreateIndex(index, if_not_exists=True))


def insert_once(dialect: str, table: Table) -> Executable:
    """``INSERT … ON CONFLICT (primary key) DO NOTHING`` into ``table``, in ``dialect``'s own form: a row
    whose key is already there is left as it is, and the statement's rowcount is 0."""
    key = [column.name for column in table.primary_key.columns]
    # SQLAlchemy reports an INSERT's rowcount only when asked to keep it (psycopg's is otherwise -1).
    if dialect == "postgresql":
        return (
            postgresql.insert(table)
            .on_conflict_do_nothing(index_elements=key)
            .execution_options(preserve_rowcount=True)
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=key)
            .execution_options(preserve_rowcount=True)
        )
    raise StoreError(f"the result store supports {' and '.join(DIALECTS)}, not {dialect}")
