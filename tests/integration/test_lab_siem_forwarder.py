"""The lab's SIEM forwarder (:mod:`parityprobe.lab.siem_forwarder`) as the lab runs it — its own process,
started by ``start_siem_forwarder`` — against real stores: a moto server with IAM enforcement on (the
forwarder signs with a seeded admin user's key, as the lab's admin key) and the session's PostgreSQL (as its
admin role). The audit log is written by the tests, in OpenBao's shape: request and response entries, some
with ``error``, all with an ``x-correlation-id`` header list."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from parityprobe.lab.postgres import PostgresServer
from parityprobe.lab.servers import ServerProcess, free_port, start_siem_forwarder
from tests.aws_support import ALLOW_ALL, BOOTSTRAP, REGION, Key, enforce, key_client, moto_server, seed_users
from tests.postgres_support import admin

pytestmark = pytest.mark.lab
T = TypeVar("T")
WAIT = 60.0  # seconds: a bound on waiting, never a measurement


@dataclass(frozen=True)
class Moto:
    url: str
    key: Key


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """A moto server with enforcement on; the key of user ``admin``, who may do anything."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        keys = seed_users(server.url, {"admin": ALLOW_ALL})
        enforce(server.url)
        yield Moto(server.url, keys["admin"])


# --- audit entries, shaped like OpenBao's ------------------------------------------------------------------


def entry(kind: str, cid: str | None, path: str, *, error: str | None = None) -> dict[str, Any]:
    """A ``request`` or ``response`` audit entry for ``path``, with correlation header ``cid``."""
    ns = time.time_ns()
    stamp = datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"
    headers = {"x-correlation-id": [cid]} if cid is not None else {"x-other": ["y"]}
    body: dict[str, Any] = {
        "time": stamp,
        "type": kind,
        "auth": {
            "client_token": "hmac-sha256:" + secrets.token_hex(32),
            "accessor": "hmac-sha256:" + secrets.token_hex(32),
            "display_name": "approle",
            "policies": ["app-read", "default"],
            "token_type": "service",
            "policy_results": {"allowed": error is None},
        },
        "request": {
            "id": str(uuid.uuid4()),
            "operation": "read",
            "mount_point": "secret/",
            "mount_type": "kv",
            "namespace": {"id": "root"},
            "path": path,
            "remote_address": "127.0.0.1",
            "headers": headers,
        },
    }
    if error is not None:
        body["error"] = error
    elif kind == "response":
        body["response"] = {"mount_point": "secret/", "data": {"data": {"k": "hmac-sha256:0b41"}}}
    return body


def pair(cid: str, path: str, *, error: str | None = None) -> list[dict[str, Any]]:
    """What OpenBao writes for one request: its request entry, then its response entry."""
    return [entry("request", cid, path, error=error), entry("response", cid, path, error=error)]


def line(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":")) + "\n"


def append(path: Path, bodies: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(line(body) for body in bodies))


# --- the forwarder and its stores --------------------------------------------------------------------------


def config_file(
    folder: Path,
    audit_log: Path,
    *,
    cloudwatch: dict[str, Any] | None,
    postgres: dict[str, Any] | None,
    only_successes: bool = False,
    poll_seconds: float = 0.1,
) -> Path:
    """The forwarder's config, written 0600 as the lab writes it."""
    config = {
        "audit_log": str(audit_log),
        "only_successes": only_successes,
        "poll_seconds": poll_seconds,
        "cloudwatch": cloudwatch,
        "postgres": postgres,
    }
    path = folder / "forwarder.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return path


def cloudwatch_section(url: str, key: Key, group: str) -> dict[str, Any]:
    return {
        "endpoint_url": url,
        "region": REGION,
        "access_key_id": key[0],
        "secret_access_key": key[1],
        "log_group": group,
        "log_stream": "openbao",
    }


def postgres_section(
    server: PostgresServer, table: str, user: str = "", password: str = ""
) -> dict[str, Any]:
    return {
        "host": server.host,
        "port": server.port,
        "dbname": server.dbname,
        "user": user or server.admin_user,
        "password": password or server.admin_password.reveal(),
        "table": table,
    }


@contextmanager
def forwarder(folder: Path, config: Path) -> Iterator[ServerProcess]:
    process = start_siem_forwarder(folder, config)
    try:
        yield process
    finally:
        process.stop()


def health(process: ServerProcess) -> dict[str, Any]:
    reply = httpx.get(process.url + "/health", timeout=5.0)
    assert reply.status_code == 200
    answer: dict[str, Any] = reply.json()
    return answer


def wait_for(what: str, check: Callable[[], T | None]) -> T:
    """``check``'s first truthy answer, asked until :data:`WAIT` has passed."""
    deadline = time.monotonic() + WAIT
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def until(what: str, fetch: Callable[[], T], ok: Callable[[T], bool]) -> T:
    """``fetch``'s first answer that is ``ok``, asked until :data:`WAIT` has passed."""
    found: list[T] = []

    def check() -> bool:
        found[:] = [fetch()]
        return ok(found[0])

    wait_for(what, check)
    return found[0]


def cloudwatch_events(moto: Moto, group: str) -> list[dict[str, Any]]:
    """Every event of ``group`` (FilterLogEvents, all pages); none when the group is not there yet."""
    logs = key_client(moto.url, moto.key, "logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        return [event for page in pages for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def table_rows(server: PostgresServer, table: str) -> list[dict[str, Any]]:
    """Every row of ``table``; none when it is not there yet."""
    with admin(server) as conn:
        try:
            cur = conn.execute(
                f"SELECT correlation_id, event_time, type, path, operation, error, body FROM {table}"
            )
        except psycopg.errors.UndefinedTable:
            return []
        names = [column.name for column in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def as_messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(event["message"]) for event in events]


def millis(stamp: str) -> int:
    when = datetime.fromisoformat(stamp)
    return int(when.timestamp()) * 1000 + when.microsecond // 1000


def key_of(body: dict[str, Any]) -> tuple[str, str, str]:
    """What tells entries apart: correlation id, type and request id."""
    return body["request"]["headers"]["x-correlation-id"][0], body["type"], body["request"]["id"]


# --- tests -------------------------------------------------------------------------------------------------


def test_every_entry_reaches_both_stores(tmp_path: Path, moto: Moto, postgres: PostgresServer) -> None:
    audit_log = tmp_path / "audit.log"
    before = pair("pp-run1-login", "auth/approle/login") + pair(
        "pp-run1-read-other", "secret/data/billing/db", error="1 error occurred:\n\t* permission denied\n\n"
    )
    append(audit_log, before)  # written before the forwarder starts: shipped too
    group, table = "/lab/staging/all", "siem_all"
    config = config_file(
        tmp_path,
        audit_log,
        cloudwatch=cloudwatch_section(moto.url, moto.key, group),
        postgres=postgres_section(postgres, table),
    )
    with forwarder(tmp_path, config) as process:
        after = [
            *pair("pp-run1-read-own", "secret/data/payments/db"),
            entry("request", "pp-run1-bad", "secret/data/x", error="permission denied"),
        ]
        append(audit_log, after)
        written = before + after
        wait_for("CloudWatch", lambda: len(cloudwatch_events(moto, group)) == 7)
        rows = until("PostgreSQL", lambda: table_rows(postgres, table), lambda r: len(r) == 7)
        state = until("health", lambda: health(process), lambda h: h["shipped"] == 7)

    events = cloudwatch_events(moto, group)
    assert sorted(key_of(m) for m in as_messages(events)) == sorted(key_of(b) for b in written)
    assert all(event["timestamp"] == millis(json.loads(event["message"])["time"]) for event in events)
    by_key = {key_of(body): body for body in written}
    for row in rows:
        body = by_key[key_of(row["body"])]
        assert row["body"] == body
        assert row["correlation_id"] == body["request"]["headers"]["x-correlation-id"][0]
        assert (row["type"], row["path"], row["operation"]) == (body["type"], body["request"]["path"], "read")
        assert row["error"] == body.get("error")
        assert row["event_time"] == datetime.fromisoformat(body["time"])
    assert len({key_of(row["body"]) for row in rows}) == 7  # nothing twice
    assert (state["filtered"], state["errors"], state["last_error"]) == (0, 0, None)
    assert moto.key[1] not in json.dumps(state)
    log_text = process.log_path.read_text()
    assert moto.key[1] not in log_text and postgres.admin_password.reveal() not in log_text


def test_only_successes_never_ships_an_error(tmp_path: Path, moto: Moto, postgres: PostgresServer) -> None:
    audit_log = tmp_path / "audit.log"
    group, table = "/lab/staging/successes", "siem_successes"
    config = config_file(
        tmp_path,
        audit_log,
        cloudwatch=cloudwatch_section(moto.url, moto.key, group),
        postgres=postgres_section(postgres, table),
        only_successes=True,
    )
    denied = pair("pp-run2-forbidden", "secret/data/billing/db", error="permission denied")
    bad_login = [entry("response", "pp-run2-login", "auth/approle/login", error="invalid credentials")]
    allowed = [*pair("pp-run2-own", "secret/data/payments/db"), entry("request", None, "sys/mounts")]
    with forwarder(tmp_path, config) as process:
        append(audit_log, denied[:1] + allowed[:2] + denied[1:] + bad_login + allowed[2:])
        state = until("health", lambda: health(process), lambda h: h["shipped"] == 3)
        # the entries filtered come before the last one shipped: all were read
        assert state["filtered"] == 3 and state["errors"] == 0
    events = as_messages(cloudwatch_events(moto, group))
    rows = table_rows(postgres, table)
    assert sorted(key_of(m) for m in events if m["request"]["headers"].get("x-correlation-id")) == sorted(
        key_of(b) for b in allowed[:2]
    )
    assert len(events) == len(rows) == 3
    assert all("error" not in message for message in events)
    assert all(row["error"] is None and "error" not in row["body"] for row in rows)
    assert sorted(str(row["correlation_id"]) for row in rows) == ["None", "pp-run2-own", "pp-run2-own"]


def test_follows_late_file_halves_rotation_and_truncation(tmp_path: Path, postgres: PostgresServer) -> None:
    audit_log = tmp_path / "audit.log"  # not there yet: OpenBao creates it on its first request
    table = "siem_follow"
    config = config_file(tmp_path, audit_log, cloudwatch=None, postgres=postgres_section(postgres, table))

    def shipped(count: int) -> Callable[[], list[dict[str, Any]] | None]:
        return lambda: rows if len(rows := table_rows(postgres, table)) >= count else None

    with forwarder(tmp_path, config) as process:
        first = pair("pp-f-1", "secret/data/a")
        append(audit_log, first)
        wait_for("the late file", shipped(2))

        # one entry written in two halves: nothing of it is shipped until its newline arrives
        split = line(entry("request", "pp-f-split", "secret/data/b"))
        with audit_log.open("a") as handle:
            handle.write(split[:40])
        wait_for("a read past the half line", lambda: health(process)["stores"]["postgres"]["up"])
        time.sleep(0.5)  # several poll cycles, so the half line has been seen (not a timing assertion)
        assert len(table_rows(postgres, table)) == 2
        with audit_log.open("a") as handle:
            handle.write(split[40:])
        wait_for("the joined line", shipped(3))

        # rotation: renamed, the writer finishes the old file, then a new file appears
        audit_log.rename(tmp_path / "audit.log.1")
        append(tmp_path / "audit.log.1", [entry("response", "pp-f-split", "secret/data/b")])
        rotated = pair("pp-f-2", "secret/data/c")
        append(audit_log, rotated)
        wait_for("the rotated files", shipped(6))

        # truncation (copytruncate): the file is emptied in place, then written from its start
        with audit_log.open("r+") as handle:
            handle.truncate(0)
        truncated = [entry("request", "pp-f-3", "secret/data/d")]
        append(audit_log, truncated)
        rows = wait_for("the truncated file", shipped(7))
        state = health(process)

    assert sorted((row["correlation_id"], row["type"]) for row in rows) == [
        ("pp-f-1", "request"),
        ("pp-f-1", "response"),
        ("pp-f-2", "request"),
        ("pp-f-2", "response"),
        ("pp-f-3", "request"),
        ("pp-f-split", "request"),
        ("pp-f-split", "response"),
    ]
    assert state["shipped"] == 7 and state["errors"] == 0


@contextmanager
def moto_at(folder: Path, port: int) -> Iterator[ServerProcess]:
    """A moto server on ``port`` (enforcement off: moto's bootstrap key), started now."""
    log = folder / "late-moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess("moto", proc.pid, port, log)
    try:
        yield server
    finally:
        server.stop()


def test_stores_down_at_first_get_the_entries_once_up(tmp_path: Path, postgres: PostgresServer) -> None:
    """CloudWatch's moto is not running yet, and PostgreSQL refuses the forwarder's role (not created yet):
    the entries wait, then arrive once both are up. Moto here runs without enforcement (bootstrap key)."""
    port, table = free_port(), "siem_late"
    role, password = f"siem_late_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    group = "/lab/production/late"
    audit_log = tmp_path / "audit.log"
    config = config_file(
        tmp_path,
        audit_log,
        cloudwatch=cloudwatch_section(f"http://127.0.0.1:{port}", BOOTSTRAP, group),
        postgres=postgres_section(postgres, table, role, password),
    )
    written = pair("pp-late-1", "secret/data/a") + pair(
        "pp-late-2", "secret/data/b", error="permission denied"
    )
    with forwarder(tmp_path, config) as process:
        append(audit_log, written)

        def waiting() -> dict[str, Any] | None:
            state = health(process)
            stores = state["stores"]
            ready = all(s["pending"] == 4 and s["up"] is False for s in stores.values())
            return state if ready else None

        state = wait_for("both stores down, entries pending", waiting)
        assert state["errors"] > 0 and state["last_error"] and state["shipped"] == 0
        with admin(postgres) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
            conn.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
        try:
            with moto_at(tmp_path, port) as late:
                wait_for("late moto", lambda: health(process)["shipped"] == 4)
                logs = key_client(late.url, BOOTSTRAP, "logs")
                events = logs.filter_log_events(logGroupName=group)["events"]
                rows = table_rows(postgres, table)
                state = health(process)
        finally:
            with admin(postgres) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")
        log_text = process.log_path.read_text()

    assert sorted(key_of(m) for m in as_messages(events)) == sorted(key_of(b) for b in written)
    assert sorted(key_of(row["body"]) for row in rows) == sorted(key_of(b) for b in written)
    assert {row["correlation_id"] for row in rows} == {"pp-late-1", "pp-late-2"}
    assert all(s["pending"] == 0 and s["up"] for s in state["stores"].values())
    assert password not in log_text and password not in json.dumps(state)
    assert "is down" in log_text and "up again" in log_text


def test_sigterm_ships_what_was_written_before(tmp_path: Path, moto: Moto, postgres: PostgresServer) -> None:
    """With a long poll interval, only the last read and flush at SIGTERM can ship these entries."""
    audit_log = tmp_path / "audit.log"
    group, table = "/lab/staging/sigterm", "siem_sigterm"
    config = config_file(
        tmp_path,
        audit_log,
        cloudwatch=cloudwatch_section(moto.url, moto.key, group),
        postgres=postgres_section(postgres, table),
        poll_seconds=60,
    )
    with forwarder(tmp_path, config) as process:
        wait_for("the first cycle", lambda: all(s["up"] for s in health(process)["stores"].values()))
        written = pair("pp-term-1", "secret/data/a")
        append(audit_log, written)
        process.stop()
        assert not process.alive()
    assert sorted(key_of(m) for m in as_messages(cloudwatch_events(moto, group))) == sorted(
        map(key_of, written)
    )
    assert sorted(key_of(row["body"]) for row in table_rows(postgres, table)) == sorted(map(key_of, written))


def test_a_row_postgres_refuses_leaves_the_others(
    tmp_path: Path, moto: Moto, postgres: PostgresServer
) -> None:
    """jsonb cannot hold ``\\u0000``: that entry is refused (counted) by PostgreSQL alone; the rest of its
    batch arrives."""
    audit_log = tmp_path / "audit.log"
    group, table = "/lab/staging/refused", "siem_refused"
    config = config_file(
        tmp_path,
        audit_log,
        cloudwatch=cloudwatch_section(moto.url, moto.key, group),
        postgres=postgres_section(postgres, table),
    )
    poison = entry("request", "pp-nul", "secret/data/nul\u0000")
    written = [*pair("pp-ok-1", "secret/data/a"), poison, *pair("pp-ok-2", "secret/data/b")]
    with forwarder(tmp_path, config) as process:
        append(audit_log, written)
        state = until("health", lambda: health(process), lambda h: h["stores"]["postgres"]["refused"] > 0)
        wait_for("CloudWatch", lambda: len(cloudwatch_events(moto, group)) == 5)
    rows = table_rows(postgres, table)
    assert sorted(row["correlation_id"] for row in rows) == ["pp-ok-1", "pp-ok-1", "pp-ok-2", "pp-ok-2"]
    assert state["stores"]["postgres"]["shipped"] == 4 and state["stores"]["cloudwatch"]["shipped"] == 5
    assert state["errors"] == 1 and "refused 1" in state["last_error"]
