"""The result store: runs kept in SQLite (one machine) or PostgreSQL (daemons in several environments
sharing one store), through SQLAlchemy Core.

A :class:`ResultStore` is made without connecting: the schema is created or migrated
(:func:`~parityprobe.store.schema.create_or_migrate`) at the first call that reaches the database, so a store
that is down when a daemon starts is an error of each call (which the spool absorbs), not of the start.

Engine options: ``pool_pre_ping`` (a connection the server dropped between runs is replaced, not reported as
an outage); for PostgreSQL, libpq's ``connect_timeout`` and a ``statement_timeout``, sessions in UTC; for
SQLite, the lock wait, and on every new connection ``journal_mode=WAL`` (readers do not block the writer, so
``compare`` can read while a daemon writes) and ``foreign_keys=ON``.

Errors are translated once (:meth:`ResultStore._translated`) into :class:`~parityprobe.errors.StoreError`:
the store's URL with its password masked and its query left out, what was being done, and a fixed phrase
with the exception's class (for PostgreSQL, the PostgreSQL plane's reading of the driver error:
"authentication failed", "connection failed", "database not found"…); never the exception's own text.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from parityprobe.codec import RecordError, from_record, to_record
from parityprobe.errors import StoreError
from parityprobe.model import Run
from parityprobe.probe import Failure

# mypy checks probes/ as its own tree (mypy_path is src): the mapped package is not resolvable here.
from parityprobe.probes.postgres.errors import (  # type: ignore[import-not-found]
    translate as postgres_translate,
)
from parityprobe.store.pairing import RunHead
from parityprobe.store.schema import (
    DIALECTS,
    create_or_migrate,
    evidence,
    insert_once,
    observations,
    runs,
    schedule_events,
)

DEFAULT_TIMEOUT = 10.0
_LOCKED_PAUSE = 0.02
_ID_CHUNK = 500  # ids per IN list (SQLite's default limit of parameters per statement is 32,766)
# By class, most specific first: (class, what it means).
_TABLE: tuple[tuple[type[BaseException], str], ...] = (
    (sa_exc.TimeoutError, "no pooled connection in time"),
    (sa_exc.OperationalError, "database unavailable"),
    (sa_exc.IntegrityError, "a row conflicts with the database's constraints"),
    (sa_exc.ProgrammingError, "statement refused (table, column or permission)"),
    (sa_exc.DBAPIError, "database error"),
    (sa_exc.NoSuchModuleError, "no SQLAlchemy dialect for this URL"),
    (sa_exc.ArgumentError, "unusable URL"),
    (sa_exc.SQLAlchemyError, "SQLAlchemy error"),
    (ImportError, "database driver not installed"),
    (ValueError, "unusable URL"),
)


def masked(url: URL) -> str:
    """``url`` fit for a message: password masked, query (which may hold one) left out."""
    return url.set(query={}).render_as_string(hide_password=True)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC, as the codec does."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ResultStore:
    """Runs in a SQL database: ``sqlite:///path`` or ``postgresql+psycopg://user:password@host:port/db``
    (``postgresql://`` means psycopg 3, the driver the ``sql`` extra installs).

    Safe to share between threads. Every method raises :class:`StoreError` when the database cannot do what
    it is asked; :meth:`write` is idempotent by run id.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.where = "result store <unparsed URL>"
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        with self._translated("open"):
            parsed = make_url(url)
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            self.where = f"result store {masked(parsed)}"
            self.dialect = parsed.get_backend_name()
            if self.dialect not in DIALECTS:
                raise StoreError(f"{self.where}: the result store supports {' and '.join(DIALECTS)} URLs")
            self.engine: Engine = create_engine(
                parsed,
                pool_pre_ping=True,
                pool_timeout=timeout,
                connect_args=_connect_args(parsed, timeout),
            )
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._insert_run = insert_once(self.dialect, runs)

    # --- the store's operations ----------------------------------------------------------------------------

    def write(self, run: Run) -> bool:
        """Store ``run`` (its codec record, and a row per step for SQL queries). True when it was stored now,
        False when a run with its id was already there (and is left as it was)."""
        row, steps, seen = run_rows(run)
        with self._translated(f"write run {run.id}"):
            self._ensure_schema()
            with self.engine.begin() as connection:
                stored = connection.execute(self._insert_run, row).rowcount == 1
                if stored and steps:
                    connection.execute(observations.insert(), steps)
                if stored and seen:
                    connection.execute(evidence.insert(), seen)
        return stored

    def runs(
        self, since: datetime, scenario: str | None = None, environments: list[str] | None = None
    ) -> list[Run]:
        """The runs started at or after ``since`` (of ``scenario``, in ``environments``, when given), ordered
        by start time, read back through the codec."""
        query = _window(select(runs.c.id, runs.c.record), since, scenario, environments)
        with self._translated("read runs"):
            self._ensure_schema()
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        return [self._read(str(run_id), record) for run_id, record in rows]

    def run_heads(
        self, since: datetime, scenario: str | None = None, environments: list[str] | None = None
    ) -> list[RunHead]:
        """What :meth:`runs` would return, as heads (id, scenario, digest, environment, start) without the
        records: what pairing needs, without reading or decoding a record."""
        columns = (runs.c.id, runs.c.scenario, runs.c.scenario_digest, runs.c.environment, runs.c.started_at)
        query = _window(select(*columns), since, scenario, environments)
        with self._translated("read run heads"):
            self._ensure_schema()
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        return [RunHead(i, s, d, e, _utc(at)) for i, s, d, e, at in rows]

    def runs_by_id(self, ids: Sequence[str]) -> list[Run]:
        """The runs with these ids, in the order given, read back through the codec; an id with no run (or
        a repeated one) is left out."""
        wanted = list(dict.fromkeys(ids))
        records: dict[str, Any] = {}
        with self._translated("read runs by id"):
            self._ensure_schema()
            with self.engine.connect() as connection:
                # Bounded IN lists: SQLite limits the parameters of one statement.
                for start in range(0, len(wanted), _ID_CHUNK):
                    chunk = wanted[start : start + _ID_CHUNK]
                    query = select(runs.c.id, runs.c.record).where(runs.c.id.in_(chunk))
                    records.update((str(run_id), record) for run_id, record in connection.execute(query))
        return [self._read(run_id, records[run_id]) for run_id in wanted if run_id in records]

    def retain(self, older_than: datetime) -> int:
        """Delete the runs started before ``older_than``, their rows, and the schedule events before it; how
        many runs went. Pending undos are never deleted by age: each still names something to remove."""
        cutoff = _utc(older_than)
        old = select(runs.c.id).where(runs.c.started_at < cutoff)
        with self._translated("apply retention"):
            self._ensure_schema()
            with self.engine.begin() as connection:
                # Explicitly, not by the foreign key's cascade: SQLite enforces that only per connection.
                connection.execute(observations.delete().where(observations.c.run_id.in_(old)))
                connection.execute(evidence.delete().where(evidence.c.run_id.in_(old)))
                connection.execute(schedule_events.delete().where(schedule_events.c.at < cutoff))
                deleted = connection.execute(runs.delete().where(runs.c.started_at < cutoff)).rowcount
        return int(deleted)

    def ping(self) -> None:
        """Check that the store answers and has a schema this code can use; StoreError when not."""
        with self._translated("ping"):
            self._ensure_schema()
            with self.engine.connect() as connection:
                connection.execute(select(1)).scalar()

    @contextmanager
    def transaction(self, action: str) -> Iterator[Connection]:
        """A connection in a transaction on the store's current schema, committed on leaving; errors (of the
        database, or of the schema) as one StoreError naming ``action``. For the store's other tables
        (:mod:`~parityprobe.store.journal`, :mod:`~parityprobe.store.events`)."""
        with self._translated(action):
            self._ensure_schema()
            with self.engine.begin() as connection:
                yield connection

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self.engine.dispose()

    # --- inside --------------------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        """Create or migrate the schema once per store object (StoreError for a newer one, every time)."""
        with self._schema_lock:
            if self._schema_ready:
                return
            with self.engine.begin() as connection:
                create_or_migrate(connection, self.where)
            self._schema_ready = True

    def _read(self, run_id: str, record: Any) -> Run:
        try:
            return from_record(Run, json.loads(record))
        except (ValueError, TypeError, RecordError) as exc:  # JSONDecodeError is a ValueError
            reason = exc if isinstance(exc, RecordError) else "not a JSON record"
            raise StoreError(f"{self.where}: run {run_id}: unreadable record: {reason}") from None

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Database and driver errors raised inside become one StoreError, without their text."""
        driver_error: type[Exception] = getattr(self, "_driver_error", sa_exc.SQLAlchemyError)
        try:
            yield
        except (sa_exc.SQLAlchemyError, ImportError, ValueError, driver_error) as exc:
            raise StoreError(f"{self.where}: {action}: {self._meaning(exc)} ({type(exc).__name__})") from None

    def _meaning(self, exc: BaseException) -> str:
        origin = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        if isinstance(origin, Exception) and getattr(self, "dialect", None) == "postgresql":
            failure: Failure | None = postgres_translate(origin)
            if failure is not None:
                return str(failure.reason)
        for cls, meaning in _TABLE:
            if isinstance(exc, cls):
                return meaning
        return "database error"


def _window(
    query: Select[Any], since: datetime, scenario: str | None, environments: list[str] | None
) -> Select[Any]:
    """``query`` over the runs started at or after ``since`` (of ``scenario``, in ``environments``), by start
    time then id."""
    query = query.where(runs.c.started_at >= _utc(since))
    if scenario is not None:
        query = query.where(runs.c.scenario == scenario)
    if environments is not None:
        query = query.where(runs.c.environment.in_(environments))
    return query.order_by(runs.c.started_at, runs.c.id)


def run_rows(run: Run) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """What :meth:`ResultStore.write` inserts for ``run``: its row (with its codec record), a row per step,
    and a row per SIEM expectation; times in UTC."""
    record = json.dumps(to_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    row = {
        "id": run.id,
        "scenario": run.scenario,
        "scenario_digest": run.spec.digest,
        "environment": run.environment,
        "tier": run.env.tier.value,
        "started_at": _utc(run.started_at),
        "finished_at": _utc(run.finished_at),
        "record": record,
    }
    steps = [
        {
            "run_id": run.id,
            "seq": seq,
            "step": obs.step,
            "probe": obs.probe,
            "outcome": obs.outcome.value,
            "latency_ms": obs.latency_ms,
            "started_at": _utc(obs.started_at),
            "latency_samples": json.dumps(obs.latency_samples_ms) if obs.latency_samples_ms else None,
        }
        for seq, obs in enumerate(run.observations)
    ]
    seen = [
        {
            "run_id": run.id,
            "seq": seq,
            "step": item.step,
            "connector": item.connector,
            "expect": item.expect,
            "status": item.status.value,
            "seen_after_seconds": item.seen_after_seconds,
        }
        for seq, item in enumerate(run.evidence)
    ]
    return row, steps, seen


def _connect_args(url: URL, timeout: float) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # Worker threads share the pool; SQLite serialises the writes, waiting up to the timeout for a lock.
        return {"timeout": timeout, "check_same_thread": False}
    args: dict[str, Any] = {
        "connect_timeout": max(1, math.ceil(timeout)),
        "application_name": "parityprobe-store",
    }
    if "options" not in url.query:  # the URL's own options win
        args["options"] = f"-c statement_timeout={math.ceil(timeout * 1000)} -c TimeZone=UTC"
    return args


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Every new SQLite connection: write-ahead log, so readers and the writer do not block each other,
    and foreign keys enforced."""
    cursor = dbapi_connection.cursor()
    try:
        _write_ahead_log(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _write_ahead_log(cursor: Any) -> None:
    """Switch a new database to the write-ahead log. The switch needs the database to itself, and SQLite
    answers "database is locked" at once, without waiting, while another connection opening the same new
    file holds it (stores starting together): try again for up to :data:`DEFAULT_TIMEOUT` seconds. A
    database already in WAL mode answers at once."""
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_LOCKED_PAUSE)
