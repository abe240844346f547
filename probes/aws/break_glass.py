"""``aws.break_glass_assume_role``: the break-glass drill on AWS, assuming the break-glass role with the
approval its trust policy asks for.

The break-glass role's trust policy lets the workload assume it only with an approval, here the condition
``StringEquals sts:ExternalId``: an approver hands over the external id as a file, read when the step runs.
The everyday check (``aws.assume_role`` of the role without the approval must be DENIED) proves the door is
shut; the drill proves it opens with the approval, and that the audit trail names the drill: the session is
``RoleSessionName`` = the step's correlation id, as CloudTrail records it.

Whether the drill may run at all (the environment allows ``privileged`` and the run was given
``--allow-break-glass``) is the runner's decision, made before the probe is called: a step left out never
reads the file and never sends a request.

Measured against moto 5.2.5 with IAM enforcement: the approver's external id is allowed, a wrong one denied;
an omitted one is ALLOWED by moto (its trust-condition check passes when the key is absent), where AWS
denies it. This probe always sends the id, so that gap only matters to ``aws.assume_role`` without one.

AWS sessions cannot be revoked, so there is no undo: the credentials expire after ``duration_seconds``
(900, the least AWS allows, by default). After a drill in a real account, cut the drill's session short
as AWS does for leaked role credentials: a policy on the break-glass role denying everything to sessions
with ``aws:TokenIssueTime`` before now (the console's "Revoke active sessions"), then remove it once the
drill's session has expired; and rotate the external id, which the drill has now used.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from parityprobe.model import Effect
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from .client import AwsProbe, read_token_file, step_client
from .identity import ROLE_ARN, session_name, session_result

if TYPE_CHECKING:
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef

DRILL = "break-glass drill: role assumed with the approver's external id; the session cannot be revoked"
_LEAST_SECONDS = 900


class BreakGlassAssumeRoleParams(ProbeParams):
    """The break-glass role, the file holding the approver's external id, and the session length."""

    role_arn: str = Field(pattern=ROLE_ARN)
    external_id_file: str = Field(min_length=1)
    duration_seconds: int = Field(default=_LEAST_SECONDS, ge=_LEAST_SECONDS, le=43200)


class BreakGlassAssumeRole(AwsProbe):
    """``sts:AssumeRole`` of ``role_arn`` with the approver's external id, as a drill.

    ALLOWED: the role was assumed; the reason says it was a drill. DENIED: the trust policy (or the caller's
    own policies) refused it, a wrong external id included. An unreadable, empty or oversized file is a
    harness error naming the file. The effect is PRIVILEGED.

    Grant: as ``aws.assume_role``: ``identity`` (the assumed-role ARN, session as ``<correlation-id>``),
    ``ttl_seconds``, ``expires_at``. Outputs: ``access_key_id``, ``secret_access_key``, ``session_token``, all
    :class:`~parityprobe.secret.Secret`. Nothing is undone (see the module docstring).
    """

    name: ClassVar[str] = "aws.break_glass_assume_role"
    Params: ClassVar[type[ProbeParams]] = BreakGlassAssumeRoleParams
    outputs: ClassVar[frozenset[str]] = frozenset({"access_key_id", "secret_access_key", "session_token"})
    secret_outputs: ClassVar[frozenset[str]] = outputs
    effect: ClassVar[Effect] = Effect.PRIVILEGED

    def run(self, params: BreakGlassAssumeRoleParams, ctx: ProbeContext) -> ProbeResult:
        external_id = read_token_file(params.external_id_file, "break-glass external id")
        ctx.redactor.register(external_id)
        request: AssumeRoleRequestTypeDef = {
            "RoleArn": params.role_arn,
            "RoleSessionName": session_name(ctx.correlation_id),
            "DurationSeconds": params.duration_seconds,
            "ExternalId": external_id.reveal(),
        }
        with step_client(ctx, "sts") as sts, ctx.timer:
            reply = sts.assume_role(**request)
        return replace(session_result(reply, ctx), reason=DRILL)
