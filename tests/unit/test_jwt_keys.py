"""The lab's JWT signing keys: tokens verify with the environment's public key, and with nothing else."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from parityprobe.lab.jwt_keys import Algorithm, SigningKey, generate_key, sign, write_token_file

ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "RS256")
CLAIMS = {"iss": "https://lab.staging", "sub": "system:serviceaccount:payments:app", "aud": "vault"}


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify(token: str, public_pem: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An independent check of a compact JWS (header and claims back); InvalidSignature when it fails."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(_unb64(header_b64))
    data, signature = f"{header_b64}.{payload_b64}".encode("ascii"), _unb64(signature_b64)
    public = serialization.load_pem_public_key(public_pem.encode("ascii"))
    if header["alg"] == "ES256":
        assert isinstance(public, ec.EllipticCurvePublicKey) and len(signature) == 64
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        assert header["alg"] == "RS256" and isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    return header, json.loads(_unb64(payload_b64))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_signed_token_verifies_with_the_public_key_and_carries_header_and_claims(
    algorithm: Algorithm,
) -> None:
    key = generate_key("staging", algorithm)
    token = sign(CLAIMS, key)
    assert token.count(".") == 2 and "=" not in token
    header, claims = verify(token, key.public_pem())
    assert header == {"alg": algorithm, "typ": "JWT", "kid": key.kid}
    assert claims == CLAIMS
    assert key.kid.startswith("staging-")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_tampered_token_fails_verification(algorithm: Algorithm) -> None:
    key = generate_key("staging", algorithm)
    header, payload, signature = sign(CLAIMS, key).split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**CLAIMS, "sub": "admin"}).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify(f"{header}.{forged}.{signature}", key.public_pem())
    # The untouched token still verifies: the failure above is the tampering, not the checker.
    verify(f"{header}.{payload}.{signature}", key.public_pem())


def test_a_token_from_another_environment_s_key_fails_verification() -> None:
    staging, production = generate_key("staging"), generate_key("production")
    with pytest.raises(InvalidSignature):
        verify(sign(CLAIMS, production), staging.public_pem())


def test_the_kid_can_be_given() -> None:
    key = generate_key("staging")
    header, _ = verify(sign(CLAIMS, key, kid="rotated-1"), key.public_pem())
    assert header["kid"] == "rotated-1"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_key_survives_its_private_pem_and_hides_it(algorithm: Algorithm) -> None:
    key = generate_key("production", algorithm)
    pem = key.private_pem()
    assert "PRIVATE KEY" not in repr(key) and "PRIVATE KEY" not in str(pem) + repr(pem)
    again = SigningKey.from_private_pem(pem, key.kid)
    assert again.algorithm == algorithm and again.public_pem() == key.public_pem()
    verify(sign(CLAIMS, again), key.public_pem())


def test_a_key_whose_type_does_not_fit_its_algorithm_is_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ValueError, match="ES256 needs an EC P-256 key"):
        SigningKey("x", "ES256", rsa_key)
    with pytest.raises(ValueError, match="ES256 needs an EC P-256 key"):
        SigningKey("x", "ES256", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="RS256 needs an RSA key"):
        SigningKey("x", "RS256", ec.generate_private_key(ec.SECP256R1()))


def test_the_token_file_is_private_and_holds_a_projected_token(tmp_path: Path) -> None:
    key = generate_key("staging")
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    path = write_token_file(
        tmp_path / "serviceaccount" / "token",
        key,
        issuer="https://lab.staging",
        subject="system:serviceaccount:payments:app",
        audience=["vault"],
        ttl_seconds=600,
        extra_claims={"namespace": "payments"},
        now=now,
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _, claims = verify(path.read_text(encoding="ascii"), key.public_pem())
    issued = int(now.timestamp())
    assert claims == {
        "iss": "https://lab.staging",
        "sub": "system:serviceaccount:payments:app",
        "aud": ["vault"],
        "iat": issued,
        "nbf": issued,
        "exp": issued + 600,
        "namespace": "payments",
    }
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no temporary file left behind


def test_rewriting_the_token_file_replaces_it_and_keeps_it_private(tmp_path: Path) -> None:
    key, path = generate_key("staging"), tmp_path / "token"
    path.write_text("stale")
    path.chmod(0o644)
    write_token_file(path, key, issuer="i", subject="s", audience="vault", ttl_seconds=60)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _, claims = verify(path.read_text(encoding="ascii"), key.public_pem())
    assert claims["exp"] - claims["iat"] == 60


def test_extra_claims_may_not_replace_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exp, sub"):
        write_token_file(
            tmp_path / "token",
            generate_key("staging"),
            issuer="i",
            subject="s",
            audience="vault",
            ttl_seconds=60,
            extra_claims={"sub": "root", "exp": 2**40, "team": "payments"},
        )
    assert not (tmp_path / "token").exists()
