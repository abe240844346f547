"""The PostgreSQL plane's exception table: every psycopg exception class has a decided outcome, and a
refused connection (which carries no SQLSTATE) is classified by its message without repeating it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import psycopg
import psycopg.errors as pe
import pytest

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.postgres.errors import DRIVER_MISSING, PostgresSetupError, known_classes, translate

DENIED, NOT_FOUND, ERROR = Outcome.DENIED, Outcome.NOT_FOUND, Outcome.ERROR
MARKER = "LEAKED0secret0value"

# What psycopg 3.3 raises for a refused connection, measured against PostgreSQL 15 (the role is the marker:
# the server's message names it, and no reason may).
CONNECTION_FAILED = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
MESSAGES: list[tuple[str, Failure]] = [
    (f'FATAL:  password authentication failed for user "{MARKER}"', Failure(DENIED, "authentication failed")),
    (f'FATAL:  role "{MARKER}" is not permitted to log in', Failure(DENIED, "login not permitted")),
    (f'FATAL:  role "{MARKER}" does not exist', Failure(DENIED, "authentication failed")),
    (f'FATAL:  database "{MARKER}" does not exist', Failure(NOT_FOUND, "database not found")),
    (
        f'FATAL:  permission denied for database "{MARKER}"\nDETAIL:  User does not have CONNECT privilege.',
        Failure(DENIED, "permission denied"),
    ),
    (
        f'FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "{MARKER}", database "postgres", no '
        "encryption",
        Failure(DENIED, "connection not allowed"),
    ),
    ("fe_sendauth: no password supplied", Failure(DENIED, "authentication failed")),
    ("FATAL:  sorry, too many clients already", Failure.error(ErrorKind.THROTTLED, "too many connections")),
    (
        "FATAL:  the database system is starting up",
        Failure.error(ErrorKind.TARGET_ERROR, "server not accepting connections"),
    ),
    (
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
        Failure.error(ErrorKind.UNREACHABLE, "connection failed"),
    ),
    (
        "server does not support SSL, but SSL was required",
        Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed"),
    ),
    # The server's language is not English (lc_messages): an error, never a guessed decision.
    (
        f'FATAL:  Passwort-Authentifizierung für Benutzer "{MARKER}" fehlgeschlagen',
        Failure.error(ErrorKind.TARGET_ERROR, "unrecognised connection failure"),
    ),
]


@pytest.mark.parametrize(("message", "expected"), MESSAGES)
def test_a_refused_connection_is_classified_by_its_message(message: str, expected: Failure) -> None:
    failure = translate(psycopg.OperationalError(CONNECTION_FAILED + message))
    assert failure == expected
    assert MARKER not in repr(failure)


def test_a_quoted_name_never_poses_as_a_fragment() -> None:
    # A role (or database) named like a refusal: the quoted name is blanked before matching.
    message = CONNECTION_FAILED + 'FATAL:  database "password authentication failed for user" does not exist'
    assert translate(psycopg.OperationalError(message)) == Failure(NOT_FOUND, "database not found")


def test_a_decision_wins_over_an_address_that_refused() -> None:
    # host=localhost: ::1 refused, 127.0.0.1 decided; psycopg joins both messages.
    message = (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
        'authentication failed for user "x"\nMultiple connection attempts failed. All failures were:\n'
        "- host: 'localhost', port: 5432, hostaddr: '::1': connection failed: Connection refused\n"
    )
    assert translate(psycopg.OperationalError(message)) == Failure(DENIED, "authentication failed")


# SQLSTATE classes that are the server's decision; every other class is an error.
DECISIONS: dict[type[BaseException], Outcome] = {
    pe.InvalidPassword: DENIED,
    pe.InvalidAuthorizationSpecification: DENIED,
    pe.InsufficientPrivilege: DENIED,
    pe.InvalidCatalogName: NOT_FOUND,
}


def every_psycopg_error() -> list[type[BaseException]]:
    classes = {
        cls
        for module in (psycopg, pe)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, psycopg.Error)
    }
    return sorted(classes, key=lambda c: c.__qualname__)


@pytest.mark.parametrize("cls", every_psycopg_error(), ids=lambda c: c.__qualname__)
def test_every_psycopg_class_is_decided_and_no_reason_repeats_the_message(cls: type[BaseException]) -> None:
    failure = translate(cls(f"boom {MARKER}"))
    assert failure is not None
    assert MARKER not in failure.reason
    decided = [outcome for base, outcome in DECISIONS.items() if issubclass(cls, base)]
    # Only the classes that mean a decision give one, and exactly that one.
    assert failure.outcome is (decided[0] if decided else ERROR)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (pe.InvalidPassword("x"), Failure(DENIED, "authentication failed")),
        (pe.InvalidAuthorizationSpecification("x"), Failure(DENIED, "not authorized")),
        (pe.InsufficientPrivilege("x"), Failure(DENIED, "permission denied")),
        (pe.InvalidCatalogName("x"), Failure(NOT_FOUND, "database not found")),
        (pe.ConnectionTimeout("connection timeout expired"), Failure.error(ErrorKind.TIMEOUT, "timed out")),
        (pe.QueryCanceled("x"), Failure.error(ErrorKind.TIMEOUT, "timed out")),
        (pe.TooManyConnections("x"), Failure.error(ErrorKind.THROTTLED, "too many connections")),
        (pe.AdminShutdown("x"), Failure.error(ErrorKind.TARGET_ERROR, "server shutting down")),
        (pe.DiskFull("x"), Failure.error(ErrorKind.TARGET_ERROR, "server error 53100")),
        (pe.UndefinedTable("x"), Failure.error(ErrorKind.TARGET_ERROR, "server error 42P01")),
        (
            psycopg.ProgrammingError('invalid connection option "bogus"'),
            Failure.error(ErrorKind.HARNESS_ERROR, "invalid connection parameters"),
        ),
        (
            psycopg.InterfaceError("the connection is closed"),
            Failure.error(ErrorKind.HARNESS_ERROR, "driver misuse"),
        ),
        (
            psycopg.DatabaseError("SELECT 1 answered something else"),
            Failure.error(ErrorKind.TARGET_ERROR, "database error"),
        ),
    ],
)
def test_coded_and_client_errors(exc: BaseException, expected: Failure) -> None:
    assert translate(exc) == expected


def test_setup_errors_are_harness_errors_with_their_message_and_foreign_ones_are_not_ours() -> None:
    assert translate(PostgresSetupError("no driver")) == Failure.error(ErrorKind.HARNESS_ERROR, "no driver")
    assert translate(ValueError("x")) is None
    assert known_classes()[0] is pe.ConnectionTimeout


def test_without_the_driver_the_plane_loads_and_a_step_is_a_harness_error_naming_the_extra() -> None:
    # A fresh interpreter where psycopg cannot be imported (None in sys.modules makes import fail).
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from parityprobe.probes.postgres.connect import Connect\n"
        "from parityprobe.secret import Secret\n"
        "from tests.probe_support import environment, observe, probe_context\n"
        "env = environment({'name': 'x', 'postgres': {'host': '127.0.0.1'}})\n"
        "params = {'user': 'u', 'password': Secret('p' * 12)}\n"
        "print(repr(observe(Connect(), params, probe_context(env, 's'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = Failure.error(ErrorKind.HARNESS_ERROR, DRIVER_MISSING)
    assert done.stdout.strip() == repr(expected)
    assert "pip install 'parityprobe[postgres]'" in DRIVER_MISSING
