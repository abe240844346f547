"""The lab's workload-identity tokens: one signing key per environment, compact JWS tokens signed with it,
and token files shaped like the projected service-account tokens Kubernetes and CI systems hand a workload.

Each lab environment's OpenBao trusts only its own environment's public key (``jwt_validation_pubkeys``), so
a token minted for one environment is refused by the other, as it would be across real clusters. Tokens are
written by hand (base64url and :mod:`cryptography`, which the ``lab`` extra installs with moto), ES256 by
default or RS256; nothing here needs a JWT library.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from parityprobe.secret import Secret

Algorithm = Literal["ES256", "RS256"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Registered claims the token file sets itself; extra claims may not replace them.
_REGISTERED = frozenset({"iss", "sub", "aud", "iat", "nbf", "exp"})
_P256_COORDINATE_BYTES = 32


@dataclass(frozen=True)
class SigningKey:
    """A lab environment's private signing key, its key id and algorithm; repr shows neither key."""

    kid: str
    algorithm: Algorithm
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        # The header's alg must be what the signature is: a mismatch would be refused, but late and vaguely.
        key = self.private_key
        if self.algorithm == "ES256":
            fits = isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
        else:
            fits = isinstance(key, rsa.RSAPrivateKey)
        if not fits:
            wanted = "an EC P-256" if self.algorithm == "ES256" else "an RSA"
            raise ValueError(f"{self.algorithm} needs {wanted} key")

    def public_pem(self) -> str:
        """The public key as PEM (SubjectPublicKeyInfo), as Vault's ``jwt_validation_pubkeys`` takes it."""
        pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")

    def private_pem(self) -> Secret:
        """The private key as unencrypted PKCS#8 PEM, wrapped: for a lab that keeps its key between runs."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return Secret(pem.decode("ascii"), "jwt signing key")

    @classmethod
    def from_private_pem(cls, pem: Secret, kid: str) -> SigningKey:
        """A key saved with :meth:`private_pem`; its algorithm follows from its type."""
        key = serialization.load_pem_private_key(pem.reveal().encode("ascii"), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(kid, "ES256", key)
        if isinstance(key, rsa.RSAPrivateKey):
            return cls(kid, "RS256", key)
        raise ValueError("a jwt signing key must be an EC P-256 or an RSA key")


def generate_key(environment: str, algorithm: Algorithm = "ES256") -> SigningKey:
    """A fresh signing key for ``environment``; its key id names the environment, plus a random part."""
    kid = f"{environment}-{secrets.token_hex(4)}"
    if algorithm == "ES256":
        return SigningKey(kid, algorithm, ec.generate_private_key(ec.SECP256R1()))
    return SigningKey(kid, algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def sign(claims: Mapping[str, Any], key: SigningKey, kid: str | None = None) -> str:
    """``claims`` as a compact JWS (``header.payload.signature``) signed with ``key``.

    ``kid`` goes into the header (the key's own id when not given). The result is a bearer credential:
    callers wrap it in a :class:`~parityprobe.secret.Secret` or write it to a 0600 file at once.
    """
    header = {"alg": key.algorithm, "typ": "JWT", "kid": kid if kid is not None else key.kid}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(dict(claims)))}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{_b64(_signature(key, signing_input))}"


def write_token_file(
    path: Path,
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    audience: str | list[str],
    ttl_seconds: int,
    extra_claims: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Path:
    """Write a signed token to ``path`` (mode 0600, replaced atomically, as a kubelet rotates one).

    Claims: ``iss``, ``sub``, ``aud``, ``iat`` and ``nbf`` (``now``), ``exp`` (``now + ttl_seconds``), then
    ``extra_claims`` (a namespace, a service account, a CI project), which may not replace those six.
    """
    clashing = _REGISTERED & set(extra_claims or {})
    if clashing:
        raise ValueError(f"extra claims may not replace {', '.join(sorted(clashing))}")
    issued = int((now or datetime.now(UTC)).timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        **dict(extra_claims or {}),
    }
    token = sign(claims, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so the token is never readable by others, not even for a moment.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _signature(key: SigningKey, data: bytes) -> bytes:
    private = key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        # JWS wants r || s, each 32 bytes big-endian (RFC 7518 §3.4), not cryptography's DER encoding.
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_COORDINATE_BYTES, "big") + s.to_bytes(_P256_COORDINATE_BYTES, "big")
    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
