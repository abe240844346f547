"""The fields of a Vault role that ``vault.config`` compares, by auth method, and how each value is shown.

A fixed list rather than everything a role read returns: fields one server version has and another lacks
(OpenBao's ``token_strictly_bind_ip``) would otherwise be drift between products, not between environments,
and nothing secret is ever shown (a role read carries no role id or secret id; the list keeps it that way).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from parityprobe.config.durations import humanise

_TOKEN = (
    "token_ttl",
    "token_max_ttl",
    "token_explicit_max_ttl",
    "token_period",
    "token_num_uses",
    "token_policies",
    "token_no_default_policy",
    "token_type",
    "token_bound_cidrs",
)
_BY_METHOD: dict[str, tuple[str, ...]] = {
    "approle": (*_TOKEN, "bind_secret_id", "secret_id_ttl", "secret_id_num_uses", "secret_id_bound_cidrs"),
    "jwt": (
        *_TOKEN,
        "role_type",
        "bound_audiences",
        "bound_subject",
        "bound_claims",
        "bound_claims_type",
        "user_claim",
        "groups_claim",
        "claim_mappings",
        "allowed_redirect_uris",
        "clock_skew_leeway",
        "expiration_leeway",
        "not_before_leeway",
        "max_age",
    ),
    "kubernetes": (
        *_TOKEN,
        "bound_service_account_names",
        "bound_service_account_namespaces",
        "bound_service_account_namespace_selector",
        "audience",
        "alias_name_source",
    ),
}
# Durations in seconds, and what 0 means for each: people must not read "0s" as "expires at once".
_DURATIONS = {
    "token_ttl": "0s (the mount's default)",
    "token_max_ttl": "0s (the mount's maximum)",
    "token_explicit_max_ttl": "0s (none)",
    "token_period": "0s (not periodic)",
    "secret_id_ttl": "0s (never expires)",
    "clock_skew_leeway": "0s (the default leeway)",
    "expiration_leeway": "0s (the default leeway)",
    "not_before_leeway": "0s (the default leeway)",
    "max_age": "0s (no limit)",
}
_COUNTS = {"token_num_uses": "0 (unlimited)", "secret_id_num_uses": "0 (unlimited)"}
_JSON = frozenset({"bound_claims", "claim_mappings"})
# Bound claims take one value or a list of them; Vault treats "a" and ["a"] alike.
_LISTED_VALUES = frozenset({"bound_claims"})


def fields(method: str) -> tuple[str, ...]:
    """The fields compared for a role of ``method``."""
    return _BY_METHOD[method]


def duration(seconds: int) -> str:
    return humanise(seconds)


def show(field: str, value: object, name: Callable[[str], str]) -> str:
    """``value`` of ``field`` as text; ``name`` normalises text that may hold an environment's names."""
    if value is None or value == "" or value == [] or value == {}:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if field in _DURATIONS and isinstance(value, int):
        return duration(value) if value > 0 else _DURATIONS[field]
    if field in _COUNTS and isinstance(value, int):
        return str(value) if value > 0 else _COUNTS[field]
    if isinstance(value, list):
        return ", ".join(sorted(name(str(v)) for v in value))
    if field in _JSON or isinstance(value, dict):
        return name(json.dumps(_canonical(value, field in _LISTED_VALUES), sort_keys=True))
    return name(str(value).strip()) or "(none)"


def _canonical(value: object, listed: bool) -> object:
    """Lists sorted; with ``listed``, a mapping's single values as one-item lists."""
    if isinstance(value, dict):
        return {str(k): _canonical(v, False) if not listed else _as_list(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_canonical(v, False) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _as_list(value: object) -> object:
    items = value if isinstance(value, list) else [value]
    return sorted((_canonical(v, False) for v in items), key=lambda v: json.dumps(v, sort_keys=True))
