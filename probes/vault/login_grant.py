"""The grant of every Vault login (AppRole, JWT, Kubernetes, the break-glass drill), built one way.

From the login reply's ``auth`` block: ``ttl_seconds`` (the lease duration), ``policies`` (token and identity
policies), ``renewable``; and from one untimed ``lookup-self`` with the new token: ``max_ttl_seconds`` (the
token's ``explicit_max_ttl``, only when one is set: a mount's or the system's cap is visible nowhere) and the
``display_name`` attribute (without its mount prefix: the entity alias name). The token's non-secret
metadata become attributes too (the role, claims a JWT role maps), except what names one instance of the
workload (a service account's uid and secret) or one call (the correlation id a generated secret id
carries): those differ between any two environments by construction. The lookup is skipped when the token's
policies do not allow it (no default policy): the login happened either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import hvac.exceptions as hv

from parityprobe.model import Grant
from parityprobe.probe import ProbeContext
from parityprobe.secret import Secret

from .client import mapping, required, step_client, string_set
from .secret_id import CORRELATION_METADATA

_PER_INSTANCE_METADATA = frozenset(
    {"service_account_uid", "service_account_secret_name", CORRELATION_METADATA}
)


def login_grant(
    ctx: ProbeContext, auth: Mapping[str, Any], token: Secret, mount: str, identity: str
) -> Grant:
    """The grant of a login whose reply's ``auth`` block is ``auth``; ``identity`` as the caller names it
    (``approle/<role>``, ``jwt/<role>``)."""
    with step_client(ctx, token) as client:
        looked_up = _lookup_self(client)
    metadata = mapping(auth.get("metadata"))
    attributes = {
        key: value
        for key, value in metadata.items()
        if isinstance(value, str) and value and key not in _PER_INSTANCE_METADATA
    }
    display_name = _display_name(looked_up.get("display_name"), mount)
    if display_name:
        attributes["display_name"] = display_name
    explicit_max_ttl = looked_up.get("explicit_max_ttl")
    return Grant(
        ttl_seconds=int(auth.get("lease_duration") or 0),
        max_ttl_seconds=explicit_max_ttl if _positive_int(explicit_max_ttl) else None,
        policies=string_set(auth.get("policies"))
        | string_set(auth.get("token_policies"))
        | string_set(auth.get("identity_policies")),
        renewable=bool(auth.get("renewable")),
        identity=identity,
        attributes=MappingProxyType(attributes),
    )


def _lookup_self(client: Any) -> dict[str, Any]:
    """The new token's ``lookup-self`` data; empty when its policies lack ``lookup-self``. Other failures
    propagate: they are errors (the token's undo is already recorded)."""
    try:
        reply = client.auth.token.lookup_self()
    except hv.Forbidden:
        return {}
    return mapping(required(reply, "data"))


def _display_name(value: Any, mount: str) -> str | None:
    # Vault prefixes the method's display name with the mount path ('/' as '-'), which differs between
    # environments that mount the method at different paths; what follows is the method's own.
    # A display name that is the mount alone (AppRole's) says nothing more.
    if not isinstance(value, str) or not value:
        return None
    prefix = mount.replace("/", "-")
    if value == prefix:
        return None
    return value.removeprefix(prefix + "-") or None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
