"""One TLS handshake, observed: connect, shake hands, learn the server's verdict on the client's
certificate, keep what the server presented, close. Nothing is sent after the handshake.

TLS 1.3 servers judge the client's certificate *after* the client's handshake is done: a refusal arrives as
an alert on the first read. So when the server asked for a certificate, the session reads (sending nothing)
until it sees the server's first post-handshake message: a session ticket (accepted), an alert (refused,
:class:`~.errors.HandshakeRefused`), data or a close (accepted). A server that sends no tickets and waits
for the client to speak is given twice the handshake's duration (at least :data:`VERDICT_WAIT_MIN`) to
object, which is ample: its verdict follows the client's last handshake flight by one round trip.
"""

from __future__ import annotations

import select
import ssl
import time
from dataclasses import dataclass

from ..net.tcp_connect import connect
from .contexts import Seen, watch
from .errors import HandshakeRefused, client_certificate_refusal

VERDICT_WAIT_MIN = 0.25


@dataclass(frozen=True)
class Session:
    """What one handshake showed: protocol and cipher agreed, whether a client certificate was requested
    (None: this Python cannot tell), the chain the server sent (DER, leaf first) and, when the context
    verified it, the chain OpenSSL built up to a trusted root."""

    protocol: str
    cipher: str
    requested: bool | None
    sent: tuple[bytes, ...]
    verified: tuple[bytes, ...] | None


def handshake(
    context: ssl.SSLContext, host: str, port: int, server_name: str, budget: float, *, presented: bool
) -> Session:
    """A handshake with ``host:port`` announcing ``server_name`` (SNI), within ``budget`` seconds.

    Raises ``ssl.SSLCertVerificationError`` when ``context`` verifies and the chain does not,
    :class:`HandshakeRefused` when the server refuses the client, and socket or ssl errors otherwise.
    """
    deadline = time.monotonic() + budget
    sock = connect(host, port, budget)
    try:
        tls = context.wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    with tls:
        seen = watch()
        tls.settimeout(max(0.001, deadline - time.monotonic()))
        started = time.monotonic()
        try:
            tls.do_handshake()
        except ssl.SSLCertVerificationError:
            raise
        except ssl.SSLError as exc:
            _raise_refusal(exc, seen, presented)
            raise
        took = time.monotonic() - started
        if tls.version() == "TLSv1.3" and seen.requested is not False:
            wait = min(deadline - time.monotonic(), max(VERDICT_WAIT_MIN, 2 * took))
            _await_verdict(tls, seen, presented, wait)
        cipher = tls.cipher()
        return Session(
            protocol=tls.version() or "unknown",
            cipher=cipher[0] if cipher else "unknown",
            requested=seen.requested,
            sent=_chain(tls, "get_unverified_chain"),
            verified=_chain(tls, "get_verified_chain") if context.verify_mode != ssl.CERT_NONE else None,
        )


def _await_verdict(tls: ssl.SSLSocket, seen: Seen, presented: bool, wait: float) -> None:
    """Read, sending nothing, until the server shows it accepted this client or refuses it."""
    tls.setblocking(False)
    end = time.monotonic() + wait
    while not seen.ticket:
        left = end - time.monotonic()
        if left <= 0 or not select.select([tls], [], [], left)[0]:
            return  # silence: the server is waiting for the client to speak
        try:
            tls.recv(1)
        except ssl.SSLWantReadError:
            continue  # a record that carried no data (a ticket, say)
        except ssl.SSLError as exc:
            _raise_refusal(exc, seen, presented)
            return  # the handshake was done; an abrupt end after it is no refusal of the client
        except OSError:
            return
        return  # data or a clean close: the server moved past the handshake


def _raise_refusal(exc: ssl.SSLError, seen: Seen, presented: bool) -> None:
    refusal = client_certificate_refusal(
        getattr(exc, "reason", None), requested=bool(seen.requested), presented=presented
    )
    if refusal is not None:
        raise HandshakeRefused(refusal) from None


def _chain(tls: ssl.SSLSocket, method: str) -> tuple[bytes, ...]:
    """A chain as DER: ``SSLSocket.get_unverified_chain`` / ``get_verified_chain`` from Python 3.13, the
    same methods of the underlying ``_ssl`` object before (3.10 on); else the leaf alone."""
    getter = getattr(tls, method, None) or getattr(getattr(tls, "_sslobj", None), method, None)
    if getter is None:
        leaf = tls.getpeercert(binary_form=True)
        return (leaf,) if leaf else ()
    return tuple(_der(item) for item in getter() or ())


def _der(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    import _ssl

    der: bytes = item.public_bytes(_ssl.ENCODING_DER)  # type: ignore[attr-defined]
    return der
