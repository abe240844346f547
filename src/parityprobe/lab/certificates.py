"""The lab's certificate authorities: a CA per environment, the server and client certificates it issues,
written as PEM files for TLS servers and for the ``tls`` section of an environments file.

Generated at run time with :mod:`cryptography` (the ``lab`` extra); nothing here is ever committed. Keys are
EC P-256. Certificates carry the extensions a strict verifier wants (basic constraints, key usage, extended
key usage, subject and authority key identifiers, and subject alternative names on server certificates), so
OpenSSL and the WebPKI-style verifiers alike accept a chain that should verify.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A little back-dating: a lab certificate must be valid at once even on a host whose clock lags.
_BACKDATE = timedelta(minutes=5)
_CA_DAYS = 3650


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key (the key never shown by repr)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key, PKCS#8 PEM, unencrypted: what a ``{file: PATH}`` secret reference points at."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """``<stem>.crt`` and ``<stem>.key`` in ``directory`` (created if need be); the key file is mode
        0600 from the moment it exists. Returns (certificate path, key path)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem())
        _write_private(key_path, self.key_pem())
        return cert_path, key_path


@dataclass(frozen=True)
class CertificateAuthority(IssuedCertificate):
    """A self-signed root CA that issues server and client certificates."""

    def issue_server(
        self,
        common_name: str,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        days: float = 90,
    ) -> IssuedCertificate:
        """A TLS server certificate for these names and addresses, valid for ``days`` from now (a fraction
        of a day is allowed: a certificate about to expire is a case worth testing)."""
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses)
        extensions: list[x509.ExtensionType] = [x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])]
        if names:
            extensions.append(x509.SubjectAlternativeName(names))
        return self._issue(common_name, days, extensions)

    def issue_client(self, common_name: str, days: float = 90) -> IssuedCertificate:
        """A TLS client certificate (mutual TLS) for ``common_name``, valid for ``days`` from now."""
        return self._issue(common_name, days, [x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])])

    def _issue(
        self, common_name: str, days: float, extensions: Sequence[x509.ExtensionType]
    ) -> IssuedCertificate:
        key = _new_key()
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return IssuedCertificate(builder.sign(self.key, hashes.SHA256()), key)


def make_ca(common_name: str) -> CertificateAuthority:
    """A new self-signed root CA named ``common_name``, valid for ten years."""
    key = _new_key()
    now = datetime.now(UTC)
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(certificate, key)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 (not chmod-ed after writing): the key is never readable by others, even for a moment.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        os.fchmod(stream.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        stream.write(data)
