"""The one place where psycopg's exceptions become outcomes, for the PostgreSQL plane.

A refused *connection* carries no SQLSTATE: libpq hands psycopg only the text of the server's ``FATAL``
message (psycopg 3.3 raises a plain ``OperationalError`` with ``sqlstate`` None, observed against PostgreSQL
15 for a wrong password, an unknown role, a role without LOGIN, an unknown database). So those are
classified by fragments of that text (:data:`_REFUSALS`, then :data:`_FAULTS`), with every double-quoted
part (the role, the database, the host) blanked first, so that a name can never pose as a fragment. The
fragments are PostgreSQL's and libpq's English messages: a server whose ``lc_messages`` is another language
yields "unrecognised connection failure", an error, never a decision passed off from a guess.

Errors the server sends *with* a SQLSTATE (after connecting, or should a future libpq report the code of a
refused connection) are matched by class (:data:`_TABLE`, most specific first), else reported with the code.

Reasons are short fixed phrases, never the server's message, which repeats the role name (a Vault-issued
role name is an identifier, not a secret, but it differs on every issue and would make every comparison
differ). The server deliberately tells a wrong password, an unknown role and an expired password apart from
nobody: all three are "authentication failed".
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

AUTHENTICATION_FAILED = "authentication failed"
LOGIN_NOT_PERMITTED = "login not permitted"
CONNECTION_NOT_ALLOWED = "connection not allowed"
NOT_AUTHORIZED = "not authorized"
PERMISSION_DENIED = "permission denied"
DATABASE_NOT_FOUND = "database not found"
UNRECOGNISED = "unrecognised connection failure"
DRIVER_MISSING = "the postgres plane needs psycopg 3: pip install 'parityprobe[postgres]'"


class PostgresSetupError(ParityProbeError):
    """The environment cannot run a PostgreSQL probe as configured (no ``postgres`` section, no driver).

    Its message is written by us, holds no secret, and becomes the harness error's reason.
    """


# Lower-cased fragments of a refused connection's message, with quoted names blanked; checked in order,
# decisions first: when psycopg tried several addresses (``localhost``: ::1, then 127.0.0.1), one refused
# and another decided, the message holds both, and the server's decision is what it is.
_REFUSALS: tuple[tuple[str, Failure], ...] = (
    # Password, md5, scram, and also peer/ident/ldap/pam/cert: '<method> authentication failed for user ""'.
    ("authentication failed for user", Failure(Outcome.DENIED, AUTHENTICATION_FAILED)),
    # libpq: the server asked for a password and there was none (an empty one).
    ("no password supplied", Failure(Outcome.DENIED, AUTHENTICATION_FAILED)),
    # Trust authentication of a role that does not exist.
    ('role "" does not exist', Failure(Outcome.DENIED, AUTHENTICATION_FAILED)),
    ('role "" is not permitted to log in', Failure(Outcome.DENIED, LOGIN_NOT_PERMITTED)),
    ("no pg_hba.conf entry", Failure(Outcome.DENIED, CONNECTION_NOT_ALLOWED)),
    ("pg_hba.conf rejects connection", Failure(Outcome.DENIED, CONNECTION_NOT_ALLOWED)),
    ('permission denied for database ""', Failure(Outcome.DENIED, PERMISSION_DENIED)),
    ('database "" does not exist', Failure(Outcome.NOT_FOUND, DATABASE_NOT_FOUND)),
)

_FAULTS: tuple[tuple[str, Failure], ...] = (
    ("too many clients already", Failure.error(ErrorKind.THROTTLED, "too many connections")),
    ("too many connections for", Failure.error(ErrorKind.THROTTLED, "too many connections")),
    ("connection slots are reserved", Failure.error(ErrorKind.THROTTLED, "too many connections")),
    ("the database system is", Failure.error(ErrorKind.TARGET_ERROR, "server not accepting connections")),
    (
        "is not currently accepting connections",
        Failure.error(ErrorKind.TARGET_ERROR, "database not accepting connections"),
    ),
    ("timeout expired", Failure.error(ErrorKind.TIMEOUT, "timed out")),
    ("ssl", Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed")),
    ("certificate", Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed")),
    ("failed to resolve host", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("could not translate host name", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("connection refused", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("no route to host", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("network is unreachable", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("connection timed out", Failure.error(ErrorKind.TIMEOUT, "timed out")),
    ("server closed the connection unexpectedly", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("could not receive data from server", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("could not send data to server", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    ("could not connect", Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    # libpq refused the options before connecting (an invalid sslmode): our configuration's fault.
    ("invalid", Failure.error(ErrorKind.HARNESS_ERROR, "invalid connection parameters")),
)

_QUOTED = re.compile(r'"[^"]*"')


@cache
def _table() -> tuple[tuple[type[BaseException], Failure | None], ...]:
    """(exception class, failure), most specific first; None: classify by message or SQLSTATE.

    Built on first use: importing this module must not need psycopg (the plane's extra).
    """
    import psycopg
    import psycopg.errors as pe

    return (
        (pe.ConnectionTimeout, Failure.error(ErrorKind.TIMEOUT, "timed out")),
        (pe.CancellationTimeout, Failure.error(ErrorKind.TIMEOUT, "timed out")),
        (pe.QueryCanceled, Failure.error(ErrorKind.TIMEOUT, "timed out")),  # statement_timeout
        (pe.InvalidPassword, Failure(Outcome.DENIED, AUTHENTICATION_FAILED)),  # 28P01
        (pe.InvalidAuthorizationSpecification, Failure(Outcome.DENIED, NOT_AUTHORIZED)),  # 28000
        (pe.InsufficientPrivilege, Failure(Outcome.DENIED, PERMISSION_DENIED)),  # 42501
        (pe.InvalidCatalogName, Failure(Outcome.NOT_FOUND, DATABASE_NOT_FOUND)),  # 3D000
        (pe.TooManyConnections, Failure.error(ErrorKind.THROTTLED, "too many connections")),  # 53300
        (pe.CannotConnectNow, Failure.error(ErrorKind.TARGET_ERROR, "server not accepting connections")),
        (pe.AdminShutdown, Failure.error(ErrorKind.TARGET_ERROR, "server shutting down")),
        # Connection-time failures and the other coded ones: see translate.
        (psycopg.OperationalError, None),
        # The client refused our parameters (an unknown option) before sending anything.
        (psycopg.ProgrammingError, None),
        (psycopg.InterfaceError, Failure.error(ErrorKind.HARNESS_ERROR, "driver misuse")),
        (psycopg.Error, None),
    )


def translate(exc: BaseException) -> Failure | None:
    """The outcome ``exc`` means, or None when it is neither a psycopg nor a PostgreSQL-setup failure."""
    if isinstance(exc, PostgresSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, str(exc))
    try:
        table = _table()
    except ImportError:
        return None
    for cls, failure in table:
        if isinstance(exc, cls):
            return failure if failure is not None else _classify(exc)
    return None


def known_classes() -> tuple[type[BaseException], ...]:
    """The classes the table maps, in matching order (for tests and documentation)."""
    return tuple(cls for cls, _ in _table())


def _classify(exc: Any) -> Failure:
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        # A coded error the table does not name: the code is safe to show, the message is not.
        return Failure.error(ErrorKind.TARGET_ERROR, f"server error {sqlstate}")
    import psycopg

    if isinstance(exc, psycopg.ProgrammingError):
        return Failure.error(ErrorKind.HARNESS_ERROR, "invalid connection parameters")
    if not isinstance(exc, psycopg.OperationalError):
        return Failure.error(ErrorKind.TARGET_ERROR, "database error")
    message = _QUOTED.sub('""', str(exc)).lower()
    for fragment, failure in (*_REFUSALS, *_FAULTS):
        if fragment in message:
            return failure
    return Failure.error(ErrorKind.TARGET_ERROR, UNRECOGNISED)
