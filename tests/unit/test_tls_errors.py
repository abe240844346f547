"""The TLS plane's exception table: every ssl and socket failure has a decided outcome, only the server's
refusal of the client's certificate is a deny (read from its alert and what the handshake showed), and no
reason repeats what OpenSSL or the system said."""

from __future__ import annotations

import builtins
import errno
import inspect
import socket
import ssl

import pytest

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.tls.errors import (
    CERTIFICATE_REFUSED,
    CLIENT_CERTIFICATE_REQUIRED,
    HandshakeRefused,
    TlsSetupError,
    client_certificate_refusal,
    table,
    translate,
)
from parityprobe.probes.tls.handshake import HandshakeParams, TlsHandshake

DENIED, ERROR = Outcome.DENIED, Outcome.ERROR
MARKER = "LEAKED0secret0value"

# Only the target can be at fault for these (the peer broke or mangled the handshake).
TARGET_FAULTS = (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def failures() -> list[type[BaseException]]:
    """Every OSError class of Python, its socket and ssl modules (a new one must be decided)."""
    classes = {
        cls
        for module in (builtins, socket, ssl)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, OSError)
    }
    return sorted(classes, key=lambda c: c.__qualname__)


def make(cls: type[BaseException], code: int | None = errno.EIO) -> BaseException:
    return cls(code, f"boom {MARKER}") if code is not None else cls(f"boom {MARKER}")


@pytest.mark.parametrize("cls", failures(), ids=lambda c: c.__qualname__)
def test_every_failure_is_an_error_and_no_reason_repeats_the_message(cls: type[BaseException]) -> None:
    failure = translate(make(cls))
    assert failure is not None
    # No exception alone is a decision: a refusal needs the handshake's context (HandshakeRefused).
    assert failure.outcome is ERROR and failure.error_kind is not None
    assert failure.reason and MARKER not in failure.reason
    if issubclass(cls, TARGET_FAULTS) and not issubclass(cls, ssl.SSLWantReadError | ssl.SSLWantWriteError):
        assert failure.error_kind is ErrorKind.TARGET_ERROR


@pytest.mark.parametrize("row", range(len(table())))
def test_every_row_is_reachable(row: int) -> None:
    cls, code, failure = table()[row]
    exc = make(cls, code if code is not None else (None if cls is UnicodeError else errno.EIO))
    assert translate(exc) == failure


def test_closed_ports_silence_and_unknown_hosts_are_errors() -> None:
    assert translate(ConnectionRefusedError(errno.ECONNREFUSED, MARKER)) == Failure.error(
        ErrorKind.UNREACHABLE, "connection refused"
    )
    assert translate(TimeoutError("x")) == Failure.error(ErrorKind.TIMEOUT, "timed out")
    assert translate(socket.gaierror(socket.EAI_NONAME, MARKER)) == Failure.error(
        ErrorKind.UNREACHABLE, "name resolution failed"
    )


# (alert, requested, presented, refusal): OpenSSL's alert names as ``ssl.SSLError.reason`` carries them.
REFUSALS = [
    ("TLSV13_ALERT_CERTIFICATE_REQUIRED", True, False, CLIENT_CERTIFICATE_REQUIRED),
    ("TLSV13_ALERT_CERTIFICATE_REQUIRED", True, True, CERTIFICATE_REFUSED),
    # A TLS 1.2 server refusing a missing certificate says only "handshake failure".
    ("SSLV3_ALERT_HANDSHAKE_FAILURE", True, False, CLIENT_CERTIFICATE_REQUIRED),
    ("TLSV1_ALERT_UNKNOWN_CA", True, True, CERTIFICATE_REFUSED),
    ("SSLV3_ALERT_BAD_CERTIFICATE", True, True, CERTIFICATE_REFUSED),
    ("SSLV3_ALERT_CERTIFICATE_EXPIRED", True, True, CERTIFICATE_REFUSED),
    ("SSLV3_ALERT_CERTIFICATE_REVOKED", True, True, CERTIFICATE_REFUSED),
    ("TLSV1_ALERT_ACCESS_DENIED", True, True, CERTIFICATE_REFUSED),
    # Before the server asked for a certificate, a handshake failure is about ciphers or versions.
    ("SSLV3_ALERT_HANDSHAKE_FAILURE", False, False, None),
    ("TLSV1_ALERT_UNKNOWN_CA", False, True, None),
    ("TLSV1_ALERT_PROTOCOL_VERSION", True, False, None),
    ("WRONG_VERSION_NUMBER", True, True, None),
    (None, True, False, None),
]


@pytest.mark.parametrize(("alert", "requested", "presented", "refusal"), REFUSALS)
def test_a_refusal_is_read_from_the_alert_and_the_handshake(
    alert: str | None, requested: bool, presented: bool, refusal: str | None
) -> None:
    assert client_certificate_refusal(alert, requested=requested, presented=presented) == refusal


def test_own_exceptions() -> None:
    assert translate(HandshakeRefused(CERTIFICATE_REFUSED)) == Failure(DENIED, CERTIFICATE_REFUSED)
    assert translate(TlsSetupError("no such certificate")) == Failure.error(
        ErrorKind.HARNESS_ERROR, "no such certificate"
    )
    assert translate(ValueError(MARKER)) is None


def test_parameters_and_target() -> None:
    probe = TlsHandshake()
    assert (
        probe.target(HandshakeParams(host="10.0.0.5", server_name="api.internal"))
        == "10.0.0.5:443 (api.internal)"
    )
    assert probe.target(HandshakeParams(host="::1", port=8443)) == "[::1]:8443 (::1)"
    for bad in ({"host": "a", "server_name": ".example.com"}, {"host": "a", "port": 0}, {"host": ""}):
        with pytest.raises(ValueError):
            HandshakeParams.model_validate(bad)
