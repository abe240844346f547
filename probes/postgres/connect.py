"""``postgres.connect``: does this role and password open a session on the environment's PostgreSQL?"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field

from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from . import errors
from .errors import DRIVER_MISSING, PostgresSetupError
from .settings import PostgresSettings

SECTION = "postgres"
# libpq waits at least 2 s for a connection (a smaller connect_timeout is raised to 2; 0 waits forever).
_MIN_CONNECT_TIMEOUT = 2
# PostgreSQL truncates application_name at 63 bytes.
_APPLICATION_NAME_LIMIT = 63


class ConnectParams(ProbeParams):
    """The role and its password (a Vault-issued pair, typically); ``dbname`` overrides the section's."""

    user: str = Field(min_length=1)
    password: Secret
    dbname: str | None = Field(default=None, min_length=1)


class Connect:
    """Open a real connection as ``user`` to the environment's PostgreSQL, run ``SELECT 1``, close it.

    ALLOWED: the server accepted the credentials and answered. DENIED: it refused them, with a fixed reason:
    "authentication failed" (wrong password, unknown or dropped role, expired password: the server does not
    say which), "login not permitted" (the role has no LOGIN), "connection not allowed" (``pg_hba.conf``
    admits no such connection), "permission denied" (no CONNECT privilege on the database). NOT_FOUND: the
    database does not exist. A server that cannot be reached, does not answer in time or is starting up is
    an ERROR (unreachable, timeout, target_error), never a decision; see :mod:`.errors`.

    The connection carries the step's correlation id as its ``application_name`` (``pg_stat_activity``;
    the server log with ``log_connections`` or ``%a`` in ``log_line_prefix``). The effect is READ: a session
    and ``SELECT 1`` change nothing. Grant: none (a Vault-issued role's name differs on every issue: it is
    no identity to compare). Outputs: none.

    The driver, psycopg 3 (``pip install 'parityprobe[postgres]'``), is imported when the probe runs;
    without it the step is a harness error saying so.
    """

    name: ClassVar[str] = "postgres.connect"
    Params: ClassVar[type[ProbeParams]] = ConnectParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = SECTION
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: ConnectParams, ctx: ProbeContext) -> ProbeResult:
        """One connection, one query, one close; the timer covers connecting and the query."""
        settings = postgres_settings(ctx)
        psycopg = _driver()
        ctx.redactor.register(params.password)
        with ctx.timer:
            connection = psycopg.connect(**_connect_args(settings, params, ctx))
            try:
                row = connection.execute("SELECT 1").fetchone()
            finally:
                connection.close()
        if row != (1,):
            # The target's fault; translated like any reply the plane cannot read.
            raise psycopg.DatabaseError("SELECT 1 answered something else")
        return ProbeResult()

    def translate(self, exc: BaseException) -> Failure | None:
        """See :func:`parityprobe.probes.postgres.errors.translate`."""
        return errors.translate(exc)


def postgres_settings(ctx: ProbeContext) -> PostgresSettings:
    """The environment's ``postgres`` section; PostgresSetupError when it has none."""
    return ctx.environment.require_section(SECTION, PostgresSettings, PostgresSetupError)


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise PostgresSetupError(DRIVER_MISSING) from None
    return psycopg


def _connect_args(settings: PostgresSettings, params: ConnectParams, ctx: ProbeContext) -> dict[str, Any]:
    budget = min(settings.connect_timeout_seconds, ctx.remaining())
    args: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "dbname": params.dbname or settings.dbname,
        "user": params.user,
        "password": params.password.reveal(),
        "sslmode": settings.sslmode,
        # Whole seconds only: libpq reads "0.5" as 0, which means no timeout at all.
        "connect_timeout": max(_MIN_CONNECT_TIMEOUT, math.ceil(budget)),
        "application_name": ctx.correlation_id[:_APPLICATION_NAME_LIMIT],
        # The server bounds the query by what is left of the step (libpq has no read timeout).
        "options": f"-c statement_timeout={max(1, int(ctx.remaining() * 1000))}",
        "autocommit": True,
    }
    if settings.ca_cert is not None:
        args["sslrootcert"] = settings.ca_cert
    return args
