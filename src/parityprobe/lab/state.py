"""What a lab records about itself, and how: its servers and audit logs in ``<directory>/lab-state.json``
(no secrets), written the moment each server is spawned, read back by ``status`` and ``down``; the lock
that lets one ``up`` or ``down`` at a time into a lab directory.

A PostgreSQL server (kind ``postgres``) keeps its data outside the lab directory (see
:mod:`parityprobe.lab.postgres`): its record also names that data directory, so that ``down`` removes it.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parityprobe.errors import LabError
from parityprobe.lab.postgres import KIND as POSTGRES
from parityprobe.lab.servers import ServerProcess, pid_alive

ENVIRONMENTS_FILE = "environments.yaml"
STATE_FILE = "lab-state.json"
_STATE_FORMAT = 1


@dataclass(frozen=True)
class ServerRecord:
    """One server of a lab, as the state file records it."""

    environment: str
    kind: str
    pid: int
    port: int
    log_path: Path
    start_ticks: int | None = None  # so that a pid recycled by an unrelated process is never taken for ours
    data_dir: Path | None = None  # PostgreSQL's data, outside the lab directory; removed by ``down``

    @property
    def url(self) -> str:
        scheme = "postgresql" if self.kind == POSTGRES else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        """Still running, and still the process the lab started."""
        same = self.start_ticks is None or start_ticks(self.pid) == self.start_ticks
        return pid_alive(self.pid) and same


@dataclass(frozen=True)
class LabState:
    """A lab: its directory, profile, servers and audit logs. Holds no secret."""

    directory: Path
    profile: Path
    servers: tuple[ServerRecord, ...] = ()
    audit_logs: Mapping[str, Path] = field(default_factory=dict)

    @property
    def environments_file(self) -> Path:
        return self.directory / ENVIRONMENTS_FILE

    @property
    def environments(self) -> list[str]:
        return list(dict.fromkeys(s.environment for s in self.servers))

    def server(self, environment: str, kind: str) -> ServerRecord:
        """The ``kind`` server (``openbao``, ``moto`` or ``postgres``) of ``environment``."""
        for s in self.servers:
            if (s.environment, s.kind) == (environment, kind):
                return s
        raise KeyError(f"no {kind} server in lab environment {environment!r}")

    def to_json(self) -> str:
        environments: dict[str, Any] = {}
        for s in self.servers:
            env = environments.setdefault(s.environment, {"servers": {}})
            env["servers"][s.kind] = {"pid": s.pid, "port": s.port, "url": s.url, "log": str(s.log_path)}
            env["servers"][s.kind]["start_ticks"] = s.start_ticks
            if s.data_dir is not None:
                env["servers"][s.kind]["data_dir"] = str(s.data_dir)
            if s.environment in self.audit_logs:
                env["audit_log"] = str(self.audit_logs[s.environment])
        paths = {"profile": str(self.profile), "environments_file": str(self.environments_file)}
        return json.dumps({"format": _STATE_FORMAT, **paths, "environments": environments}, indent=2) + "\n"

    @classmethod
    def from_json(cls, directory: Path, text: str) -> LabState:
        data = json.loads(text)
        if data.get("format") != _STATE_FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        envs = data["environments"]
        servers = tuple(
            ServerRecord(
                env,
                kind,
                int(s["pid"]),
                int(s["port"]),
                Path(s["log"]),
                s.get("start_ticks"),
                Path(s["data_dir"]) if s.get("data_dir") else None,
            )
            for env, entry in envs.items()
            for kind, s in entry["servers"].items()
        )
        audit_logs = {env: Path(e["audit_log"]) for env, e in envs.items() if "audit_log" in e}
        return cls(directory, Path(data["profile"]), servers, audit_logs)


@dataclass(frozen=True)
class ServerStatus:
    """Whether one lab server is alive, and where it listens."""

    environment: str
    kind: str
    pid: int
    url: str
    alive: bool


@dataclass(frozen=True)
class LabStatus:
    """The servers of a lab and whether each is alive."""

    state: LabState
    servers: tuple[ServerStatus, ...]

    @classmethod
    def of(cls, state: LabState) -> LabStatus:
        """Look at every server of ``state`` now."""
        return cls(
            state, tuple(ServerStatus(s.environment, s.kind, s.pid, s.url, s.alive()) for s in state.servers)
        )

    @property
    def running(self) -> bool:
        """Every server is alive."""
        return bool(self.servers) and all(s.alive for s in self.servers)


class Recorder:
    """Writes each server to the state file the moment it is spawned (before it is ready), so that even a
    lab whose starter was killed outright (SIGKILL) can still be stopped by ``down``.

    A server replaces the record of an earlier one of the same environment and kind: that was a failed start
    attempt, which the server starter stopped before spawning the next (see ``servers._start``).
    """

    def __init__(self, state: LabState) -> None:
        self._lock = threading.Lock()
        self.state = state

    def add(
        self,
        environment: str,
        server: ServerProcess,
        audit_log: Path | None = None,
        data_dir: Path | None = None,
    ) -> None:
        """Record ``server`` (and the audit log it writes, or the data directory it keeps) as
        ``environment``'s, in memory and on disk."""
        ticks = start_ticks(server.pid)
        record = ServerRecord(
            environment, server.kind, server.pid, server.port, server.log_path, ticks, data_dir
        )
        with self._lock:
            key = (environment, server.kind)
            servers = (*(s for s in self.state.servers if (s.environment, s.kind) != key), record)
            logs = {**self.state.audit_logs, **({environment: audit_log} if audit_log else {})}
            self.state = LabState(self.state.directory, self.state.profile, servers, logs)
            write_state(self.state)


def write_state(state: LabState) -> None:
    """Replace the state file of ``state``'s lab, atomically: a reader never sees half a state."""
    path = state.directory / STATE_FILE
    path.with_suffix(".tmp").write_text(state.to_json(), encoding="utf-8")
    path.with_suffix(".tmp").replace(path)


def read_state(directory: Path) -> LabState | None:
    """The lab recorded in ``directory``; None when there is none. LabError when the file is unreadable."""
    try:
        text = (directory / STATE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return LabState.from_json(directory, text)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"unreadable lab state {directory / STATE_FILE}: {exc}") from None


def forget_state(directory: Path) -> None:
    """Remove the state file of the lab in ``directory``, if any."""
    (directory / STATE_FILE).unlink(missing_ok=True)


@contextmanager
def lab_lock(directory: Path) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per lab directory."""
    with (directory / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError(f"another parityprobe is starting or stopping the lab in {directory}") from None
        yield  # closing the file releases the lock


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux); None where /proc cannot tell."""
    try:
        # Field 22; field 2, the command name in parentheses, may contain spaces.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
