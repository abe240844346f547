"""``vault.approle_secret_id`` and ``vault.approle_secret_id_destroy``: rotating an AppRole secret id.

A rotation scenario generates a new secret id, proves it with ``vault.approle_login``, destroys the old one,
and proves the old one is refused (``vault.approle_login`` DENIED, "invalid credentials"). Every secret id the
harness generates carries ``parityprobe_correlation_id`` in its metadata, so one left behind (a run killed
between the generation and its undo) can be found with ``secret-id-accessor/lookup``.

What OpenBao 2.7 answers (the same code lineage as Vault):

- generate for a role that does not exist: 404 ``role "<name>" does not exist`` → NOT_FOUND; a ``ttl`` above
  the role's ``secret_id_ttl`` (or 0 when the role has one): 400 → ERROR (invalid request).
- destroy by accessor: 204; an unknown accessor: **500** ``failed to find accessor entry for
  secret_id_accessor: "<accessor>"``; a role that does not exist: 500 ``role "<name>" does not exist``. The
  probe reads both as NOT_FOUND (fixed reasons), so an undo finding its secret id already gone (used up by
  ``secret_id_num_uses``, expired and tidied) reports it gone, not failed.
- destroy by secret id: 204, **also for a secret id that does not exist**. So the probe first looks it up
  (``secret-id/lookup``: 200 with its details when it exists, 204 with no body when it does not).

Negative login checks and lockout: AppRole locks a role id out after 5 failed logins within 15 minutes
(user lockout, on by default for approle, userpass and ldap; observed: failures 1 to 5 answer 400 "invalid
role or secret ID", the 6th and later 403 "permission denied", and so does a login with a *correct* secret
id until the lockout ends). The lockout is keyed by role id, so other roles are unaffected. A scenario that
logs in with a destroyed or wrong secret id must therefore do it against a throw-away role, never the
workload's own role or the environment's: repeated runs would lock the workload out. Note also that a
locked-out role's refusals read "permission denied", not "invalid credentials".
"""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import hvac.exceptions as hv
from pydantic import Field, StringConstraints, field_validator, model_validator

from parityprobe.config.durations import Duration
from parityprobe.model import Effect, Grant, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import VaultProbe, acting_token, required, step_client
from .errors import error_messages

CORRELATION_METADATA = "parityprobe_correlation_id"
DESTROY = "vault.approle_secret_id_destroy"
SECRET_ID_NOT_FOUND = "secret id not found"
ROLE_NOT_FOUND = "role not found"
DESTROYED_UNCHECKED = "destroyed, or already gone (the token may not look secret ids up)"

# An AppRole role name as Vault accepts it (framework.GenericNameRegex), and a mount path of plain
# segments: nothing that could route the request to another path.
RoleName = Annotated[str, StringConstraints(pattern=r"^\w(?:[\w.-]*\w)?$")]
MountPath = Annotated[str, StringConstraints(pattern=r"^\w[\w-]*(?:/\w[\w-]*)*$")]

# Lower-cased fragments of the server's refusal of a destroy or lookup whose target is gone (500 on OpenBao
# 2.7; matched whatever the status, so a server answering 400 or 404 for the same is read the same way).
_GONE_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"failed to find accessor entry"), SECRET_ID_NOT_FOUND),
    (re.compile(r'role "[^"]*" does not exist'), ROLE_NOT_FOUND),
)


class ApproleSecretIdParams(ProbeParams):
    """The role, its mount, extra ``metadata`` for the secret id, and optional ``ttl`` and ``num_uses``
    (each at most the role's own; omitted, the role's apply).

    ``metadata`` is kept in plain text: Vault copies it into the metadata of every token the secret id logs
    in, which audit logs show unhashed. Never put a secret in it.
    """

    role: RoleName
    mount: MountPath = "approle"
    metadata: dict[str, str] = Field(default_factory=dict)
    ttl: Duration | None = None
    num_uses: int | None = Field(default=None, ge=0)
    token: Secret | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str]) -> dict[str, str]:
        if CORRELATION_METADATA in v:
            raise ValueError(f"{CORRELATION_METADATA!r} is set by the probe itself")
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError("ttl must be positive (leave it out to use the role's secret_id_ttl)")
        return v


class ApproleSecretId(VaultProbe):
    """Generate a secret id for ``role``: ``POST auth/<mount>/role/<role>/secret-id``, acting with the step's
    token or the environment's own.

    ALLOWED when generated; DENIED when the token may not ("permission denied"); NOT_FOUND when the role does
    not exist. The effect is WRITE. The undo (``vault.approle_secret_id_destroy`` by accessor) is recorded
    before the request and completed with the accessor from the reply; a refusal resolves it. It runs with
    the environment's own token, which then needs ``update`` on ``auth/<mount>/role/<role>/secret-id-
    accessor/destroy``.

    Grant: ``ttl_seconds`` (the secret id's ``secret_id_ttl``; 0: it never expires), attributes
    ``num_uses`` (0: unlimited). Outputs: ``secret_id`` (secret) and ``accessor`` (plain text: an accessor
    names a secret id for lookup and destroy, cannot log in, and is what audit logs and the undo journal
    must be able to show); ``role_id`` (secret), read after the generation (untimed) so a rotation scenario
    can log in with the new secret id (``vault.approle_login`` with ``role_id`` and ``secret_id``). It is
    left out when the token may not read ``auth/<mount>/role/<role>/role-id``: a step that needs it is then
    skipped, saying so.
    """

    name: ClassVar[str] = "vault.approle_secret_id"
    Params: ClassVar[type[ProbeParams]] = ApproleSecretIdParams
    outputs: ClassVar[frozenset[str]] = frozenset({"secret_id", "accessor", "role_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset({"secret_id", "role_id"})
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: ApproleSecretIdParams, ctx: ProbeContext) -> ProbeResult:
        """One generate request, timed."""
        token = acting_token(ctx, params.token)
        body: dict[str, Any] = {
            # Vault takes secret id metadata as a JSON string of string values, not an object.
            "metadata": json.dumps({**params.metadata, CORRELATION_METADATA: ctx.correlation_id}),
        }
        if params.ttl is not None:
            body["ttl"] = params.ttl
        if params.num_uses is not None:
            body["num_uses"] = params.num_uses
        entry = ctx.record_undo(
            f"destroy secret id of role {params.role}", DESTROY, role=params.role, mount=params.mount
        )
        with step_client(ctx, token) as client:
            try:
                with ctx.timer:
                    reply = client.adapter.post(
                        f"/v1/auth/{params.mount}/role/{params.role}/secret-id", json=body
                    )
            except hv.VaultError:
                # The server answered with a refusal or failure: nothing was created. A timeout or a lost
                # connection leaves the undo pending (without an accessor it cannot run, and is reported).
                ctx.undo_not_needed(entry)
                raise
        data = required(reply, "data")
        accessor = str(required(data, "secret_id_accessor"))
        ctx.amend_undo(entry, accessor=accessor)
        secret_id = Secret(str(required(data, "secret_id")), "approle secret id")
        ctx.redactor.register(secret_id)
        num_uses = _count(data.get("secret_id_num_uses"))
        grant = Grant(
            ttl_seconds=_count(data.get("secret_id_ttl")),
            attributes=MappingProxyType({} if num_uses is None else {"num_uses": str(num_uses)}),
        )
        outputs: dict[str, OutputValue] = {"secret_id": secret_id, "accessor": accessor}
        role_id = _role_id(ctx, token, params)
        if role_id is not None:
            outputs["role_id"] = role_id
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


def _role_id(ctx: ProbeContext, token: Secret, params: ApproleSecretIdParams) -> Secret | None:
    """The role's role id, or None when the token may not read it (the generation stands either way)."""
    with step_client(ctx, token) as client:
        try:
            reply = client.adapter.get(f"/v1/auth/{params.mount}/role/{params.role}/role-id")
        except hv.Forbidden:
            return None
    role_id = Secret(str(required(reply, "data", "role_id")), "approle role id")
    ctx.redactor.register(role_id)
    return role_id


class ApproleSecretIdDestroyParams(ProbeParams):
    """The role and mount, and exactly one of ``accessor`` or ``secret_id``."""

    role: RoleName
    mount: MountPath = "approle"
    accessor: str | None = Field(default=None, min_length=1)
    secret_id: Secret | None = None
    token: Secret | None = None

    @model_validator(mode="after")
    def _one(self) -> ApproleSecretIdDestroyParams:
        if (self.accessor is None) == (self.secret_id is None):
            raise ValueError("give exactly one of accessor and secret_id")
        return self


class ApproleSecretIdDestroy(VaultProbe):
    """Destroy one secret id of ``role``, by accessor or by the secret id itself, acting with the step's
    token or the environment's own.

    ALLOWED when destroyed; NOT_FOUND when it was already gone ("secret id not found") or the role does not
    exist ("role not found"): either way it is gone, which is what an undo needs to know; DENIED when the
    token may not destroy it. By secret id, the probe looks it up first (the destroy alone answers 204 for
    a secret id that does not exist); a token that may destroy but not look up gets the destroy anyway,
    ALLOWED with reason "destroyed, or already gone (…)". The effect is WRITE; it records no undo.

    Grant: none. Outputs: none.
    """

    name: ClassVar[str] = DESTROY
    Params: ClassVar[type[ProbeParams]] = ApproleSecretIdDestroyParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: ApproleSecretIdDestroyParams, ctx: ProbeContext) -> ProbeResult:
        """The destroy request is timed; a secret id's lookup before it is not."""
        token = acting_token(ctx, params.token)
        role_path = f"/v1/auth/{params.mount}/role/{params.role}"
        with step_client(ctx, token) as client:
            try:
                if params.accessor is not None:
                    with ctx.timer:
                        client.adapter.post(
                            f"{role_path}/secret-id-accessor/destroy",
                            json={"secret_id_accessor": params.accessor},
                        )
                    return ProbeResult()
                assert params.secret_id is not None  # the model allows nothing else
                return _destroy_secret_id(client, ctx, role_path, params.secret_id)
            except (hv.InternalServerError, hv.InvalidRequest) as exc:
                reason = gone_reason(exc)
                if reason is None:
                    raise
                return ProbeResult(Outcome.NOT_FOUND, reason=reason)


def _destroy_secret_id(client: Any, ctx: ProbeContext, role_path: str, secret_id: Secret) -> ProbeResult:
    body = {"secret_id": secret_id.reveal()}
    checked = True
    try:
        found = client.adapter.post(f"{role_path}/secret-id/lookup", json=body)
    except hv.Forbidden:
        checked, found = False, None
    if checked and not isinstance(found, dict):
        # 204, no body: no such secret id (a 200 carries its details).
        return ProbeResult(Outcome.NOT_FOUND, reason=SECRET_ID_NOT_FOUND)
    with ctx.timer:
        client.adapter.post(f"{role_path}/secret-id/destroy", json=body)
    return ProbeResult() if checked else ProbeResult(reason=DESTROYED_UNCHECKED)


def gone_reason(exc: hv.VaultError) -> str | None:
    """The fixed NOT_FOUND reason when ``exc`` is the server saying the secret id or role is gone."""
    message = " ".join(error_messages(exc))
    for pattern, reason in _GONE_MESSAGES:
        if pattern.search(message):
            return reason
    return None


def _count(value: Any) -> int | None:
    """A non-negative integer from a reply, None when the field is missing or of another type."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
