"""Shared fixtures: real servers on loopback ports chosen at run time."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from parityprobe.lab.lab import running_lab
from parityprobe.lab.postgres import PostgresServer, start_postgres
from parityprobe.lab.servers import ServerProcess, start_openbao
from parityprobe.lab.state import LabState
from parityprobe.secret import Secret


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Secret]]:
    """A bare OpenBao dev server and its root token (KV v2 mounted at ``secret/``).

    Its file audit device writes to ``<log_path directory>/audit.log``.
    """
    token = Secret("root-" + secrets.token_hex(12), "root token")
    workdir = tmp_path_factory.mktemp("openbao")
    server = start_openbao(workdir, token, audit_log=workdir / "audit.log")
    yield server, token
    server.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster on a free loopback port (as the ``postgres`` user when root): TCP
    logins by scram-sha-256 password; its admin role and password are on the server object."""
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """The default two-environment lab (staging, production), up for the whole test session."""
    with running_lab(tmp_path_factory.mktemp("lab") / "lab") as state:
        yield state
