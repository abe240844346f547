"""``parityprobe daemon`` as a real subprocess in tests: start it, signal it, read its log, its health
endpoints, its undo journal and what it stored; wait for conditions with a generous deadline (never a
fixed sleep, never an assertion on how long something took); and the lab's files adapted for a test."""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import yaml

from parityprobe.daemon.records import ScheduleEvent, ScheduleOutcome
from parityprobe.lab.postgres import KIND, PostgresServer, postgres_bindir, stop_postgres
from parityprobe.lab.servers import ServerProcess, free_port
from parityprobe.lab.state import LabState
from parityprobe.model import Run
from parityprobe.store import ResultStore
from parityprobe.store.events import read_events

T = TypeVar("T")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DEADLINE = 120.0  # seconds: generous, so a loaded machine is slow, not failing
# What the daemon logs at INFO for each run it made (see Daemon.due).
RUN_LINE = re.compile(r"INFO parityprobe\.daemon\.daemon: (\S+) in (\S+): run ([0-9a-f]+), (\d+) steps")
# Variables that would change how the daemon starts, whatever the test's own environment holds.
_UNSET = ("PARITYPROBE_PAUSED", "PARITYPROBE_STORE_URL")


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``condition`` until it returns something truthy, which is returned; fail naming ``what`` when the
    deadline passes (the deadline is only a safety net: nothing asserts on how long it took)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting ({timeout:g}s) for {what}")
        time.sleep(0.2)


def at_least(count: int, items: Callable[[], list[T]]) -> Callable[[], list[T] | None]:
    """A condition for :func:`wait_for`: ``items()`` once it holds ``count`` or more."""

    def condition() -> list[T] | None:
        found = items()
        return found if len(found) >= count else None

    return condition


@dataclass(frozen=True)
class LoggedRun:
    scenario: str
    environment: str
    run_id: str
    steps: int


@dataclass
class Daemon:
    """A running ``parityprobe daemon``: its process, health port, state directory and stderr file."""

    proc: subprocess.Popen[bytes]
    port: int
    state_dir: Path
    stderr_path: Path

    def get(self, path: str) -> tuple[int, str]:
        """Status and body of ``GET path`` on its health endpoints; (0, why) when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as reply:
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def runs_logged(self) -> list[LoggedRun]:
        return [LoggedRun(m[1], m[2], m[3], int(m[4])) for m in RUN_LINE.finditer(self.log())]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = DEADLINE) -> int:
        """SIGTERM, then its exit code once it has ended."""
        self.send(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the daemon did not exit within {timeout:g}s; its log:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """``kill -9``: no handler, no cleanup, no flush."""
        self.proc.kill()
        self.proc.wait(DEADLINE)

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def not_ready(self) -> str | None:
        """Why ``/readyz`` answers 503, or None while it does not."""
        status, body = self.get("/readyz")
        return body if status == 503 else None


def daemon_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "parityprobe", "daemon", *map(str, args)]


def daemon_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in _UNSET}
    return {**environ, **(extra or {})}


@contextmanager
def running_daemon(
    environments: Path,
    env: str,
    paths: list[Path],
    state_dir: Path,
    *options: str | Path,
    environ: dict[str, str] | None = None,
) -> Iterator[Daemon]:
    """``parityprobe daemon --environments ... --env ... --state-dir ... --listen 127.0.0.1:<free> [options]
    PATHS`` as a subprocess, its stderr in ``<state_dir>.stderr``; killed on leaving if still running."""
    port = free_port()
    stderr_path = state_dir.with_name(state_dir.name + ".stderr")
    command = daemon_command(
        "--environments", environments, "--env", env, "--state-dir", state_dir,
        "--listen", f"127.0.0.1:{port}", *options, *paths,
    )  # fmt: skip
    with stderr_path.open("ab") as stderr:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            env=daemon_environ(environ),
        )  # fmt: skip
    daemon = Daemon(proc, port, state_dir, stderr_path)
    try:
        yield daemon
    finally:
        if daemon.alive():
            daemon.kill()


def run_daemon(*args: str | Path, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``parityprobe daemon ARGS`` to its end (``--once``, or bad input)."""
    return subprocess.run(
        daemon_command(*args),
        capture_output=True,
        text=True,
        timeout=300,
        env=daemon_environ(environ),
        check=False,
    )


# --- what the daemon left: its journal, its store ----------------------------------------------------------


def pending_undos(state_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``pending_undos`` in the daemon's local journal (none when it has no journal yet)."""
    path = state_dir / "journal.sqlite"
    if not path.exists():
        return []
    connection = sqlite3.connect(path, timeout=30)
    connection.row_factory = sqlite3.Row
    try:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE name = 'pending_undos'").fetchall()
        if not tables:
            return []
        return [dict(row) for row in connection.execute("SELECT * FROM pending_undos")]
    finally:
        connection.close()


def stored_runs(url: str, scenario: str | None = None, environments: list[str] | None = None) -> list[Run]:
    store = ResultStore(url)
    try:
        return store.runs(EPOCH, scenario, environments)
    finally:
        store.close()


def stored_events(url: str, outcome: ScheduleOutcome | None = None) -> list[ScheduleEvent]:
    store = ResultStore(url)
    try:
        events = read_events(store, EPOCH)
    finally:
        store.close()
    return [e for e in events if outcome is None or e.outcome is outcome]


# --- the lab's files, adapted ------------------------------------------------------------------------------


def lab_environments(lab: LabState, path: Path, env: str, safety: dict[str, Any]) -> Path:
    """The lab's environments file reduced to ``env``, with ``safety`` merged into its own, written to
    ``path``; the relative paths of its secret and log files made absolute, since ``path`` is elsewhere."""
    document = yaml.safe_load(lab.environments_file.read_text())
    section = document["environments"][env]
    section["safety"] = {**section.get("safety", {}), **safety}
    path.write_text(yaml.safe_dump({"environments": {env: _absolute(section, lab.directory)}}))
    return path


def _absolute(value: Any, base: Path) -> Any:
    if isinstance(value, dict):
        return {
            k: str(base / v) if k in ("file", "path") and isinstance(v, str) and (base / v).exists()
            else _absolute(v, base)
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    return value


# --- a PostgreSQL cluster of the test's own, stopped and started again -----------------------------------


def postgres_url(server: PostgresServer, database: str | None = None) -> str:
    """A store URL with the cluster's admin credentials."""
    password = server.admin_password.reveal()
    return (
        f"postgresql://{server.admin_user}:{password}@{server.host}:{server.port}/{database or server.dbname}"
    )


def answers(server: PostgresServer) -> bool:
    try:
        with psycopg.connect(postgres_url(server), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def pause_postgres(server: PostgresServer) -> None:
    """Stop the server, keeping its data (``PostgresServer.stop`` would remove it)."""
    stop_postgres(server.process.pid)


def resume_postgres(server: PostgresServer) -> PostgresServer:
    """Start a server :func:`pause_postgres` stopped, on its port and data; the running server returned (its
    ``stop`` stops it and removes the data)."""
    command = [str(postgres_bindir() / "postgres"), "-D", str(server.data_root / "data")]
    command += ["-p", str(server.port), "-k", str(server.data_root)]
    command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    if os.geteuid() == 0:  # PostgreSQL refuses root: run it as postgres, as start_postgres does
        owner = pwd.getpwnam("postgres")
        command = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups", *command]
    with server.log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=server.data_root,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"}, start_new_session=True,
        )  # fmt: skip
    resumed = dataclasses.replace(server, process=ServerProcess(KIND, proc.pid, server.port, server.log_path))

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(
                f"PostgreSQL did not start again; its log:\n{server.log_path.read_text()[-2000:]}"
            )
        return answers(resumed)

    try:
        wait_for(up, "PostgreSQL to accept connections again")
    except BaseException:
        stop_postgres(proc.pid)
        raise
    return resumed
