"""The SQLAlchemy side of the ``sql`` connector: its engine, its one statement, and the database's exceptions
translated into the connector's two ways of saying "no answer".

The engine is made when the connector is (no connection yet: SQLAlchemy connects at the first search), with
``pool_pre_ping`` (a connection the server dropped between polls is replaced, not reported as an outage) and
each connection and statement bounded by ``timeout_seconds`` where the driver lets us say so: libpq's
``connect_timeout`` and ``statement_timeout`` for PostgreSQL (whose sessions also run in UTC, so a
``timestamp`` column without time zone is read and compared as UTC), ``connect_timeout`` for MySQL, the lock
wait for SQLite.

The table of :func:`translate`, in order:

- a PostgreSQL driver error (psycopg) is read by the PostgreSQL plane's table
  (:func:`parityprobe.probes.postgres.errors.translate`): a refused login or a missing database is a target
  error named for what happened ("authentication failed"), a refused connection UNREACHABLE, a timeout
  TIMEOUT, "too many connections" throttled;
- otherwise by class: the pool gave no connection in time → TIMEOUT; ``OperationalError`` (the database is
  down or unreachable) → UNREACHABLE; any other driver or SQLAlchemy error, an unusable URL, a driver that is
  not installed → target error.

Reasons are the URL with its password masked (and its query, which may hold one, left out), the table, and a
fixed phrase with the exception's class: never the exception's text, which can repeat the URL, the
statement or its parameters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import DateTime, Select, bindparam, column, create_engine, select, table
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

# mypy checks probes/ as its own tree (mypy_path is src): the mapped package is not resolvable here.
from parityprobe.probes.postgres.errors import (  # type: ignore[import-not-found]
    translate as postgres_translate,
)
from parityprobe.siem.connector import (
    SiemEvent,
    SiemQuery,
    SiemThrottled,
    SiemUnavailable,
    flatten,
    parse_time,
)
from parityprobe.siem.sql import SqlSettings

# SQLAlchemy 2.1's base of emulated driver errors (asyncpg's): SQLAlchemy wraps them in DBAPIError, but one
# that escapes bare is still a database error. Absent from 2.0, where DBAPIError stands in.
_EMULATED: type[Exception] = getattr(sa_exc, "EmulatedDBAPIException", sa_exc.DBAPIError)
# By class, most specific first: (class, kind, what it means).
_TABLE: tuple[tuple[type[BaseException], ErrorKind, str], ...] = (
    (sa_exc.TimeoutError, ErrorKind.TIMEOUT, "no pooled connection in time"),
    (sa_exc.OperationalError, ErrorKind.UNREACHABLE, "database unreachable"),
    (sa_exc.ProgrammingError, ErrorKind.TARGET_ERROR, "query refused (table, column or permission)"),
    (sa_exc.DBAPIError, ErrorKind.TARGET_ERROR, "database error"),
    (_EMULATED, ErrorKind.TARGET_ERROR, "database error"),
    (sa_exc.NoSuchModuleError, ErrorKind.TARGET_ERROR, "no SQLAlchemy dialect for this URL"),
    (sa_exc.ArgumentError, ErrorKind.TARGET_ERROR, "unusable URL"),
    (sa_exc.SQLAlchemyError, ErrorKind.TARGET_ERROR, "SQLAlchemy error"),
    (ImportError, ErrorKind.TARGET_ERROR, "database driver not installed"),
    (ValueError, ErrorKind.TARGET_ERROR, "unusable URL"),
)


def known_classes() -> tuple[type[BaseException], ...]:
    """The exception classes :func:`translate` maps by class, in matching order (for tests and docs)."""
    return tuple(cls for cls, _, _ in _TABLE)


def translate(exc: BaseException, where: str) -> SiemUnavailable:
    """What ``exc``, raised while searching ``where`` (masked URL and table), means for a search."""
    origin = exc.orig if isinstance(exc, sa_exc.DBAPIError) else None
    failure = postgres_translate(origin) if isinstance(origin, Exception) else None
    if failure is not None:
        return _from_plane(failure, f"{where}: {{}} ({type(exc).__name__})")
    for cls, kind, meaning in _TABLE:
        if isinstance(exc, cls):
            return SiemUnavailable(f"{where}: {meaning} ({type(exc).__name__})", kind)
    return SiemUnavailable(f"{where}: {type(exc).__name__}")


def _from_plane(failure: Failure, template: str) -> SiemUnavailable:
    reason = template.format(failure.reason)
    if failure.outcome is not Outcome.ERROR:
        # A refused login or a missing database: for a search that is no answer, not a decision.
        return SiemUnavailable(reason, ErrorKind.TARGET_ERROR)
    if failure.error_kind is ErrorKind.THROTTLED:
        return SiemThrottled(reason)
    if failure.error_kind in (ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE):
        return SiemUnavailable(reason, failure.error_kind)
    return SiemUnavailable(reason, ErrorKind.TARGET_ERROR)


def masked(url: URL) -> str:
    """``url`` fit for a reason: password masked, query left out."""
    return url.set(query={}).render_as_string(hide_password=True)


def _connect_args(url: URL, timeout: float) -> dict[str, Any]:
    backend, driver = url.get_backend_name(), url.get_driver_name()
    seconds = max(1, math.ceil(timeout))
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        args: dict[str, Any] = {"connect_timeout": seconds}
        if "options" not in url.query:  # the URL's own options win
            args["options"] = f"-c statement_timeout={math.ceil(timeout * 1000)} -c TimeZone=UTC"
        return args
    if backend == "mysql":
        return {"connect_timeout": seconds}
    if backend == "sqlite":
        return {"timeout": timeout}
    return {}


def statement(settings: SqlSettings) -> Select[Any]:
    """The search: ids as an expanding IN, the window as bound parameters, names quoted by the dialect."""
    columns = settings.columns
    wanted = [columns.correlation_id, columns.time, columns.body, columns.ingested_at, *columns.fields]
    names = list(dict.fromkeys(name for name in wanted if name is not None))
    schema, _, name = settings.table.rpartition(".")
    source = table(name, *(column(n) for n in names), schema=schema or None)
    when = source.c[columns.time]
    moment = DateTime(timezone=True)
    return (
        select(*(source.c[n] for n in names))
        .where(source.c[columns.correlation_id].in_(bindparam("ids", expanding=True)))
        .where(when >= bindparam("since", type_=moment), when <= bindparam("until", type_=moment))
        .order_by(when)
    )


class SqlConnector:
    """One engine per connector (``engine``, None when the URL was unusable); one SELECT per search."""

    def __init__(self, settings: SqlSettings) -> None:
        self.settings = settings
        self.engine: Engine | None = None
        self._where = f"SQL URL in {settings.url.describe()}, table {settings.table}"
        self._broken: SiemUnavailable | None = None
        self._statement = statement(settings)
        try:
            text = settings.url.secret().reveal()
        except RuntimeError as exc:  # a reference the loader left unread: our message, naming no secret
            self._broken = SiemUnavailable(f"{self._where}: {exc}")
            return
        try:
            url = make_url(text)
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")  # the driver the `sql` extra installs
            self._where = f"{masked(url)} table {settings.table}"
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_timeout=settings.timeout_seconds,
                connect_args=_connect_args(url, settings.timeout_seconds),
            )
        except (sa_exc.SQLAlchemyError, ImportError, ValueError) as exc:
            # Reported by every search: a connector is made before the run, and must not stop it.
            self._broken = translate(exc, self._where)

    def begin(self) -> None:
        """Nothing to note: each search names its window."""

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if self._broken is not None:
            raise self._broken
        assert self.engine is not None
        ids = sorted(query.correlation_ids)
        if not ids:
            return []
        parameters = {"ids": ids, "since": query.since, "until": query.until}
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(self._statement, parameters).mappings().all()
        except (sa_exc.SQLAlchemyError, _EMULATED, ImportError) as exc:
            raise translate(exc, self._where) from None
        wanted = frozenset(ids)
        return [event for row in rows if (event := self._event(row, wanted)) is not None]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def _event(self, row: Mapping[Any, Any], ids: frozenset[str]) -> SiemEvent | None:
        columns = self.settings.columns
        cid = row[columns.correlation_id]
        if not isinstance(cid, str) or cid not in ids:
            return None  # a case-insensitive collation's near match: not this id
        fields: dict[str, str] = {}
        if columns.body is not None:
            fields.update(_body_fields(row[columns.body], columns.body))
        for name in columns.fields:
            value = row[name]
            if value is not None:
                fields[name] = _text(value)
        ingested = _moment(row[columns.ingested_at]) if columns.ingested_at is not None else None
        return SiemEvent(cid, _moment(row[columns.time]), MappingProxyType(fields), ingested)


def _body_fields(value: Any, name: str) -> dict[str, str]:
    """A JSON body's fields: a ``jsonb`` value comes decoded, a text one is decoded here; a body that is not
    a JSON object is one field, named for its column."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {name: value}
    if isinstance(value, Mapping):
        return flatten(value)
    return {} if value is None else {name: _text(value)}


def _moment(value: Any) -> datetime | None:
    """A column's time as aware UTC: a naive timestamp is taken as UTC; text or epoch numbers are parsed."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return parse_time(value)


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
