"""``vault.config``: a read-only snapshot of the Vault configuration a workload depends on, compared between
environments as configuration drift (:mod:`parityprobe.compare.drift`).

It reads, and never changes: the enabled auth methods (``sys/auth``: type, path, lease tuning, token type),
the audit devices (``sys/audit``: type, path, options), the audited request headers
(``sys/config/auditing/request-headers``), the workload's roles (``auth/<mount>/role/<name>``: TTLs, policies,
bound claims and CIDRs…) and the text of its policies (``sys/policies/acl/<name>``, read into path rules by
:mod:`.policy_text`). What always differs between servers and proves nothing (accessors, uuids, plugin
versions, modification times) is left out; what is secret is never read (a role's ``role_id`` and secret ids
have endpoints of their own; an audit option outside the known non-secret ones shows as ``set``, never its
value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import hvac.exceptions as hv
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from parityprobe.compare import drift
from parityprobe.compare.grants import normalise
from parityprobe.model import Grant, Outcome
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from . import role_fields as roles
from .client import VaultProbe, acting_token, mapping, step_client, vault_settings
from .errors import PERMISSION_DENIED
from .policy_text import Policy, read_policy, text_digest
from .settings import MountPath

SNAPSHOT = "vault configuration"
ROOT_POLICY = "root (every capability on every path)"
_DENIED = drift.unreadable(PERMISSION_DENIED)
# Audit options shown with their value (none of them secret), with the defaults both servers apply, so a
# default written out and one left implicit compare equal. Any other option shows as "set".
_AUDIT_DEFAULTS = {
    "format": "json",
    "hmac_accessor": "true",
    "log_raw": "false",
    "elide_list_responses": "false",
}
_AUDIT_SHOWN = frozenset(
    {*_AUDIT_DEFAULTS, "file_path", "mode", "prefix", "address", "socket_type", "facility", "tag", "fallback"}
)
_AUDIT_NAMES = frozenset({"file_path", "prefix", "address", "tag"})  # values that hold environment names
_AUDIT_FLAGS = frozenset({"hmac_accessor", "log_raw", "elide_list_responses", "fallback"})
_TRUE, _FALSE = frozenset({"1", "t", "true"}), frozenset({"0", "f", "false"})


class RoleRef(BaseModel):
    """One of the workload's roles: its auth method, the mount (the method's name by default), its name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["approle", "jwt", "kubernetes"]
    name: str = Field(min_length=1, pattern=r"^[^/\s]+$")
    mount: MountPath | None = None

    @property
    def path(self) -> str:
        return f"auth/{self.mount or self.method}/role/{quote(self.name, safe='')}"


class VaultConfigParams(ProbeParams):
    """The workload's ``roles``; its ``policies`` (by default, those its roles attach); the ``token`` to read
    with (by default the environment's ``vault.config_token``, else its own token)."""

    roles: list[RoleRef] = Field(default_factory=list)
    policies: list[Annotated[str, StringConstraints(min_length=1, pattern=r"^\S+$")]] | None = None
    token: Secret | None = None

    @model_validator(mode="after")
    def _distinct(self) -> VaultConfigParams:
        seen = [(r.method, r.name) for r in self.roles]
        if len(seen) != len(set(seen)):
            raise ValueError("each role (method and name) may be listed once")
        return self


class VaultConfig(VaultProbe):
    """Read the configuration the workload depends on, as one snapshot (effect READ; it creates nothing).

    It acts with the step's ``token``, else the environment's ``vault.config_token`` (a read-only auditor's),
    else the environment's own token.

    ALLOWED when at least one part could be read: a part the token may not read (403) is recorded as ``not
    readable (permission denied)`` and compared as inconclusive, never as parity. DENIED ("permission
    denied") when the token may read nothing at all. A role or policy that does not exist is recorded as
    ``absent`` (it was asked for by name). Faults (unreachable, sealed, 5xx, a reply of the wrong shape) are
    errors through the plane's table.

    Grant: ``attributes`` only, one key per comparable field, named and normalised as
    :mod:`parityprobe.compare.drift` describes (each environment's ``vars`` replaced by ``${vars.NAME}``;
    durations humanised; lists sorted). Outputs: none.
    """

    name: ClassVar[str] = "vault.config"
    Params: ClassVar[type[ProbeParams]] = VaultConfigParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: VaultConfigParams, ctx: ProbeContext) -> ProbeResult:
        """One read per part; the timer covers every read (and no login before them)."""
        token = _token(params, ctx)
        snap = _Snapshot(ctx.environment.vars)
        with step_client(ctx, token) as client:

            def read(path: str) -> Any:
                try:
                    with ctx.timer:
                        return client.read(path)
                except hv.Forbidden:
                    return _REFUSED

            snap.section(drift.AUTH_METHODS, read("sys/auth"), _auth_method)
            snap.section(drift.AUDIT_DEVICES, read("sys/audit"), _audit_device)
            snap.headers(read("sys/config/auditing/request-headers"))
            attached: set[str] = set()
            for role in params.roles:
                attached |= snap.role(role, read(role.path))
            names = params.policies if params.policies is not None else sorted(attached)
            for name in names:
                if name == "root":
                    snap.put(drift.policy_key("root"), ROOT_POLICY)
                else:
                    snap.policy(name, read(f"sys/policies/acl/{quote(name, safe='')}"))
        if snap.read == 0:
            return ProbeResult(Outcome.DENIED, reason=PERMISSION_DENIED)
        reason = f"not readable: {', '.join(snap.refused)}" if snap.refused else None
        return ProbeResult(grant=Grant(attributes=MappingProxyType(snap.attributes)), reason=reason)


_REFUSED = object()


def _token(params: VaultConfigParams, ctx: ProbeContext) -> Secret:
    if params.token is not None:
        return params.token
    ref = vault_settings(ctx).config_token
    if ref is None:
        return acting_token(ctx, None)
    token = ref.secret()
    ctx.redactor.register(token)
    return token


class _Snapshot:
    """The attributes being collected, names normalised with the environment's vars as they go in."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self._vars = variables
        self.attributes: dict[str, str] = {drift.SNAPSHOT: SNAPSHOT}
        self.refused: list[str] = []
        self.read = 0

    def name(self, text: str) -> str:
        return normalise(text, self._vars) or ""

    def put(self, key: str, value: str) -> None:
        self.attributes[key] = value

    def _refused(self, key: str, reply: Any) -> bool:
        if reply is _REFUSED:
            self.attributes[key] = _DENIED
            self.refused.append(key)
            return True
        self.read += 1
        return False

    def section(self, section: str, reply: Any, show: Callable[[_Snapshot, dict[str, Any]], str]) -> None:
        if self._refused(section, reply):
            return
        self.attributes[section] = drift.LISTED
        for path, entry in _entries(reply).items():
            self.attributes[drift.member_key(section, self.name(path))] = show(self, entry)

    def headers(self, reply: Any) -> None:
        if self._refused(drift.AUDITED_HEADERS, reply):
            return
        self.attributes[drift.AUDITED_HEADERS] = drift.LISTED
        data = mapping(_required(reply).get("data")) or reply
        for header, settings in mapping(data.get("headers")).items():
            hmac = "true" if mapping(settings).get("hmac") is True else "false"
            self.attributes[drift.member_key(drift.AUDITED_HEADERS, str(header).lower())] = f"hmac {hmac}"

    def role(self, role: RoleRef, reply: Any) -> set[str]:
        """Record the role; the policies its tokens receive (``default`` unless the role leaves it out)."""
        role_id = f"{role.method}/{self.name(role.name)}"
        if self._refused(drift.role_key(role_id), reply):
            return set()
        if reply is None:
            self.attributes[drift.role_key(role_id)] = drift.ABSENT
            return set()
        self.attributes[drift.role_key(role_id)] = drift.PRESENT
        data = mapping(_required(reply).get("data"))
        for field in roles.fields(role.method):
            # A field this server's role lacks is "not set"; one it sends as null is empty, as [] or {} is.
            shown = roles.show(field, data[field], self.name) if field in data else drift.NOT_SET
            self.attributes[drift.role_key(role_id, field)] = shown
        policies = {str(p) for key in ("token_policies", "policies") for p in data.get(key) or ()}
        if data.get("token_no_default_policy") is not True:
            policies.add("default")
        return policies

    def policy(self, name: str, reply: Any) -> None:
        key = drift.policy_key(self.name(name))
        if self._refused(key, reply):
            return
        if reply is None:
            self.attributes[key] = drift.ABSENT
            return
        text = mapping(_required(reply).get("data")).get("policy")
        if not isinstance(text, str):
            raise hv.UnexpectedError("Vault reply has no data.policy")
        policy = read_policy(text)
        if not isinstance(policy, Policy):
            self.attributes[key] = f"present, not read as HCL ({text_digest(self.name(text))})"
            return
        self.attributes[key] = drift.PRESENT
        policy_name = self.name(name)
        for path, rule in policy.paths.items():
            self.attributes[drift.policy_key(policy_name, self.name(path))] = rule.capability_text()
            for attribute, value in rule.attributes.items():
                self.attributes[drift.policy_key(policy_name, self.name(path), attribute)] = self.name(value)


def _required(reply: Any) -> dict[str, Any]:
    """A section's reply; Vault never answers these reads with not found, so None is a wrong reply."""
    if not isinstance(reply, dict):
        raise hv.UnexpectedError("Vault reply is not an object")
    return reply


def _entries(reply: Any) -> dict[str, dict[str, Any]]:
    """``path/`` → entry of a sys/auth or sys/audit reply (under ``data``; older servers: at the top)."""
    body = _required(reply)
    data = mapping(body.get("data")) or body
    return {str(k): v for k, v in sorted(data.items()) if str(k).endswith("/") and isinstance(v, dict)}


def _auth_method(snap: _Snapshot, entry: dict[str, Any]) -> str:
    """``approle``, or ``approle (default_lease_ttl 1h, token_type batch)`` when tuned."""
    config = mapping(entry.get("config"))
    tuning = [
        f"{name} {roles.duration(value)}"
        for name in ("default_lease_ttl", "max_lease_ttl")
        if isinstance(value := config.get(name), int) and not isinstance(value, bool) and value > 0
    ]
    token_type = config.get("token_type")
    if isinstance(token_type, str) and token_type not in ("", "default-service"):
        tuning.append(f"token_type {token_type}")
    if entry.get("local") is True:
        tuning.append("local")
    kind = str(entry.get("type") or "unknown")
    return f"{kind} ({', '.join(tuning)})" if tuning else kind


def _audit_device(snap: _Snapshot, entry: dict[str, Any]) -> str:
    """``file (elide_list_responses false, file_path …, format json, hmac_accessor true, log_raw false)``."""
    options = {**_AUDIT_DEFAULTS, **{str(k): str(v) for k, v in mapping(entry.get("options")).items()}}
    shown = []
    for name, value in sorted(options.items()):
        if name not in _AUDIT_SHOWN:
            shown.append(f"{name} set")
        elif name in _AUDIT_NAMES:
            shown.append(f"{name} {snap.name(value)}")
        elif name in _AUDIT_FLAGS:
            # The servers parse these as Go booleans: "1", "t", "True" are all true.
            lowered = value.strip().lower()
            flag = "true" if lowered in _TRUE else "false" if lowered in _FALSE else lowered
            shown.append(f"{name} {flag}")
        else:
            shown.append(f"{name} {value.strip()}")
    if entry.get("local") is True:
        shown.append("local")
    return f"{entry.get('type') or 'unknown'} ({', '.join(shown)})"
