"""Seeding one lab OpenBao server from the profile, with its root token (hvac)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from parityprobe.errors import LabError
from parityprobe.lab.profile import VaultProfile
from parityprobe.redact import Redactor
from parityprobe.secret import Secret

APPROLE_MOUNT = "approle"
KV_MOUNT = "secret"
# OpenBao does not audit X-Correlation-ID by default (current Vault does); un-HMAC'd, a SIEM can match it.
AUDITED_HEADER = "X-Correlation-ID"
_TIMEOUT = 10


@dataclass(frozen=True)
class VaultSeed:
    """What the workload needs to log in: the AppRole role id and a freshly generated secret id."""

    role_id: Secret
    secret_id: Secret


def seed_vault(url: str, root_token: Secret, profile: VaultProfile) -> VaultSeed:
    """Policies, the AppRole mount and roles, KV v2 secrets with generated values, the audited header."""
    import hvac  # only the lab needs hvac here; the engine must import without it
    import hvac.exceptions

    generated: list[Secret] = [root_token]
    client: Any = hvac.Client(url=url, token=root_token.reveal(), timeout=_TIMEOUT)
    try:
        return _seed(client, profile, generated)
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
        client.auth.approle.create_or_update_approle(
            role_name=name,
            token_policies=role.token_policies,
            token_ttl=f"{role.token_ttl}s",
            token_max_ttl=f"{role.token_max_ttl}s",
            mount_point=APPROLE_MOUNT,
        )
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
    return VaultSeed(role_id, secret_id)


def _field(response: Any, name: str) -> str:
    value = response["data"].get(name)
    if not isinstance(value, str) or not value:
        raise LabError(f"OpenBao returned no AppRole {name}")
    return value
