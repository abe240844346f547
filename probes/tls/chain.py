"""Reading a server's certificate chain: the leaf's subject, issuer and expiry, and the root it leads to.

Certificates arrive DER-encoded from the handshake and are parsed with :mod:`cryptography`, imported when a
probe runs (:func:`cryptography_module` turns its absence into a setup error naming the extra). Names are
RFC 4514 strings (``CN=api.example.com,O=Example``); fingerprints SHA-256, upper-case hex pairs joined by
colons, as ``openssl x509 -fingerprint -sha256`` prints them.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import CRYPTOGRAPHY_MISSING, TlsSetupError

NOT_SENT = "not sent"


@dataclass(frozen=True)
class ChainFacts:
    """What the grant reports of a chain: the leaf's subject, issuer and expiry, the root's subject and
    fingerprint (:data:`NOT_SENT` when the root is neither sent nor in the trust store)."""

    subject: str
    issuer: str
    not_after: datetime
    root: str
    root_sha256: str


def cryptography_module() -> Any:
    """``cryptography.x509``; TlsSetupError naming the extra when the package is missing."""
    try:
        from cryptography import x509
    except ImportError:
        raise TlsSetupError(CRYPTOGRAPHY_MISSING) from None
    return x509


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate: ``AB:CD:…``."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def facts(sent: Sequence[bytes], verified: Sequence[bytes] | None, trust_store: str | None) -> ChainFacts:
    """The facts of the chain the server ``sent`` (leaf first). ``verified`` is the chain OpenSSL built to a
    trusted root when it verified (its last certificate is that root); otherwise the root is the last sent
    certificate if it is self-signed, else the certificate in the trust store (``trust_store``, a PEM bundle;
    None: the system's) named by the last certificate's issuer, else only its name is known."""
    x509 = cryptography_module()
    leaf = x509.load_der_x509_certificate(sent[0])
    if verified:
        root_der: bytes | None = verified[-1]
        root_name = x509.load_der_x509_certificate(verified[-1]).subject
    else:
        last = x509.load_der_x509_certificate(sent[-1])
        root_name = last.issuer
        root_der = sent[-1] if last.issuer == last.subject else _find_issuer(x509, last, trust_store)
    return ChainFacts(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_after=leaf.not_valid_after_utc,
        root=root_name.rfc4514_string(),
        root_sha256=fingerprint(root_der) if root_der is not None else NOT_SENT,
    )


def _find_issuer(x509: Any, certificate: Any, trust_store: str | None) -> bytes | None:
    """The DER of the trust store's certificate whose subject is ``certificate``'s issuer and whose key
    signed it (a name alone can be shared by an old and a new root); by name alone if no key fits."""
    by_name = [c for c in _trusted(x509, trust_store) if c.subject == certificate.issuer]
    for candidate in by_name:
        try:
            certificate.verify_directly_issued_by(candidate)
        except Exception:  # InvalidSignature, or a key type that cannot have signed it
            continue
        return _der(candidate)
    return _der(by_name[0]) if by_name else None


def _trusted(x509: Any, trust_store: str | None) -> list[Any]:
    path = trust_store
    if path is None:
        defaults = ssl.get_default_verify_paths()
        path = defaults.cafile or defaults.openssl_cafile
    try:
        data = Path(path).read_bytes()
    except (OSError, TypeError):
        return []
    try:
        return list(x509.load_pem_x509_certificates(data))
    except ValueError:
        return []


def _der(certificate: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    der: bytes = certificate.public_bytes(Encoding.DER)
    return der
