"""The ``sql`` connector against the real PostgreSQL of the ``postgres`` fixture: one SELECT per search for
every id, the window's bounds, the column mapping (a reserved word among the names), and no password in any
reason when the server refuses us, is gone, or the URL is unusable.

Statements are counted with a SQLAlchemy ``before_cursor_execute`` listener on the connector's own engine.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from psycopg.types.json import Jsonb
from sqlalchemy import event
from sqlalchemy.dialects import postgresql

from parityprobe.lab.postgres import PostgresServer
from parityprobe.lab.servers import free_port
from parityprobe.model import ErrorKind
from parityprobe.siem._sql import SqlConnector, known_classes, statement
from parityprobe.siem.connector import SiemEvent, SiemQuery, SiemUnavailable
from parityprobe.siem.settings import SiemSettings
from parityprobe.siem.sql import SqlSettings
from tests.fault_server import silent_endpoint
from tests.postgres_support import admin

pytestmark = pytest.mark.lab

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE, UNTIL = NOW - timedelta(minutes=10), NOW
ASKED = frozenset({"pp-r1-login", "pp-r1-read", "pp-r1-denied"})
COLUMNS = {"correlation_id": "correlation_id", "time": "event_time", "body": "body", "fields": ["user"]}
# (correlation id, seconds after SINCE, n): each asked id, more than once; ids not asked for; an asked id
# just outside each bound, and exactly on each (BETWEEN includes its bounds).
ROWS = [
    ("pp-r1-login", 60, 1),
    ("pp-r1-read", 120, 2),
    ("pp-r1-denied", 180, 3),
    ("pp-r1-login", 240, 4),
    ("pp-r1-denied", 0, 5),
    ("pp-r1-read", 600, 6),
    ("pp-r1-login", -1, 7),
    ("pp-r1-read", 601, 8),
    ("pp-r1-other", 60, 9),
    ("pp-r1-login-2", 60, 10),
    ("PP-R1-LOGIN", 60, 11),
]
IN_WINDOW = {(cid, str(n)) for cid, at, n in ROWS if cid in ASKED and 0 <= at <= 600}


@pytest.fixture(scope="module")
def events_table(postgres: PostgresServer) -> Iterator[str]:
    """A table of audit events (its time a timestamptz, its body jsonb, a column named ``user``)."""
    name = f"siem_events_{secrets.token_hex(4)}"
    with admin(postgres) as conn:
        conn.execute(
            f'CREATE TABLE {name} (correlation_id text, event_time timestamptz, body jsonb, "user" text)'
        )
        for cid, at, n in ROWS:
            body = {"n": n, "request": {"path": "secret/data/x", "headers": {"x-correlation-id": [cid]}}}
            conn.execute(
                f"INSERT INTO {name} VALUES (%s, %s, %s, %s)",
                (cid, SINCE + timedelta(seconds=at), Jsonb(body), f"user-{n}"),
            )
    yield name
    with admin(postgres) as conn:
        conn.execute(f"DROP TABLE {name}")


def _url(server: PostgresServer, password: str, *, port: int | None = None) -> str:
    return f"postgresql://{server.admin_user}:{password}@{server.host}:{port or server.port}/{server.dbname}"


def _settings(folder: Path, url: str, table: str, **fields: Any) -> SqlSettings:
    (folder / "siem-url").write_text(url + "\n")
    data = {"type": "sql", "url": {"file": "siem-url"}, "table": table, "columns": COLUMNS, **fields}
    settings = SqlSettings.model_validate(data)
    settings.url.resolve(folder, "SIEM database URL")
    return settings


def _counted(connector: SqlConnector) -> list[str]:
    """Every statement the connector's engine sends from now on."""
    assert connector.engine is not None
    sent: list[str] = []

    def record(conn: Any, cursor: Any, text: str, *_: Any) -> None:
        sent.append(text)

    event.listen(connector.engine, "before_cursor_execute", record)
    return sent


def _keys(events: list[SiemEvent]) -> set[tuple[str, str]]:
    return {(e.correlation_id, e.fields["n"]) for e in events}


def test_one_select_finds_every_asked_id_in_the_window(
    postgres: PostgresServer, events_table: str, tmp_path: Path
) -> None:
    connector = SqlConnector(
        _settings(tmp_path, _url(postgres, postgres.admin_password.reveal()), events_table)
    )
    sent = _counted(connector)
    try:
        first = list(connector.search(SiemQuery(ASKED, SINCE, UNTIL)))
        second = list(connector.search(SiemQuery(ASKED, SINCE, UNTIL)))
    finally:
        connector.close()
    assert _keys(first) == _keys(second) == IN_WINDOW
    assert len(sent) == 2 and all(text.lstrip().upper().startswith("SELECT") for text in sent)
    assert all(events_table in text and " IN (" in text for text in sent)
    # Ordered by time; fields from the body (flattened) and from the named columns.
    assert [e.time for e in first] == sorted(e.time for e in first if e.time is not None)
    login = next(e for e in first if e.fields["n"] == "1")
    assert login.time == SINCE + timedelta(seconds=60)
    assert login.fields["request.headers.x-correlation-id"] == "pp-r1-login"
    assert login.fields["user"] == "user-1"
    assert login.ingested_at is None


def test_ids_not_asked_for_never_come_back(
    postgres: PostgresServer, events_table: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, _url(postgres, postgres.admin_password.reveal()), events_table)
    connector = settings.connect()
    try:
        events = list(connector.search(SiemQuery(frozenset({"pp-r1-login"}), SINCE, UNTIL)))
    finally:
        connector.close()
    assert _keys(events) == {("pp-r1-login", "1"), ("pp-r1-login", "4")}


def test_a_text_body_and_a_timestamp_without_zone_are_read_as_utc(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    name = f"siem_text_{secrets.token_hex(4)}"
    with admin(postgres) as conn:
        conn.execute(f"CREATE TABLE {name} (cid text, at timestamp, received timestamptz, doc text)")
        rows = [("pp-r2-a", NOW - timedelta(minutes=1), '{"n": 1}'), ("pp-r2-a", NOW, "not json")]
        for cid, at, doc in rows:
            conn.execute(
                f"INSERT INTO {name} VALUES (%s, %s, %s, %s)", (cid, at.replace(tzinfo=None), NOW, doc)
            )
    columns = {"correlation_id": "cid", "time": "at", "body": "doc", "ingested_at": "received"}
    settings = _settings(
        tmp_path, _url(postgres, postgres.admin_password.reveal()), f"public.{name}", columns=columns
    )
    connector = settings.connect()
    try:
        events = list(connector.search(SiemQuery(frozenset({"pp-r2-a"}), NOW - timedelta(minutes=1), NOW)))
    finally:
        connector.close()
    assert [(e.time, dict(e.fields), e.ingested_at) for e in events] == [
        (NOW - timedelta(minutes=1), {"n": "1"}, NOW),
        (NOW, {"doc": "not json"}, NOW),
    ]


def test_a_wrong_password_is_no_answer_and_never_shown(
    postgres: PostgresServer, events_table: str, tmp_path: Path
) -> None:
    wrong = "Wr0ng-" + secrets.token_hex(8)
    connector = _settings(tmp_path, _url(postgres, wrong), events_table).connect()
    with pytest.raises(SiemUnavailable) as raised:
        connector.search(SiemQuery(ASKED, SINCE, UNTIL))
    connector.close()
    assert raised.value.kind is ErrorKind.TARGET_ERROR
    assert raised.value.reason == (
        f"postgresql+psycopg://{postgres.admin_user}:***@{postgres.host}:{postgres.port}/{postgres.dbname} "
        f"table {events_table}: authentication failed (OperationalError)"
    )
    assert wrong not in str(raised.value) and raised.value.__cause__ is None


def test_a_server_that_is_not_there_is_unreachable(postgres: PostgresServer, tmp_path: Path) -> None:
    password = postgres.admin_password.reveal()
    connector = _settings(tmp_path, _url(postgres, password, port=free_port()), "events").connect()
    with pytest.raises(SiemUnavailable) as raised:
        connector.search(SiemQuery(ASKED, SINCE, UNTIL))
    connector.close()
    assert raised.value.kind is ErrorKind.UNREACHABLE
    assert password not in raised.value.reason


def test_a_server_that_never_answers_times_out(postgres: PostgresServer, tmp_path: Path) -> None:
    with silent_endpoint() as address:
        port = int(address.rsplit(":", 1)[1])
        settings = _settings(tmp_path, _url(postgres, "pw", port=port), "events", timeout_seconds=1)
        connector = settings.connect()
        with pytest.raises(SiemUnavailable) as raised:
            connector.search(SiemQuery(ASKED, SINCE, UNTIL))
        connector.close()
    assert raised.value.kind is ErrorKind.TIMEOUT


def test_a_missing_table_is_no_answer(postgres: PostgresServer, tmp_path: Path) -> None:
    password = postgres.admin_password.reveal()
    connector = _settings(tmp_path, _url(postgres, password), "no_such_table").connect()
    with pytest.raises(SiemUnavailable) as raised:
        connector.search(SiemQuery(ASKED, SINCE, UNTIL))
    connector.close()
    assert raised.value.kind is ErrorKind.TARGET_ERROR
    assert raised.value.reason.endswith("table no_such_table: server error 42P01 (ProgrammingError)")
    assert password not in raised.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:{secret}@host:notaport/db",  # SQLAlchemy's parser fails
        "nosuchdialect://u:{secret}@host/db",  # no dialect of that name
        "{secret}",  # not a URL at all
    ],
)
def test_an_unusable_url_is_no_answer_and_never_shown(tmp_path: Path, url: str) -> None:
    secret = "S3cret-" + secrets.token_hex(8)
    connector = _settings(tmp_path, url.format(secret=secret), "events").connect()
    with pytest.raises(SiemUnavailable) as raised:
        connector.search(SiemQuery(ASKED, SINCE, UNTIL))
    connector.close()
    assert raised.value.kind is ErrorKind.TARGET_ERROR
    assert secret not in raised.value.reason


def test_names_are_bound_and_quoted_never_formatted(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "postgresql://u:p@h/db", "audit.events")
    compiled = str(statement(settings).compile(dialect=postgresql.dialect()))
    assert "FROM audit.events" in compiled and 'events."user"' in compiled
    assert "correlation_id IN (__[POSTCOMPILE_ids])" in compiled
    assert (
        "event_time >= %(since)s::TIMESTAMP WITH TIME ZONE AND audit.events.event_time <= %(until)s"
        in compiled
    )
    assert compiled.rstrip().endswith("ORDER BY audit.events.event_time")
    for table in ("events; DROP TABLE x", "a.b.c", "1events", 'ev"ents', ""):
        with pytest.raises(ValueError):
            _settings(tmp_path, "postgresql://u:p@h/db", table)
    for column in ("event time", "x--", "t)"):
        with pytest.raises(ValueError):
            _settings(tmp_path, "postgresql://u:p@h/db", "events", columns={**COLUMNS, "time": column})


def test_every_sqlalchemy_exception_is_translated() -> None:
    known = known_classes()
    classes = [
        cls
        for _, cls in inspect.getmembers(sqlalchemy.exc, inspect.isclass)
        if issubclass(cls, Exception) and not issubclass(cls, Warning)
    ]
    assert [cls.__name__ for cls in classes if not issubclass(cls, known)] == []


def test_settings_load_as_an_environments_siem_connector() -> None:
    siem = SiemSettings.model_validate(
        {
            "connectors": {
                "warehouse": {"type": "sql", "url": {"env": "PP_SIEM_URL"}, "table": "t", "columns": COLUMNS}
            }
        }
    )
    assert isinstance(siem.settings_of("warehouse"), SqlSettings)
    with pytest.raises(ValueError, match="never a literal"):
        SqlSettings.model_validate(
            {"type": "sql", "url": "postgresql://u:p@h/db", "table": "t", "columns": COLUMNS}
        )
