"""The TLS plane's client contexts: one that verifies the server against a trust store (what a workload's
client would do), one that does not (to learn what the server presents whatever it is), each with or
without a client certificate, and the watcher that tells which handshake messages the server sent.

Contexts are built once per invocation and environment (the probe caches them in the context's client
cache): loading a trust store or a key is far slower than a handshake on a near network.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parityprobe.redact import Redacting
from parityprobe.secret import Secret

from .errors import TlsSetupError
from .settings import ClientCertificate

# Handshake message types (RFC 8446 §4), as OpenSSL's message callback reports them.
_HANDSHAKE = 22
_CERTIFICATE_REQUEST = 13
_NEW_SESSION_TICKET = 4


@dataclass
class Seen:
    """What the server sent in one connection, as far as the watcher could tell: ``requested`` is None when
    this Python cannot watch handshake messages."""

    requested: bool | None
    ticket: bool = False


_seen = threading.local()
# The ssl module's message callback is a debugging hook (``SSLContext._msg_callback``, CPython 3.8 on). It is
# the only way the standard library tells whether the server asked for a client certificate.
WATCHABLE = hasattr(ssl.SSLContext, "_msg_callback")


def watch() -> Seen:
    """Start watching the connection about to be made in this thread (OpenSSL calls the callback in the
    thread that drives the handshake)."""
    seen = Seen(requested=False if WATCHABLE else None)
    _seen.current = seen
    return seen


def _on_message(conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: Any) -> None:
    seen: Seen | None = getattr(_seen, "current", None)
    if seen is None or direction != "read" or int(content_type) != _HANDSHAKE:
        return
    if int(msg_type) == _CERTIFICATE_REQUEST:
        seen.requested = True
    elif int(msg_type) == _NEW_SESSION_TICKET:
        seen.ticket = True


def verifying(ca_bundle: str | None) -> ssl.SSLContext:
    """A context that verifies the chain against ``ca_bundle`` (the system trust store when None) and the
    server's name against the certificate."""
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ValueError):  # a missing file, or no certificate in it
        raise TlsSetupError(
            f"the CA bundle {ca_bundle} cannot be loaded (not a PEM file of certificates?)"
        ) from None
    return _watched(context)


def unverified() -> ssl.SSLContext:
    """A context that accepts any chain and any name: to learn what the server presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _watched(context)


def _watched(context: ssl.SSLContext) -> ssl.SSLContext:
    if WATCHABLE:
        context._msg_callback = _on_message  # type: ignore[attr-defined]
    return context


def present(context: ssl.SSLContext, name: str, certificate: ClientCertificate) -> None:
    """Make ``context`` present the client certificate ``name``. Its key reaches OpenSSL through a file only
    this process can read, removed at once (register it with :func:`register_key` first)."""
    key = certificate.key.secret()
    try:
        with _key_file(key) as key_path:
            context.load_cert_chain(certificate.cert, key_path, password=_no_password)
    except (OSError, ValueError):
        raise TlsSetupError(
            f"client certificate {name!r}: {certificate.cert} and its key cannot be loaded "
            "(not PEM, not a pair, or an encrypted key)"
        ) from None


def register_key(redactor: Redacting, key: Secret) -> None:
    """Register a PEM key with the redactor whole and line by line: a key leaking in part is a leak too."""
    redactor.register(key)
    for line in key.reveal().splitlines():
        line = line.strip()
        if line and not line.startswith("-----"):
            redactor.register(Secret(line, key.label))


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


@contextlib.contextmanager
def _key_file(key: Secret) -> Iterator[str]:
    """A path OpenSSL can read the key from: an anonymous memory file where the system has them (the key
    never touches a disk), else a file in a private temporary directory, removed on leaving."""
    data = (key.reveal().strip() + "\n").encode()
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and Path("/proc/self/fd").is_dir():
        descriptor = memfd_create("parityprobe-client-key", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(descriptor, data)
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    with tempfile.TemporaryDirectory(prefix="parityprobe-") as private:  # mode 0700
        path = Path(private) / "client.key"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        yield str(path)
