"""``vault.token_renew`` and ``vault.token_revoke``: a token's lifecycle, acting as the token itself."""

from __future__ import annotations

from typing import Any, ClassVar

import hvac.exceptions as hv

from parityprobe.config.durations import Duration
from parityprobe.model import Effect, Grant, Outcome
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import VaultProbe, acting_token, required, step_client, string_set
from .errors import error_messages

NOT_RENEWABLE = "not renewable"
ALREADY_GONE = "already revoked or expired"

# What Vault and OpenBao answer (400) to renew-self with a token created renewable=false; observed on
# OpenBao 2.7 as InvalidRequest(['lease is not renewable']). Matched exactly, lower-cased: any other 400 stays
# the plane's "invalid request" error rather than being passed off as a decision.
_NOT_RENEWABLE_MESSAGE = "lease is not renewable"


class TokenRenewParams(ProbeParams):
    """The token to renew (the environment's own when not given) and the TTL asked for, in seconds."""

    token: Secret | None = None
    increment: Duration | None = None


class TokenRenew(VaultProbe):
    """Renew a token with ``POST auth/token/renew-self``, acting as that token.

    Allowed means the token was renewed; a token created non-renewable is DENIED ("not renewable": the target
    refused), a revoked or expired one is DENIED ("permission denied"). The effect is READ: renewing extends
    an existing token's lease but creates nothing, so there is nothing to undo and read-only environments
    may run it (``renew-self`` is in Vault's built-in default policy).

    Grant: ``ttl_seconds`` (the reply's ``lease_duration``: the new TTL, already capped by the effective max
    TTL), ``renewable``, ``policies`` (token and identity policies), ``max_ttl_seconds`` (the token's
    ``explicit_max_ttl`` from a ``lookup-self`` after the renewal, only when one is set: the renew reply
    carries no max TTL field, and a mount's or the system's cap appears nowhere but in ``lease_duration``).
    Outputs: none.
    """

    name: ClassVar[str] = "vault.token_renew"
    Params: ClassVar[type[ProbeParams]] = TokenRenewParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: TokenRenewParams, ctx: ProbeContext) -> ProbeResult:
        """One renew-self request (timed), then one untimed lookup-self for the explicit max TTL."""
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client:
            try:
                with ctx.timer:
                    reply = client.auth.token.renew_self(increment=params.increment)
            except hv.InvalidRequest as exc:
                if _is_not_renewable(exc):
                    return ProbeResult(Outcome.DENIED, reason=NOT_RENEWABLE)
                raise
            max_ttl = _explicit_max_ttl(client)
        auth = required(reply, "auth")
        grant = Grant(
            ttl_seconds=int(auth.get("lease_duration") or 0),
            max_ttl_seconds=max_ttl,
            renewable=bool(auth.get("renewable")),
            # Vault's `policies` is already the union; the parts are added in case a server sends only them.
            policies=string_set(auth.get("policies"))
            | string_set(auth.get("token_policies"))
            | string_set(auth.get("identity_policies")),
        )
        return ProbeResult(grant=grant)


def _is_not_renewable(exc: hv.InvalidRequest) -> bool:
    return _NOT_RENEWABLE_MESSAGE in error_messages(exc)


def _explicit_max_ttl(client: Any) -> int | None:
    """The token's ``explicit_max_ttl`` in seconds, None when it has none (0) or may not look itself up.

    A token without the default policy can be renewable yet lack ``lookup-self``; its renewal still
    happened, so that refusal must not turn the step into a denial. Other failures (unreachable, sealed)
    propagate: they are errors, and an error is reported as one.
    """
    try:
        reply = client.auth.token.lookup_self()
    except hv.Forbidden:
        return None
    value = required(reply, "data").get("explicit_max_ttl")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class TokenRevokeParams(ProbeParams):
    """The token to revoke. Required: a step never revokes the environment's own token by omission.

    ``missing_ok``: a token that is already revoked or expired is NOT_FOUND ("already revoked or expired")
    instead of DENIED. Undos use it: the token a login created is gone either way.
    """

    token: Secret
    missing_ok: bool = False


class TokenRevoke(VaultProbe):
    """Revoke a token with ``POST auth/token/revoke-self``, acting as that token.

    Allowed on the server's 204 (the token, its children and its leases are gone); a token already revoked
    or expired is DENIED ("permission denied"), or NOT_FOUND with ``missing_ok`` (Vault answers both with
    the same 403, so a token whose policies lack ``revoke-self`` also counts as gone there).
    The effect is WRITE: it changes the target's state. It removes rather than creates, so it records no
    undo (it is what an undo of a token runs).

    Grant: none. Outputs: none.
    """

    name: ClassVar[str] = "vault.token_revoke"
    Params: ClassVar[type[ProbeParams]] = TokenRevokeParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: TokenRevokeParams, ctx: ProbeContext) -> ProbeResult:
        """One revoke-self request, timed."""
        with step_client(ctx, params.token) as client, ctx.timer:
            try:
                response = client.auth.token.revoke_self()
            except hv.Forbidden:
                if params.missing_ok:
                    return ProbeResult(Outcome.NOT_FOUND, reason=ALREADY_GONE)
                raise
        status = getattr(response, "status_code", 200 if isinstance(response, dict) else None)
        if not isinstance(status, int) or not 200 <= status < 300:
            # Success is a 2xx (204 observed); a 3xx that requests did not follow is no revocation.
            raise hv.UnexpectedError(f"revoke-self answered {status}")
        return ProbeResult()
