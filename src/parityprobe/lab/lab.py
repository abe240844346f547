"""The lab's lifecycle: local environments on real servers, seeded from a lab profile, up and down.

Per environment of the profile: one OpenBao dev server and one moto server (its own AWS account) on free
loopback ports, and an entry in ``<directory>/environments.yaml``, which parityprobe uses exactly as one
written for real infrastructure. The CLI's default directory is :data:`DEFAULT_DIRECTORY`; give the lab a
directory of its own::

    environments.yaml        connections, vars, tier, safety; secrets only as {file: ...} references
    lab-state.json           per environment: server kinds, pids, ports, logs (no secrets)
    <env>/secrets/           0600 files: the workload's credentials, which environments.yaml refers to, and
                             the root token and lab admin key, which nothing reads back (they are there
                             for poking at the lab by hand); removed by ``down``
    <env>/vault-audit.log    OpenBao's file audit device (X-Correlation-ID audited un-HMAC'd)
    <env>/openbao/, <env>/moto/   server logs, kept after ``down``
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import Any

import yaml

from parityprobe.config.environments import EnvironmentsFile
from parityprobe.errors import LabError
from parityprobe.lab.profile import DEFAULT_PROFILE, EnvironmentProfile, load_profile
from parityprobe.lab.seed_aws import REGION, AwsSeed, seed_aws
from parityprobe.lab.seed_vault import VaultSeed, seed_vault
from parityprobe.lab.servers import ServerProcess, pid_alive, start_moto, start_openbao, stop_pid
from parityprobe.secret import Secret

DEFAULT_DIRECTORY = Path(".parityprobe/lab")
ENVIRONMENTS_FILE = "environments.yaml"
STATE_FILE = "lab-state.json"
_STATE_FORMAT = 1
_SECRET_FILES = frozenset(
    {"root-token", "vault-role-id", "vault-secret-id", "aws-access-key-id", "aws-secret-access-key"}
    | {"aws-admin-access-key-id", "aws-admin-secret-access-key"}
)


@dataclass(frozen=True)
class ServerRecord:
    """One server of a lab, as the state file records it."""

    environment: str
    kind: str
    pid: int
    port: int
    log_path: Path
    start_ticks: int | None = None  # so that a pid recycled by an unrelated process is never taken for ours

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        """Still running, and still the process the lab started."""
        same = self.start_ticks is None or _start_ticks(self.pid) == self.start_ticks
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
        """The ``kind`` server (``openbao`` or ``moto``) of ``environment``."""
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
            ServerRecord(env, kind, int(s["pid"]), int(s["port"]), Path(s["log"]), s.get("start_ticks"))
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


def up(directory: Path, profile: Path | None = None) -> LabState:
    """Start, seed and describe a lab in ``directory`` (the default profile unless ``profile`` is given).

    InputError for a bad profile, before anything starts. LabError when a lab is already running there,
    or when anything fails, after every server started so far has been stopped again.
    """
    directory = directory.resolve()
    profile_path = (profile or DEFAULT_PROFILE).resolve()
    environments = load_profile(profile_path).environments
    directory.mkdir(parents=True, exist_ok=True)
    with _lab_lock(directory):
        existing = _read_state(directory)
        if existing is not None:
            if any(s.alive() for s in existing.servers):
                raise LabError(
                    f"a lab is already running in {directory}; stop it with 'parityprobe lab down'"
                )
            _forget(existing)  # a previous lab whose servers have died
        recorder = _Recorder(LabState(directory, profile_path))
        try:
            _bring_up(environments, recorder)
        except BaseException as exc:
            with _signals_held():
                _stop_servers(recorder.state.servers)
                _forget(recorder.state, environments)
            if isinstance(exc, LabError) or not isinstance(exc, Exception):
                raise
            raise LabError(f"the lab did not start: {type(exc).__name__}: {exc}") from exc
        return recorder.state


def down(directory: Path) -> list[str]:
    """Stop every server of the lab in ``directory`` and forget it; what was stopped, one line each.

    Idempotent: with no lab there, or with its servers already gone, it only tidies up.
    """
    directory = directory.resolve()
    if not directory.is_dir():
        return []
    with _lab_lock(directory), _signals_held():
        state = _read_state(directory)
        if state is None:
            return []
        stopped = _stop_servers(state.servers)
        survivors = [f"{s.environment} {s.kind} (pid {s.pid})" for s in state.servers if s.alive()]
        if survivors:
            raise LabError(f"could not stop {', '.join(survivors)}; the lab state in {directory} is kept")
        _forget(state)
        return [f"{s.environment} {s.kind} (pid {s.pid}, {s.url})" for s in stopped]


def status(directory: Path) -> LabStatus | None:
    """Which servers of the lab in ``directory`` are alive, and where; None when there is no lab."""
    state = _read_state(directory.resolve())
    return None if state is None else LabStatus.of(state)


@contextmanager
def running_lab(directory: Path, profile: Path | None = None) -> Iterator[LabState]:
    """A lab that is up inside the block and down after it, also on exceptions, Ctrl-C and SIGTERM."""
    with _sigterm_as_exit():
        state = up(directory, profile)
        try:
            yield state
        finally:
            down(directory)


def _bring_up(environments: Mapping[str, EnvironmentProfile], recorder: _Recorder) -> None:
    directory = recorder.state.directory
    tokens = {name: Secret(token_urlsafe(24), f"{name} vault root token") for name in environments}
    for name in environments:
        # A SIEM reading the audit log must see this lab's events only.
        (directory / name / "vault-audit.log").unlink(missing_ok=True)
        _write_secret(directory, name, "root-token", tokens[name])
        _private_file(directory / name / "openbao" / "openbao.log")  # the dev server prints its root token

    def vault(name: str) -> VaultSeed:
        audit_log = directory / name / "vault-audit.log"
        server = start_openbao(directory / name / "openbao", tokens[name], audit_log=audit_log)
        recorder.add(name, server, audit_log)
        return seed_vault(server.url, tokens[name], environments[name].vault)

    def aws(name: str) -> AwsSeed:
        server = start_moto(directory / name / "moto", environments[name].account_id)
        recorder.add(name, server)
        return seed_aws(server.url, environments[name].aws)

    pool = ThreadPoolExecutor(max_workers=2 * len(environments), thread_name_prefix="parityprobe-lab")
    try:
        vault_jobs = {name: pool.submit(vault, name) for name in environments}
        aws_jobs = {name: pool.submit(aws, name) for name in environments}
        vault_seeds = {name: job.result() for name, job in vault_jobs.items()}
        aws_seeds = {name: job.result() for name, job in aws_jobs.items()}
    finally:
        # Wait for every job even after a failure or Ctrl-C, so that no server starts after the clean-up.
        with _signals_held():
            pool.shutdown(wait=True, cancel_futures=True)
    document = {
        name: _environment_entry(recorder.state, name, env, vault_seeds[name], aws_seeds[name])
        for name, env in environments.items()
    }
    EnvironmentsFile.model_validate({"environments": document})  # never write a file parityprobe refuses
    header = "# Written by `parityprobe lab up` for the lab running here. Secrets are only referenced.\n"
    body = yaml.safe_dump({"environments": document}, sort_keys=False)
    recorder.state.environments_file.write_text(header + body, encoding="utf-8")


def _environment_entry(
    state: LabState, name: str, env: EnvironmentProfile, vault: VaultSeed, aws: AwsSeed
) -> dict[str, Any]:
    """One environment of the environments file; writes the secret files it refers to."""

    def ref(label: str, secret: Secret) -> dict[str, str]:
        return _write_secret(state.directory, name, label, secret)

    ref("aws-admin-access-key-id", aws.admin.access_key_id)
    ref("aws-admin-secret-access-key", aws.admin.secret_access_key)
    return {
        "tier": env.tier.value,
        "vault": {
            "address": state.server(name, "openbao").url,
            "auth": {
                "method": "approle",
                "role_id": ref("vault-role-id", vault.role_id),
                "secret_id": ref("vault-secret-id", vault.secret_id),
            },
        },
        "aws": {
            "region": REGION,
            "endpoint_url": state.server(name, "moto").url,
            "credentials": {
                "method": "static",
                "access_key_id": ref("aws-access-key-id", aws.workload.access_key_id),
                "secret_access_key": ref("aws-secret-access-key", aws.workload.secret_access_key),
            },
        },
        "vars": dict(env.vars),
        "safety": {"allow_effects": ["read"]},
    }


class _Recorder:
    """Writes each server to the state file the moment it has started, so that even a lab whose starter
    was killed outright (SIGKILL) can still be stopped by ``down``."""

    def __init__(self, state: LabState) -> None:
        self._lock = threading.Lock()
        self.state = state

    def add(self, environment: str, server: ServerProcess, audit_log: Path | None = None) -> None:
        ticks = _start_ticks(server.pid)
        record = ServerRecord(environment, server.kind, server.pid, server.port, server.log_path, ticks)
        with self._lock:
            logs = {**self.state.audit_logs, **({environment: audit_log} if audit_log else {})}
            self.state = LabState(
                self.state.directory, self.state.profile, (*self.state.servers, record), logs
            )
            path = self.state.directory / STATE_FILE
            path.with_suffix(".tmp").write_text(self.state.to_json(), encoding="utf-8")
            path.with_suffix(".tmp").replace(path)  # atomic: a reader never sees half a state


def _read_state(directory: Path) -> LabState | None:
    try:
        text = (directory / STATE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return LabState.from_json(directory, text)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"unreadable lab state {directory / STATE_FILE}: {exc}") from None


def _forget(state: LabState, environments: Iterable[str] = ()) -> None:
    """Remove what only makes sense while the servers run (only files the lab writes); keep the logs."""
    (state.directory / STATE_FILE).unlink(missing_ok=True)
    state.environments_file.unlink(missing_ok=True)
    for name in {*state.environments, *environments}:
        folder = state.directory / name / "secrets"
        for label in _SECRET_FILES:
            (folder / label).unlink(missing_ok=True)
        with suppress(OSError):
            folder.rmdir()


def _stop_servers(servers: Iterable[ServerRecord]) -> list[ServerRecord]:
    running = [s for s in servers if s.alive()]
    if running:
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            list(pool.map(lambda s: stop_pid(s.pid), running))
    return running


@contextmanager
def _lab_lock(directory: Path) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per lab directory."""
    with (directory / ".lock").open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError(f"another parityprobe is starting or stopping the lab in {directory}") from None
        yield  # closing the file releases the lock


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux); None where /proc cannot tell."""
    try:
        # Field 22; field 2, the command name in parentheses, may contain spaces.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _write_secret(directory: Path, environment: str, label: str, secret: Secret) -> dict[str, str]:
    """Write one secret to a 0600 file; the ``{file: ...}`` reference to it, relative to ``directory``."""
    path = directory / environment / "secrets" / label
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private_file(path)
    path.write_text(secret.reveal(), encoding="utf-8")
    return {"file": str(path.relative_to(directory))}


def _private_file(path: Path) -> None:
    """An empty file with mode 0600; writers that reopen it (servers.py's log) keep the mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    path.chmod(0o600)  # the mode given to open applies only to a file it creates


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit, so that ``finally`` blocks stop the lab as they do on Ctrl-C."""
    if not _in_main_thread():
        yield
        return

    def exit_(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Defer Ctrl-C and SIGTERM while servers are being stopped, so that a second one cannot orphan any;
    a signal that arrived meanwhile is delivered again afterwards."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)
