"""A throw-away PostgreSQL cluster on a free loopback port, for the lab and the tests.

PostgreSQL refuses to run as root, so as root its programs run as the ``postgres`` user (``setpriv``, which
execs in place: the pid we hold is the server's own). Its data lives in a fresh directory under the system's
temporary directory, not in the caller's work directory: a root-owned work directory (pytest's, the lab's)
is usually closed to other users. The server is started like the lab's other servers: a child process in
its own session, stdout and stderr to a 0600 log, readiness awaited, another port tried on a clash.

Connections over TCP authenticate with ``scram-sha-256``, so a dropped role or a wrong password really is
refused; the socket directory (local connections, trusted) is the data directory, which only ``postgres``
may enter. The cluster's bootstrap superuser is :data:`ADMIN_USER`, with a password generated per cluster:
what Vault's database secrets engine connects as.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parityprobe.errors import LabError
from parityprobe.lab.servers import ServerProcess, free_port, open_private, pid_alive
from parityprobe.secret import Secret

ADMIN_USER = "parityprobe_admin"
DATABASE = "postgres"
KIND = "postgres"
_SYSTEM_USER = "postgres"
_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_READY_TIMEOUT = 30.0
_START_ATTEMPTS = 3
# Durability is worthless for a throw-away cluster; these make start and writes fast. Every connection is
# logged with its application_name: postgres.connect sends the step's correlation id there.
_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "listen_addresses=127.0.0.1",
    "log_connections=on",
)


@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away cluster: where it listens, its admin role, and how to stop it.

    ``process`` has the lab's server shape (kind ``postgres``, pid, port, log), so a lab can record it like
    its other servers; stop it with :meth:`stop` (or :func:`stop_postgres` by pid), never with
    ``ServerProcess.stop``, whose SIGTERM is PostgreSQL's smart shutdown. :meth:`stop` also removes the
    cluster's data (``data_root``, outside the work directory).
    """

    process: ServerProcess
    data_root: Path
    admin_password: Secret
    admin_user: str = ADMIN_USER
    host: str = "127.0.0.1"
    dbname: str = DATABASE

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def url(self) -> str:
        """``postgresql://127.0.0.1:<port>/postgres``: no credentials."""
        return f"postgresql://{self.host}:{self.port}/{self.dbname}"

    @property
    def socket_dir(self) -> Path:
        return self.data_root

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def vault_connection_url(self) -> str:
        """The ``connection_url`` for Vault's ``postgresql-database-plugin``: Vault fills in the templated
        credentials itself; TLS off (loopback, a throw-away cluster)."""
        return f"postgresql://{{{{username}}}}:{{{{password}}}}@{self.host}:{self.port}/{self.dbname}?sslmode=disable"

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (see :func:`stop_postgres`), then remove its data."""
        stop_postgres(self.process.pid, timeout)
        shutil.rmtree(self.data_root, ignore_errors=True)


def stop_postgres(pid: int, timeout: float = 10.0) -> None:
    """Stop the server whose postmaster is ``pid``: fast shutdown (SIGINT: sessions are ended, not waited
    for), then immediate (SIGQUIT), then SIGKILL. Quiet if it is already gone.

    Not :func:`~parityprobe.lab.servers.stop_pid`: its SIGTERM is PostgreSQL's *smart* shutdown, which waits
    for every client (Vault keeps a pool open) to leave; and each backend has its own session, so the
    postmaster's process group holds no backend a SIGKILL of the group could reach.
    """
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.02)


def start_postgres(workdir: Path, on_spawn: Callable[[ServerProcess], None] | None = None) -> PostgresServer:
    """A new cluster (``initdb``), its server started and ready; its log is ``<workdir>/postgres.log``.

    ``on_spawn`` is called as for :func:`parityprobe.lab.servers.start_moto`. LabError when PostgreSQL is not
    installed, when running as root without a ``postgres`` user, or when the server does not start.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = postgres_bindir()
    owner = _owner()
    data_root = Path(tempfile.mkdtemp(prefix="parityprobe-postgres-"))
    try:
        if owner is not None:
            os.chown(data_root, owner.pw_uid, owner.pw_gid)
        password = Secret(secrets.token_urlsafe(24), "postgres admin password")
        _initdb(bindir, data_root, password, owner, workdir / "initdb.log")
        process = _start_server(bindir, data_root, owner, workdir / "postgres.log", on_spawn)
    except BaseException:
        shutil.rmtree(data_root, ignore_errors=True)
        raise
    return PostgresServer(process, data_root, password)


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``: the one on PATH first, else the newest Debian
    ``/usr/lib/postgresql/<version>/bin``. LabError when there is none."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(
        (Path(p) for p in glob.glob(_BIN_GLOB)), key=lambda p: _version_key(p.parent.name), reverse=True
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise LabError(
        "PostgreSQL is not installed (no initdb and postgres on PATH or in /usr/lib/postgresql/*/bin); "
        "install it, e.g. apt-get install postgresql"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _owner() -> pwd.struct_passwd | None:
    """The user the cluster runs as when we are root (PostgreSQL refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise LabError(
            f"PostgreSQL refuses to run as root and there is no {_SYSTEM_USER!r} user to run it as"
        ) from None


def _as_owner(owner: pwd.struct_passwd | None, command: list[str]) -> list[str]:
    if owner is None:
        return command
    # setpriv execs the program in place (runuser forks and waits): the pid we hold is PostgreSQL's.
    return ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups", *command]


def _environment() -> dict[str, str]:
    # The C locale: initdb --no-locale, and server messages in English whatever the host's language.
    return {**os.environ, "LC_ALL": "C", "LANG": "C"}


def _initdb(
    bindir: Path, data_root: Path, password: Secret, owner: pwd.struct_passwd | None, log_path: Path
) -> None:
    pwfile = data_root / "pwfile"
    with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(password.reveal() + "\n")
    if owner is not None:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    command = [
        str(bindir / "initdb"),
        f"--pgdata={data_root / 'data'}",
        f"--username={ADMIN_USER}",
        f"--pwfile={pwfile}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
    ]
    try:
        with open_private(log_path) as log:
            done = subprocess.run(
                _as_owner(owner, command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data_root,
                env=_environment(),
                timeout=120,
                check=False,
            )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise LabError(f"initdb failed (exit {done.returncode}); its log:\n{tail}")


def _start_server(
    bindir: Path,
    data_root: Path,
    owner: pwd.struct_passwd | None,
    log_path: Path,
    on_spawn: Callable[[ServerProcess], None] | None,
) -> ServerProcess:
    last_log = ""
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        command = [str(bindir / "postgres"), "-D", str(data_root / "data"), "-p", str(port)]
        command += ["-k", str(data_root)]
        for setting in _SETTINGS:
            command += ["-c", setting]
        with open_private(log_path) as log:
            proc = subprocess.Popen(
                _as_owner(owner, command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=data_root,
                env=_environment(),
                start_new_session=True,
            )
        server = ServerProcess(KIND, proc.pid, port, log_path)
        try:
            if on_spawn is not None:
                on_spawn(server)
            ready = _wait_ready(proc, data_root / "data" / "postmaster.pid")
        except BaseException:
            stop_postgres(server.pid)
            raise
        if ready:
            return server
        stop_postgres(server.pid)  # a port taken meanwhile: the server exits; try another
        last_log = log_path.read_text(errors="replace")[-2000:]
    raise LabError(f"postgres did not start after {_START_ATTEMPTS} attempts; last log:\n{last_log}")


def _wait_ready(proc: subprocess.Popen[bytes], pid_file: Path) -> bool:
    """Wait until the server says it accepts connections: line 8 of ``postmaster.pid`` reads ``ready``
    (PostgreSQL 10 and later) — no client library needed."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            lines = pid_file.read_text().splitlines()
        except OSError:
            lines = []
        if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
            return True
        time.sleep(0.02)
    return False
