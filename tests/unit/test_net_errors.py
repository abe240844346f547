"""The network plane's exception table: every socket failure has a decided outcome, only a refusal (and a
local packet filter) is a deny, silence is a timeout unless the step counts it as the network's deny, and no
reason repeats what the system said."""

from __future__ import annotations

import builtins
import errno
import inspect
import socket

import pytest

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.net.errors import Filtered, table, translate
from parityprobe.probes.net.tcp_connect import TcpConnect, TcpConnectParams, seconds

DENIED, NOT_FOUND, ERROR = Outcome.DENIED, Outcome.NOT_FOUND, Outcome.ERROR
MARKER = "LEAKED0secret0value"

# The classes that mean a decision; every other OSError is an error.
DECISIONS: dict[type[BaseException], Failure] = {
    ConnectionRefusedError: Failure(DENIED, "refused"),
    ConnectionResetError: Failure(DENIED, "refused"),
    PermissionError: Failure(DENIED, "blocked by local policy"),
}


def os_errors() -> list[type[BaseException]]:
    """Every OSError class Python and its socket module define (a new one must be decided)."""
    classes = {
        cls
        for module in (builtins, socket)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, OSError)
    }
    return sorted(classes, key=lambda c: c.__qualname__)


def make(cls: type[BaseException], code: int | None = errno.EIO) -> BaseException:
    return cls(code, f"boom {MARKER}") if code is not None else cls(f"boom {MARKER}")


@pytest.mark.parametrize("cls", os_errors(), ids=lambda c: c.__qualname__)
def test_every_os_error_is_decided_and_no_reason_repeats_the_message(cls: type[BaseException]) -> None:
    failure = translate(make(cls))
    assert failure is not None
    assert failure.reason and MARKER not in failure.reason
    assert (failure.error_kind is None) == (failure.outcome is not ERROR)
    if cls in DECISIONS:
        assert failure == DECISIONS[cls]
    elif not issubclass(cls, socket.gaierror):
        assert failure.outcome is ERROR


@pytest.mark.parametrize("row", range(len(table())))
def test_every_row_is_reachable(row: int) -> None:
    # An exception built for each row gets that row's failure: no earlier row shadows it.
    cls, code, failure = table()[row]
    exc = make(cls, code if code is not None else (None if cls is UnicodeError else errno.EIO))
    assert translate(exc) == failure


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (socket.EAI_NONAME, Failure(NOT_FOUND, "unknown host")),
        (socket.EAI_AGAIN, Failure.error(ErrorKind.UNREACHABLE, "name resolution failed")),
        (socket.EAI_FAIL, Failure.error(ErrorKind.UNREACHABLE, "name resolution failed")),
    ],
)
def test_a_name_that_does_not_exist_is_not_found_and_a_failing_resolver_an_error(
    code: int, expected: Failure
) -> None:
    assert translate(socket.gaierror(code, f"boom {MARKER}")) == expected


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.EHOSTUNREACH, "host unreachable"), (errno.ENETUNREACH, "network unreachable")],
)
def test_icmp_unreachable_is_an_error_not_a_deny(code: int, reason: str) -> None:
    assert translate(OSError(code, MARKER)) == Failure.error(ErrorKind.UNREACHABLE, reason)


def test_silence_is_a_timeout_and_filtered_is_the_steps_own_deny() -> None:
    assert translate(TimeoutError("timed out")) == Failure.error(ErrorKind.TIMEOUT, "timed out")
    assert translate(Filtered("no answer within 5s")) == Failure(DENIED, "filtered: no answer within 5s")


def test_foreign_exceptions_are_left_to_others() -> None:
    assert translate(ValueError(MARKER)) is None
    assert translate(KeyError(MARKER)) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(5, "5s"), (0.5, "0.5s"), (29.97, "30s"), (30.0, "30s"), (0.25, "0.3s"), (2.0001, "2.1s")],
)
def test_waits_read_the_same_for_the_same_time(value: float, text: str) -> None:
    assert seconds(value) == text


def test_bad_parameters_are_refused_and_the_target_names_host_and_port() -> None:
    for bad in (
        {"host": "", "port": 80},
        {"host": "a", "port": 0},
        {"host": "a", "port": 70000},
        {"host": "a", "port": 80, "timeout": 0},
    ):
        with pytest.raises(ValueError):
            TcpConnectParams.model_validate(bad)
    probe = TcpConnect()
    assert probe.target(TcpConnectParams(host="db.internal", port=5432)) == "db.internal:5432"
    assert probe.target(TcpConnectParams(host="::1", port=443)) == "[::1]:443"
