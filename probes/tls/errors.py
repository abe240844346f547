"""The one place where the TLS plane's failures become outcomes.

The question is what the server presents and whether it lets this client in, so only the server's refusal
of the client is a decision: DENIED "client certificate required" (it asked for a certificate, none was
given, and it ended the handshake) and DENIED "certificate refused" (it rejected the one given: unknown CA,
bad, expired or revoked certificate). The probe reads those from the server's alert together with what it
knows of the handshake (was a certificate requested, was one presented: :func:`client_certificate_refusal`)
and raises :class:`HandshakeRefused`. A chain that does not verify is not a refusal of anything: the probe
reports it in the grant.

Everything else means there is no answer to the question: a closed port or an unknown host is an ERROR
(unreachable; the network plane, ``net.tcp_connect``, is where reachability is the question), silence a
timeout, a peer that does not speak TLS (a plain TCP or HTTP server) or breaks the handshake a target error.
Reasons are fixed phrases, never OpenSSL's or the system's message (which repeat names and addresses).
"""

from __future__ import annotations

import errno
import socket
import ssl

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

CLIENT_CERTIFICATE_REQUIRED = "client certificate required"
CERTIFICATE_REFUSED = "certificate refused"
HANDSHAKE_FAILED = "tls handshake failed"
CRYPTOGRAPHY_MISSING = "the tls plane needs cryptography: pip install 'parityprobe[tls]'"

# OpenSSL's names for the alerts a server sends about the client's certificate (RFC 8446 §6.2).
_CERTIFICATE_REQUIRED_ALERT = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
_CERTIFICATE_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        # TLS 1.2 servers (OpenSSL's among them) answer a missing certificate with a bare handshake failure;
        # once the server has asked for a certificate, cipher negotiation is over, so that is what it means.
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
    }
)


class TlsSetupError(ParityProbeError):
    """The environment cannot run a TLS probe as configured (a client certificate it does not declare, a
    certificate, key or CA bundle that cannot be loaded, no cryptography package). Its message is written by
    us, holds no secret, and becomes the harness error's reason."""


class HandshakeRefused(Exception):
    """The server refused this client: ``reason`` is :data:`CLIENT_CERTIFICATE_REQUIRED` or
    :data:`CERTIFICATE_REFUSED`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def client_certificate_refusal(alert: str | None, *, requested: bool, presented: bool) -> str | None:
    """What a server's alert (OpenSSL's reason name, ``exc.reason`` of an ``ssl.SSLError``) says about the
    client's certificate, given whether the server asked for one and whether one was presented; None when it
    is about something else."""
    if alert == _CERTIFICATE_REQUIRED_ALERT:
        # Sent with a certificate presented, it says that one was not acceptable.
        return CERTIFICATE_REFUSED if presented else CLIENT_CERTIFICATE_REQUIRED
    if requested and alert in _CERTIFICATE_ALERTS:
        return CERTIFICATE_REFUSED if presented else CLIENT_CERTIFICATE_REQUIRED
    return None


_LOST = Failure.error(ErrorKind.TARGET_ERROR, "connection lost")
# (class, errno or None for any, failure), most specific first. One table, so the unit test can walk it.
_TABLE: tuple[tuple[type[BaseException], int | None, Failure], ...] = (
    (TimeoutError, None, Failure.error(ErrorKind.TIMEOUT, "timed out")),
    # The probe verifies chains itself and reports them in the grant; should one escape, it is no decision.
    (
        ssl.SSLCertVerificationError,
        None,
        Failure.error(ErrorKind.TARGET_ERROR, "certificate does not verify"),
    ),
    # The peer closed mid-handshake: a server that does not speak TLS, or gave up on this client.
    (ssl.SSLZeroReturnError, None, Failure.error(ErrorKind.TARGET_ERROR, "closed during handshake")),
    (ssl.SSLEOFError, None, Failure.error(ErrorKind.TARGET_ERROR, "closed during handshake")),
    (ssl.SSLSyscallError, None, _LOST),
    # Non-blocking reads are handled by the probe; one escaping is our mistake.
    (ssl.SSLWantReadError, None, Failure.error(ErrorKind.HARNESS_ERROR, "tls misuse")),
    (ssl.SSLWantWriteError, None, Failure.error(ErrorKind.HARNESS_ERROR, "tls misuse")),
    # Wrong version number, no shared cipher, any other alert: the target does not speak TLS as asked.
    (ssl.SSLError, None, Failure.error(ErrorKind.TARGET_ERROR, HANDSHAKE_FAILED)),
    (socket.gaierror, None, Failure.error(ErrorKind.UNREACHABLE, "name resolution failed")),
    (ConnectionRefusedError, None, Failure.error(ErrorKind.UNREACHABLE, "connection refused")),
    (ConnectionResetError, None, Failure.error(ErrorKind.TARGET_ERROR, "connection reset")),
    (ConnectionAbortedError, None, _LOST),
    (BrokenPipeError, None, _LOST),
    (PermissionError, None, Failure.error(ErrorKind.UNREACHABLE, "blocked by local policy")),
    (OSError, errno.EHOSTUNREACH, Failure.error(ErrorKind.UNREACHABLE, "host unreachable")),
    (OSError, errno.ENETUNREACH, Failure.error(ErrorKind.UNREACHABLE, "network unreachable")),
    (OSError, None, Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    (UnicodeError, None, Failure.error(ErrorKind.HARNESS_ERROR, "invalid host name")),
)


def translate(exc: BaseException) -> Failure | None:
    """The outcome ``exc`` means, or None when it is not a TLS, network or TLS-setup failure."""
    if isinstance(exc, TlsSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, str(exc))
    if isinstance(exc, HandshakeRefused):
        return Failure(Outcome.DENIED, exc.reason)
    for cls, code, failure in _TABLE:
        if isinstance(exc, cls) and (code is None or getattr(exc, "errno", None) == code):
            return failure
    return None


def table() -> tuple[tuple[type[BaseException], int | None, Failure], ...]:
    """The rows the table maps, in matching order (for tests and documentation)."""
    return _TABLE
