"""``vault.database_creds`` and ``vault.lease_revoke``: dynamic database credentials and their lease.

Measured against OpenBao 2.7 with the ``postgresql-database-plugin``: ``GET <mount>/creds/<role>`` creates a
PostgreSQL role (``v-token-<role>-<random>-<unix time>``) and answers ``lease_id``, ``lease_duration`` (the
role's ``default_ttl``), ``renewable`` and ``data.username`` / ``data.password``; an unknown role is a 400
``unknown role: <name>``, an unknown mount a 404. ``PUT sys/leases/revoke`` answers 204 for *any* lease id:
one just revoked, one revoked twice, one that never existed, one that is not even a lease path. So the revoke
probe first asks ``sys/leases/lookup`` (in Vault's built-in default policy), which answers 400 ``invalid
lease`` for a lease that is gone: that is how an already-revoked lease becomes NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import hvac.exceptions as hv
from pydantic import Field

from parityprobe.model import Effect, Grant, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import VaultProbe, acting_token, mapping, required, step_client
from .errors import NOT_FOUND, error_messages

REVOKE_PROBE = "vault.lease_revoke"
LEASE_GONE = "lease not found"

# OpenBao's 400s, matched exactly (lower-cased): any other 400 stays the plane's "invalid request" error.
_UNKNOWN_ROLE_PREFIX = "unknown role:"
_INVALID_LEASE = "invalid lease"


class DatabaseCredsParams(ProbeParams):
    """The database secrets engine's ``role`` at ``mount``; the token to act with (the environment's own when
    not given)."""

    role: str = Field(min_length=1)
    mount: str = Field(default="database", min_length=1)
    token: Secret | None = None


class DatabaseCreds(VaultProbe):
    """Ask Vault's database secrets engine for credentials: ``GET <mount>/creds/<role>``.

    ALLOWED: credentials were issued (Vault created a database role for them). DENIED: the token may not read
    the path ("permission denied"). NOT_FOUND: no such role ("not found"), or no such mount. The effect is
    WRITE: each call creates a database role and a lease. The probe records the lease's revocation as an undo
    *before* the request (holding the step's token, if it gave one, to revoke with) and fills in the lease
    id from the reply; a refused request resolves it. A request whose reply never arrived (a timeout) leaves
    the undo without a lease id: the cleanup then reports that it could not run, and the lease ends with its
    TTL.

    Grant: ``ttl_seconds`` (the lease's ``lease_duration``), ``renewable``. Outputs: ``username`` (text: the
    role name is an identifier the database shows in every session list and log line, and opens nothing
    without the password), ``password`` (secret), ``lease_id`` (text: an identifier; revoking with it needs
    a token allowed to).
    """

    name: ClassVar[str] = "vault.database_creds"
    Params: ClassVar[type[ProbeParams]] = DatabaseCredsParams
    outputs: ClassVar[frozenset[str]] = frozenset({"username", "password", "lease_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset({"password"})
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: DatabaseCredsParams, ctx: ProbeContext) -> ProbeResult:
        """One read of the creds path, timed; the undo is recorded before it."""
        token = acting_token(ctx, params.token)
        path = f"{params.mount}/creds/{params.role}"
        entry = ctx.record_undo(
            f"revoke the lease issued by {path}",
            REVOKE_PROBE,
            # The environment's own token is the undo's default anyway; a step's token must be held.
            held={"token": params.token} if params.token is not None else None,
        )
        with step_client(ctx, token) as client:
            try:
                with ctx.timer:
                    reply = client.secrets.database.generate_credentials(
                        name=params.role, mount_point=params.mount
                    )
            except hv.VaultError as exc:
                # The server answered with an error: it issued nothing.
                ctx.undo_not_needed(entry)
                if isinstance(exc, hv.InvalidRequest) and _unknown_role(exc):
                    return ProbeResult(Outcome.NOT_FOUND, reason=NOT_FOUND)
                raise
        lease_id = mapping(reply).get("lease_id")
        if isinstance(lease_id, str) and lease_id:
            ctx.amend_undo(entry, lease_id=lease_id)
        else:
            raise hv.UnexpectedError("Vault reply has no lease_id")
        data = required(reply, "data")
        username, password = required(data, "username"), required(data, "password")
        secret = Secret(str(password), "database password")
        ctx.redactor.register(secret)
        outputs: Mapping[str, OutputValue] = MappingProxyType(
            {"username": str(username), "password": secret, "lease_id": lease_id}
        )
        grant = Grant(
            ttl_seconds=_seconds(reply.get("lease_duration")), renewable=bool(reply.get("renewable"))
        )
        return ProbeResult(grant=grant, outputs=outputs)


class LeaseRevokeParams(ProbeParams):
    """The lease to revoke; the token to act with (the environment's own when not given)."""

    lease_id: str = Field(min_length=1)
    token: Secret | None = None


class LeaseRevoke(VaultProbe):
    """Revoke a lease now: ``PUT sys/leases/lookup``, then ``PUT sys/leases/revoke``.

    ALLOWED: the lease existed and the revocation was accepted (for database credentials, Vault has run the
    role's revocation statements: the database role is gone). NOT_FOUND ("lease not found"): the lease is
    already gone (revoked, expired, or never existed) — the lookup said so; the revoke endpoint itself answers
    204 for any lease id, gone or not. DENIED ("permission denied"): the token may not revoke leases
    (``sys/leases/revoke`` is not in Vault's default policy). A token without the default policy may not look
    a lease up either: the probe then revokes without looking, and reports ALLOWED on the 204.

    The effect is WRITE. It is the undo of ``vault.database_creds``, so a lease already gone must be
    NOT_FOUND (gone, as the cleanup wants), never DENIED. Grant: none. Outputs: none.
    """

    name: ClassVar[str] = "vault.lease_revoke"
    Params: ClassVar[type[ProbeParams]] = LeaseRevokeParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: LeaseRevokeParams, ctx: ProbeContext) -> ProbeResult:
        """A lookup and a revoke request; the timer covers both."""
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client:
            try:
                with ctx.timer:
                    client.sys.read_lease(lease_id=params.lease_id)
            except hv.InvalidRequest as exc:
                if _invalid_lease(exc):
                    return ProbeResult(Outcome.NOT_FOUND, reason=LEASE_GONE)
                raise
            except hv.Forbidden:
                pass  # may not look up, may still revoke: the revoke decides
            with ctx.timer:
                response = client.sys.revoke_lease(lease_id=params.lease_id)
        status = getattr(response, "status_code", 200 if isinstance(response, dict) else None)
        if not isinstance(status, int) or not 200 <= status < 300:
            raise hv.UnexpectedError(f"sys/leases/revoke answered {status}")
        return ProbeResult()


def _unknown_role(exc: hv.InvalidRequest) -> bool:
    return any(part.startswith(_UNKNOWN_ROLE_PREFIX) for part in error_messages(exc))


def _invalid_lease(exc: hv.InvalidRequest) -> bool:
    return error_messages(exc) == [_INVALID_LEASE]


def _seconds(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
