"""Seeding one lab OpenBao server from the profile, with its root token (hvac).

Besides what the profile names, every lab server gets a read-only auditor token for ``vault.config``
(policy :data:`CONFIG_POLICY`): the workload's own token may not read auth methods, roles and policies.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from parityprobe.errors import LabError
from parityprobe.lab.jwt_keys import SigningKey
from parityprobe.lab.profile import VaultProfile
from parityprobe.redact import Redactor
from parityprobe.secret import Secret

APPROLE_MOUNT = "approle"
KV_MOUNT = "secret"
# OpenBao does not audit X-Correlation-ID by default (current Vault does); un-HMAC'd, a SIEM can match it.
AUDITED_HEADER = "X-Correlation-ID"
_TIMEOUT = 10
CONFIG_POLICY = "parityprobe-config"
# What vault.config reads (sys/audit and the audited headers need sudo), and nothing else.
_CONFIG_POLICY_TEXT = """\
path "sys/auth" { capabilities = ["read"] }
path "sys/audit" { capabilities = ["read", "sudo"] }
path "sys/config/auditing/request-headers" { capabilities = ["read", "sudo"] }
path "sys/config/auditing/request-headers/*" { capabilities = ["read", "sudo"] }
path "auth/+/role/*" { capabilities = ["read"] }
path "sys/policies/acl/*" { capabilities = ["read"] }
"""
_CONFIG_TOKEN_TTL = "768h"  # the servers' maximum: the token outlives any lab session


@dataclass(frozen=True)
class VaultSeed:
    """What the workload needs to log in (the AppRole role id and a freshly generated secret id), and the
    auditor token ``vault.config`` reads the configuration with."""

    role_id: Secret
    secret_id: Secret
    config_token: Secret
    # The approver's hand-over for a break-glass drill: the role's id and a wrapping token of a secret id.
    break_glass: tuple[Secret, Secret] | None = None


@dataclass(frozen=True)
class JwtTrust:
    """Whom the environment's ``jwt`` auth methods trust: its own signing key, and its issuer."""

    key: SigningKey
    issuer: str


def seed_vault(
    url: str, root_token: Secret, profile: VaultProfile, trust: JwtTrust | None = None
) -> VaultSeed:
    """Policies, the AppRole mount and roles, the jwt auth methods and roles (trusting ``trust``), KV v2
    secrets with generated values, the audited header, the auditor token.

    LabError when the profile has jwt mounts and no ``trust`` is given, or when OpenBao refuses anything.
    """
    if profile.jwt_mounts and trust is None:
        raise LabError("the profile's jwt mounts need a signing key to trust")
    import hvac  # only the lab needs hvac here; the engine must import without it
    import hvac.exceptions

    generated: list[Secret] = [root_token]
    client: Any = hvac.Client(url=url, token=root_token.reveal(), timeout=_TIMEOUT)
    try:
        seed = _seed(client, profile, generated)
        if trust is not None:
            _seed_jwt(client, profile, trust)
        return seed
    except (hvac.exceptions.VaultError, OSError) as exc:  # requests' errors are OSErrors
        message = Redactor(generated).redact(str(exc))
        raise LabError(f"seeding OpenBao at {url} failed: {type(exc).__name__}: {message}") from None
    finally:
        client.adapter.close()


def _seed(client: Any, profile: VaultProfile, generated: list[Secret]) -> VaultSeed:
    for name, hcl in profile.policies.items():
        client.sys.create_or_update_acl_policy(name=name, policy=hcl)
    client.sys.enable_auth_method(method_type="approle", path=APPROLE_MOUNT)
    for name, role in profile.approle_roles.items():
        data = role.token_fields()
        if role.secret_id_ttl is not None:
            data["secret_id_ttl"] = f"{role.secret_id_ttl}s"
        if role.secret_id_num_uses is not None:
            data["secret_id_num_uses"] = role.secret_id_num_uses
        client.write_data(f"auth/{APPROLE_MOUNT}/role/{name}", data=data)
    workload = profile.workload_role
    role_id = Secret(
        _field(client.auth.approle.read_role_id(role_name=workload, mount_point=APPROLE_MOUNT), "role_id"),
        "vault role id",
    )
    secret_id = Secret(
        _field(
            client.auth.approle.generate_secret_id(role_name=workload, mount_point=APPROLE_MOUNT), "secret_id"
        ),
        "vault secret id",
    )
    generated += [role_id, secret_id]
    for path, fields in profile.kv.items():
        values = {f: Secret(secrets.token_urlsafe(18), f"kv {path} {f}") for f in fields}
        generated.extend(values.values())
        client.secrets.kv.v2.create_or_update_secret(
            path=path, secret={f: v.reveal() for f, v in values.items()}, mount_point=KV_MOUNT
        )
    client.adapter.post(f"/v1/sys/config/auditing/request-headers/{AUDITED_HEADER}", json={"hmac": False})
    client.sys.create_or_update_acl_policy(name=CONFIG_POLICY, policy=_CONFIG_POLICY_TEXT)
    created = client.auth.token.create(
        policies=[CONFIG_POLICY], ttl=_CONFIG_TOKEN_TTL, no_parent=True, display_name="parityprobe-config"
    )
    config_token = Secret(_field(created, "client_token", "auth"), "vault config token")
    generated.append(config_token)
    hand_over = _break_glass(client, profile, generated) if profile.break_glass is not None else None
    return VaultSeed(role_id, secret_id, config_token, hand_over)


def _break_glass(client: Any, profile: VaultProfile, generated: list[Secret]) -> tuple[Secret, Secret]:
    """As an approver would: the break-glass role's id, and one of its secret ids response-wrapped."""
    assert profile.break_glass is not None
    role, ttl = profile.break_glass.role, profile.break_glass.wrap_ttl
    role_id = Secret(
        _field(client.auth.approle.read_role_id(role_name=role, mount_point=APPROLE_MOUNT), "role_id"),
        "break-glass role id",
    )
    wrapped = client.adapter.post(
        f"/v1/auth/{APPROLE_MOUNT}/role/{role}/secret-id", headers={"X-Vault-Wrap-TTL": f"{ttl}s"}
    )
    wrapping = Secret(_field(wrapped, "token", "wrap_info"), "break-glass wrapping token")
    generated += [role_id, wrapping]
    return role_id, wrapping


def _seed_jwt(client: Any, profile: VaultProfile, trust: JwtTrust) -> None:
    """Each jwt mount: the method, its trust in the environment's key and issuer, its roles."""
    for mount, method in profile.jwt_mounts.items():
        client.sys.enable_auth_method(method_type="jwt", path=mount)
        client.write_data(
            f"auth/{mount}/config",
            data={"jwt_validation_pubkeys": [trust.key.public_pem()], "bound_issuer": trust.issuer},
        )
        for name, role in method.roles.items():
            data: dict[str, object] = {
                "role_type": "jwt",
                "bound_audiences": role.bound_audiences,
                "user_claim": role.user_claim,
                **role.token_fields(),
            }
            if role.bound_claims:
                data["bound_claims"] = role.bound_claims
            if role.claim_mappings:
                data["claim_mappings"] = role.claim_mappings
            client.write_data(f"auth/{mount}/role/{name}", data=data)


def _field(response: Any, name: str, section: str = "data") -> str:
    value = (response.get(section) or {}).get(name)
    if not isinstance(value, str) or not value:
        raise LabError(f"OpenBao returned no {name}")
    return value
