"""``vault.jwt_login`` and ``vault.kubernetes_login``: workload-identity logins with a signed token.

A platform hands the workload a signed JWT: a projected service-account token in a Kubernetes pod, an ID
token in a CI job. ``vault.jwt_login`` presents it to a ``jwt`` auth mount, whose role checks the signature,
issuer, audience and bound claims; ``vault.kubernetes_login`` presents it to a ``kubernetes`` auth mount.
Both are the same call, ``POST auth/<mount>/login`` with ``{"role": ..., "jwt": ...}``, and differ in the
mount they default to and in the identity they report (the method, not the mount path).

The lab runs no Kubernetes cluster, so nothing there could review a token for a ``kubernetes`` auth mount.
The lab exercises ``vault.kubernetes_login`` through JWT-compatible configuration instead: a ``jwt`` auth
method mounted at the path ``kubernetes``, trusting the environment's own signing key, with a role bound to
the claims a service-account token carries. Against a real ``kubernetes`` mount the same probe and token
work unchanged. The two methods word their refusals differently: ``jwt`` auth answers 400 with a reason this
plane normalises ("invalid credentials", "audience not matched", "claims not matched", "token expired", …);
``kubernetes`` auth answers most refusals (bad signature, audience, service account or namespace not bound)
with 403, which reads "permission denied". A role that does not exist is "unknown role" on both. An auth
mount that does not exist is also a 403, "permission denied".

The token comes from ``jwt_file``, read when the step runs (platforms rotate it), at most 64 KiB of UTF-8
text, or as ``jwt`` from an earlier step. It is a :class:`~parityprobe.secret.Secret` from the moment it is
read and is registered with the redactor; it never appears in a reason, grant or output. A token file that
is missing or unreadable is a harness error naming the file.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import Field, model_validator

from parityprobe.model import OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import LoginUndo, VaultProbe, mapping, read_secret_file, required, step_client
from .login_grant import login_grant
from .settings import MountPath, VaultJwt, VaultKubernetes


class WorkloadLoginParams(ProbeParams):
    """The role to log in as, and the token: exactly one of ``jwt_file`` (read when the step runs) or
    ``jwt`` (an earlier step's output). ``mount`` defaults to the method's usual path."""

    role: str = Field(min_length=1)
    jwt_file: str | None = Field(default=None, min_length=1)
    jwt: Secret | None = None
    mount: MountPath | None = None

    @model_validator(mode="after")
    def _one_token(self) -> WorkloadLoginParams:
        if (self.jwt is None) == (self.jwt_file is None):
            raise ValueError("give exactly one of 'jwt' or 'jwt_file'")
        return self


class _WorkloadLogin(VaultProbe):
    """Log in at ``auth/<mount>/login`` with a role and a signed token.

    ALLOWED means the server issued a token. DENIED means it refused the token or the role, with a fixed
    reason (see the module docstring); the reply's text is never repeated. NOT_FOUND is not used: an unknown
    role is a refusal ("unknown role"). The token is revoked after the scenario (an undo recorded before the
    login, missing_ok), except a batch token, which cannot be revoked and ends with its TTL.

    Grant: ``ttl_seconds`` (the lease duration), ``max_ttl_seconds`` (the token's ``explicit_max_ttl``, only
    when the role sets one: a mount's or the system's cap is visible nowhere), ``policies`` (token and
    identity policies), ``renewable``, ``identity`` (``<method>/<role>``), ``attributes``: the token's
    metadata (the role, claims the role maps into metadata; a service account's uid and secret name left
    out) and ``display_name`` (the token's display name without its mount prefix: for ``jwt`` auth the
    entity alias name, i.e. the ``user_claim``'s value; for ``kubernetes`` auth ``<namespace>-<name>``).
    The last two come from one untimed ``lookup-self`` with the new token, skipped when its policies do not
    allow it. Outputs: ``token`` and ``accessor``, both secrets.
    """

    name: ClassVar[str]
    method: ClassVar[str]
    Params: ClassVar[type[ProbeParams]] = WorkloadLoginParams
    outputs: ClassVar[frozenset[str]] = frozenset({"token", "accessor"})
    secret_outputs: ClassVar[frozenset[str]] = outputs

    def run(self, params: WorkloadLoginParams, ctx: ProbeContext) -> ProbeResult:
        """Read the token, log in (timed), then look the new token up (untimed)."""
        jwt = params.jwt if params.jwt is not None else read_token_file(params.jwt_file or "")
        ctx.redactor.register(jwt)
        mount = params.mount or self.method
        with LoginUndo(ctx, self.name) as undo:
            with step_client(ctx) as client, ctx.timer:
                reply = login(client, mount, params.role, jwt)
            auth = required(reply, "auth")
            token = Secret(str(required(auth, "client_token")), "vault token")
            undo.created(token, auth.get("token_type"))
        ctx.redactor.register(token)
        named_role = mapping(auth.get("metadata")).get("role")
        role = named_role if isinstance(named_role, str) and named_role else params.role
        accessor = Secret(str(auth.get("accessor") or ""), "vault token accessor")
        outputs: dict[str, OutputValue] = {"token": token, "accessor": accessor}
        grant = login_grant(ctx, auth, token, mount, f"{self.method}/{role}")
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


class JwtLogin(_WorkloadLogin):
    """Log in to a ``jwt`` auth mount (``jwt`` unless ``mount`` says otherwise); identity ``jwt/<role>``.

    Outcomes, grant and outputs as :class:`_WorkloadLogin` describes them.
    """

    name: ClassVar[str] = "vault.jwt_login"
    method: ClassVar[str] = "jwt"


class KubernetesLogin(_WorkloadLogin):
    """Log in to a ``kubernetes`` auth mount (``kubernetes`` unless ``mount`` says otherwise); identity
    ``kubernetes/<role>``. Outcomes, grant and outputs as :class:`_WorkloadLogin` describes them.
    """

    name: ClassVar[str] = "vault.kubernetes_login"
    method: ClassVar[str] = "kubernetes"


def login(client: Any, mount: str, role: str, jwt: Secret) -> Any:
    """``POST auth/<mount>/login`` with ``{"role", "jwt"}``: the call both ``jwt`` and ``kubernetes`` auth
    take. hvac's own helpers would quote a mount path's slashes; its adapter takes the path as it is."""
    return client.adapter.login(
        url=f"/v1/auth/{mount}/login", use_token=False, json={"role": role, "jwt": jwt.reveal()}
    )


def read_token_file(path: str) -> Secret:
    """The workload token in ``path``, read now (see :func:`.client.read_secret_file`)."""
    return read_secret_file(path, "workload token")


def workload_token(ctx: ProbeContext, auth: VaultJwt | VaultKubernetes) -> Secret:
    """The environment's own token from its JWT or Kubernetes login (for :func:`.client.acting_token`).

    Like the AppRole environment login, it is the invocation's acting token, not a step's creation: no undo.
    """
    jwt = read_token_file(auth.token_file)
    ctx.redactor.register(jwt)
    with step_client(ctx) as client:
        reply = login(client, auth.mount, auth.role, jwt)
    token = Secret(str(required(reply, "auth", "client_token")), "vault token")
    ctx.redactor.register(token)
    return token
