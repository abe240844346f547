"""``vault.break_glass_login``: the break-glass drill, logging in with a response-wrapped secret id.

An approver generates a secret id for the break-glass role with its response wrapped (``POST
auth/<mount>/role/<role>/secret-id`` with header ``X-Vault-Wrap-TTL``) and hands over only the wrapping
token, as a file. The drill proves the path works end to end and that the hand-over was not tampered with:

1. ``sys/wrapping/lookup`` (unauthenticated; it does not use the token up) names where the wrapped response
   was created: it must be ``auth/<mount>/role/<role>/secret-id`` (or ``custom-secret-id``), which also gives
   the role's name for destroying the secret id afterwards. Anything else is DENIED, "wrapping token does
   not hold a secret id of this mount": someone handed over a different wrapped response.
2. ``sys/wrapping/unwrap``, acting as the wrapping token. A wrapping token is single use: OpenBao 2.7
   answers 400 ``wrapping token is not valid or does not exist`` to a token already unwrapped, expired or
   never issued (the same to lookup and unwrap) → DENIED, "wrapping token invalid or already used". A second
   use of the same file is exactly the signal that someone else unwrapped it first.
3. ``auth/<mount>/login`` with the role id and the unwrapped secret id.

Nothing is left behind: before the unwrap the probe records the undo that destroys the unwrapped secret id
(``vault.approle_secret_id_destroy``, completed with the accessor from the unwrapped response, and
dropped once a single-use secret id, ``secret_id_num_uses`` 1, is used up by the login: the environment's
own token then needs no right to destroy break-glass secret ids), and before the login the undo that
revokes the token (``vault.token_revoke``, the token held in memory only).

Whether the drill may run at all (the environment allows ``privileged`` and the run was given
``--allow-break-glass``) is the runner's decision, made before the probe is called.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

import hvac.exceptions as hv

from parityprobe.model import Effect, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import (
    LoginUndo,
    VaultProbe,
    approle_identity,
    mapping,
    read_secret_file,
    required,
    step_client,
)
from .errors import VaultSetupError
from .login_grant import login_grant
from .secret_id import DESTROY, MountPath

NOT_A_SECRET_ID = "wrapping token does not hold a secret id of this mount"
_CREATED_BY = ("secret-id", "custom-secret-id")


class BreakGlassLoginParams(ProbeParams):
    """The files the approver handed over (read when the step runs): the break-glass role's id and the
    wrapping token of its secret id; and the AppRole mount."""

    role_id_file: str
    wrapped_secret_id_file: str
    mount: MountPath = "approle"


class BreakGlassLogin(VaultProbe):
    """Unwrap a response-wrapped secret id and log in with it (the steps: see the module docstring).

    ALLOWED when logged in. DENIED "wrapping token invalid or already used" (used, expired or unknown
    wrapping token), "wrapping token does not hold a secret id of this mount" (wrapped elsewhere), "invalid
    credentials" (the role id does not match the secret id). An unreadable, empty or oversized file is a
    harness error naming the file. The effect is PRIVILEGED.

    Grant: as ``vault.approle_login``: ``ttl_seconds``, ``policies``, ``renewable``, ``identity``
    (``approle/<role_name>``). Outputs: ``token`` and ``accessor``, both secrets.
    """

    name: ClassVar[str] = "vault.break_glass_login"
    Params: ClassVar[type[ProbeParams]] = BreakGlassLoginParams
    outputs: ClassVar[frozenset[str]] = frozenset({"token", "accessor"})
    secret_outputs: ClassVar[frozenset[str]] = outputs
    effect: ClassVar[Effect] = Effect.PRIVILEGED

    def run(self, params: BreakGlassLoginParams, ctx: ProbeContext) -> ProbeResult:
        """Lookup (untimed), then unwrap and login, both timed."""
        wrapping = _read_wrapping_token(params.wrapped_secret_id_file)
        role_id = read_secret_file(params.role_id_file, "break-glass role id")
        ctx.redactor.register(wrapping)
        ctx.redactor.register(role_id)
        with step_client(ctx) as client:
            looked_up = client.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping.reveal()})
        created = required(looked_up, "data", "creation_path")
        role = _role_of(str(created), params.mount)
        if role is None:
            return ProbeResult(Outcome.DENIED, reason=NOT_A_SECRET_ID)

        destroy = ctx.record_undo(
            f"destroy break-glass secret id of role {role}", DESTROY, role=role, mount=params.mount
        )
        with step_client(ctx, wrapping) as client:
            try:
                with ctx.timer:
                    unwrapped = client.sys.unwrap()
            except hv.VaultError:
                ctx.undo_not_needed(destroy)  # refused: the secret id stays wrapped, or is someone else's
                raise
        data = required(unwrapped, "data")
        ctx.amend_undo(destroy, accessor=str(required(data, "secret_id_accessor")))
        secret_id = Secret(str(required(data, "secret_id")), "approle secret id")
        ctx.redactor.register(secret_id)

        with LoginUndo(ctx, self.name) as undo:
            with step_client(ctx) as client, ctx.timer:
                reply = client.auth.approle.login(
                    role_id=role_id.reveal(),
                    secret_id=secret_id.reveal(),
                    mount_point=params.mount,
                    use_token=False,
                )
            auth = required(reply, "auth")
            token = Secret(str(required(auth, "client_token")), "vault token")
            undo.created(token, auth.get("token_type"))
        if data.get("secret_id_num_uses") == 1:
            # A single-use secret id (the usual hand-over) is used up by this login: nothing to destroy,
            # and the workload's token need not be allowed to destroy break-glass secret ids.
            ctx.undo_not_needed(destroy)
        ctx.redactor.register(token)
        accessor = Secret(str(auth.get("accessor") or ""), "vault token accessor")
        ctx.redactor.register(accessor)
        identity = approle_identity(mapping(auth.get("metadata")), fallback=f"approle/{role}") or role
        grant = login_grant(ctx, auth, token, params.mount, identity)
        outputs: dict[str, OutputValue] = {"token": token, "accessor": accessor}
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


def _read_wrapping_token(name: str) -> Secret:
    """The wrapping token handed over in file ``name``: exactly one token."""
    token = read_secret_file(name, "wrapped secret id")
    if any(c.isspace() for c in token.reveal()):
        raise VaultSetupError(f"wrapped secret id: file {name} does not hold one wrapping token")
    return token


def _role_of(creation_path: str, mount: str) -> str | None:
    """The role whose secret id was wrapped, from ``auth/<mount>/role/<role>/secret-id``; None otherwise."""
    prefix = f"auth/{mount}/role/"
    if not creation_path.startswith(prefix):
        return None
    role, _, created_by = creation_path[len(prefix) :].partition("/")
    return role if role and created_by in _CREATED_BY else None
