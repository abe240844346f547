"""``aws.assume_role_with_web_identity``: a role assumed with the token a platform hands the workload.

EKS (IRSA and pod identity's OIDC flavour), GitHub Actions and other CI systems give a workload a signed OIDC
token; STS ``AssumeRoleWithWebIdentity`` exchanges it for a role's credentials when the role's trust policy
names the token's provider and its conditions (audience, subject) match. The request is not signed: the
token is the caller's only proof, so the probe sends it through an unsigned STS client, still bound by the
step (deadline, correlation id in the User-Agent, one attempt).

The token comes from ``token_file``, read when the step runs (platforms rotate it), at most 64 KiB of UTF-8
text, or as ``token`` from an earlier step's secret output. It is a :class:`~parityprobe.secret.Secret` from
the moment it is read and is registered with the redactor; it never appears in a reason, grant or output. A
token file that is missing or unreadable is a harness error naming the file.

Measured against moto 5.2.5 in server mode: with IAM enforcement on, moto answers every
AssumeRoleWithWebIdentity with HTTP 500 (it looks for a signature the request does not have), which is an
ERROR (target error), never a verdict. With enforcement off, moto validates nothing: any token, any
subject, even a role that does not exist is accepted, and the reply has no ``Provider`` or ``Audience``.
So against moto only the request (role, session name, token read at step time) and the grant's shape can
be checked; a refused token, a wrong audience and a trust condition are checks only real AWS exercises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import AwsProbe, read_token_file, unsigned_sts_client
from .identity import ROLE_ARN, session_name, session_result

if TYPE_CHECKING:
    from mypy_boto3_sts.type_defs import AssumeRoleWithWebIdentityRequestTypeDef


class WebIdentityParams(ProbeParams):
    """The role to assume, and the token: exactly one of ``token_file`` (read when the step runs) or
    ``token`` (an earlier step's secret output); optionally the session length.

    No ``source_identity``: AssumeRoleWithWebIdentity takes no ``SourceIdentity`` parameter (AWS reads it
    from the token's ``https://aws.amazon.com/source_identity`` claim, which the token's issuer sets).
    """

    role_arn: str = Field(pattern=ROLE_ARN)
    token_file: str | None = Field(default=None, min_length=1)
    token: Secret | None = None
    duration_seconds: int | None = Field(default=None, ge=900, le=43200)

    @model_validator(mode="after")
    def _one_token(self) -> WebIdentityParams:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of 'token' or 'token_file'")
        return self


class AssumeRoleWithWebIdentity(AwsProbe):
    """``sts:AssumeRoleWithWebIdentity`` of ``role_arn`` with a web identity token, the step's correlation id
    as RoleSessionName.

    READ: the probe only attempts the role; the credentials it receives are never used by it (a later step
    may, through the outputs). ALLOWED: STS issued credentials. DENIED: STS refused the role
    (``AccessDenied``: the trust policy does not allow this token's provider or claims) or the token
    (``invalid credentials``: ``InvalidIdentityToken``, ``ExpiredTokenException``, ``IDPRejectedClaim``).
    The provider failing to answer STS (``IDPCommunicationError``) is an ERROR, like every fault.

    Grant, as ``aws.assume_role``'s: ``identity`` (the assumed-role ARN, session normalised to
    ``<correlation-id>``), ``ttl_seconds`` (by the runner's clock), ``expires_at``; plus the attributes
    ``provider`` and ``audience`` when the reply has them (real AWS sends both; moto neither).
    Outputs: ``access_key_id``, ``secret_access_key``, ``session_token``, all :class:`Secret`.
    """

    name: ClassVar[str] = "aws.assume_role_with_web_identity"
    Params: ClassVar[type[ProbeParams]] = WebIdentityParams
    outputs: ClassVar[frozenset[str]] = frozenset({"access_key_id", "secret_access_key", "session_token"})
    secret_outputs: ClassVar[frozenset[str]] = outputs

    def run(self, params: WebIdentityParams, ctx: ProbeContext) -> ProbeResult:
        token = params.token if params.token is not None else read_token_file(params.token_file or "")
        ctx.redactor.register(token)
        request: AssumeRoleWithWebIdentityRequestTypeDef = {
            "RoleArn": params.role_arn,
            "RoleSessionName": session_name(ctx.correlation_id),
            "WebIdentityToken": token.reveal(),
        }
        if params.duration_seconds is not None:
            request["DurationSeconds"] = params.duration_seconds
        with unsigned_sts_client(ctx) as sts, ctx.timer:
            reply = sts.assume_role_with_web_identity(**request)
        attributes = {
            key: str(reply[field])  # type: ignore[literal-required]
            for key, field in (("provider", "Provider"), ("audience", "Audience"))
            if reply.get(field)
        }
        return session_result(reply, ctx, attributes)
