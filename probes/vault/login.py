"""``vault.approle_login``: log in with an AppRole role id and secret id."""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

from parityprobe.model import OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import (
    LoginUndo,
    VaultProbe,
    approle_identity,
    required,
    step_client,
    vault_settings,
)
from .errors import VaultSetupError
from .login_grant import login_grant
from .settings import VaultApprole


class ApproleLoginParams(ProbeParams):
    """Credentials default to the environment's AppRole auth; give both to log in as another role."""

    role_id: Secret | None = None
    secret_id: Secret | None = None
    mount: str | None = None


class ApproleLogin(VaultProbe):
    """Log in at ``auth/<mount>/login`` with a role id and secret id (the step's, else the environment's).

    The token is only reported, never installed on the shared client: later steps use it by passing
    ``${{ steps.<id>.outputs.token }}`` as their ``token``. It is revoked after the scenario (an undo
    recorded before the login), so runs leave no live tokens behind.

    Grant (as every login's, :mod:`.login_grant`): ``ttl_seconds``, ``max_ttl_seconds`` (explicit),
    ``policies`` (token and identity policies), ``renewable``, ``identity`` (``approle/<role_name>``),
    attributes from the token's metadata (``role_name``) and ``display_name``.
    Outputs: ``token`` and ``accessor``, both secrets.
    """

    name: ClassVar[str] = "vault.approle_login"
    Params: ClassVar[type[ProbeParams]] = ApproleLoginParams
    outputs: ClassVar[frozenset[str]] = frozenset({"token", "accessor"})
    secret_outputs: ClassVar[frozenset[str]] = outputs

    def run(self, params: ApproleLoginParams, ctx: ProbeContext) -> ProbeResult:
        """Log in once; the timer covers the login request only."""
        role_id, secret_id, mount = _credentials(params, ctx)
        with LoginUndo(ctx, self.name) as undo:
            with step_client(ctx) as client, ctx.timer:
                reply = client.auth.approle.login(
                    role_id=role_id.reveal(), secret_id=secret_id.reveal(), mount_point=mount, use_token=False
                )
            auth = required(reply, "auth")
            token = Secret(str(required(auth, "client_token")), "vault token")
            undo.created(token, auth.get("token_type"))
        accessor = Secret(str(auth.get("accessor") or ""), "vault token accessor")
        identity = approle_identity(auth.get("metadata"), fallback="approle") or "approle"
        grant = login_grant(ctx, auth, token, mount, identity)
        outputs: dict[str, OutputValue] = {"token": token, "accessor": accessor}
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


def _credentials(params: ApproleLoginParams, ctx: ProbeContext) -> tuple[Secret, Secret, str]:
    auth = vault_settings(ctx).auth
    approle = auth if isinstance(auth, VaultApprole) else None
    role_id, secret_id = params.role_id, params.secret_id
    if approle is not None:
        role_id = role_id if role_id is not None else approle.role_id.secret()
        secret_id = secret_id if secret_id is not None else approle.secret_id.secret()
    if role_id is None or secret_id is None:
        raise VaultSetupError(
            f"environment {ctx.environment.name!r} does not log in with AppRole; "
            "give the step role_id and secret_id"
        )
    mount = params.mount or (approle.mount if approle else "approle")
    return role_id, secret_id, mount
