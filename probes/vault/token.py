"""``vault.token_lookup``: ask Vault what a token is (``auth/token/lookup-self``)."""

from __future__ import annotations

from typing import ClassVar

from parityprobe.model import Grant
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import (
    VaultProbe,
    acting_token,
    approle_identity,
    mapping,
    required,
    step_client,
    string_set,
)


class TokenLookupParams(ProbeParams):
    """The token to look up; the environment's own when not given."""

    token: Secret | None = None


class TokenLookup(VaultProbe):
    """Look a token up with ``GET auth/token/lookup-self``, acting as that token.

    Allowed means the token is valid (``lookup-self`` is in Vault's built-in default policy); a revoked or
    expired token is denied.

    Grant: ``ttl_seconds`` (the token's remaining TTL), ``policies`` (token and identity policies),
    ``renewable``, ``identity`` (``approle/<role_name>`` as ``vault.approle_login`` reports it, else the
    token's display name).
    Outputs: none.
    """

    name: ClassVar[str] = "vault.token_lookup"
    Params: ClassVar[type[ProbeParams]] = TokenLookupParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: TokenLookupParams, ctx: ProbeContext) -> ProbeResult:
        """One lookup-self request; the timer covers it only (not an environment login before it)."""
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client, ctx.timer:
            reply = client.auth.token.lookup_self()
        data = required(reply, "data")
        display_name = data.get("display_name")
        grant = Grant(
            ttl_seconds=int(data.get("ttl") or 0),
            policies=string_set(data.get("policies")) | string_set(data.get("identity_policies")),
            renewable=bool(data.get("renewable")),
            identity=approle_identity(
                mapping(data.get("meta")), fallback=str(display_name) if display_name else None
            ),
        )
        return ProbeResult(grant=grant)
