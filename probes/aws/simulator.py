"""IAM's policy simulator, asked what it declares for one action: the AWS side of ``crosscheck: simulator``.

``iam:SimulatePrincipalPolicy`` evaluates a principal's identity policies for an action (and a resource)
without performing it. Its reply holds one ``EvaluationResult`` per action, whose ``EvalDecision`` is
``allowed``, ``explicitDeny`` or ``implicitDeny`` (AWS IAM API reference, ``EvaluationResult``; the same enum
is in botocore's model): ``allowed`` is ALLOWED, both denies DENIED with the decision as the reason.

The principal is the environment's own identity (``sts:GetCallerIdentity``, which AWS never refuses): a user
as it is, an assumed-role session as its role (``arn:<partition>:iam::<account>:role/<name>``; the session
ARN carries no role path, so a role with a path is not found: skipped, saying so). Root and federated users
cannot be simulated: skipped.

The simulator cannot answer in some places, and the cross-check is then SKIPPED with the reason, never taken
for agreement: a caller without ``iam:SimulatePrincipalPolicy`` (AccessDenied), a target that does not
implement it (moto 5.2 answers HTTP 500 with Werkzeug's HTML error page and no AWS error; any bare 500 or
501, or a ``NotImplemented`` code, is read so), a principal IAM does not know. Throttling, timeouts and AWS
errors with a code (``InternalFailure``) are faults, ERROR as for any call; any other refusal of the question
(invalid credentials) is a harness error: the question was refused, not the action.

What the simulator does not evaluate, so a live decision may rightly differ: resource policies (an S3 bucket
policy, a role's trust policy for ``sts:AssumeRole``), session policies, and the condition keys the request
would carry (none are passed).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from parityprobe.model import Outcome
from parityprobe.probe import ProbeContext, ProbeResult

from . import errors
from .client import step_client

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

PARTITION = "<partition>"
ACCOUNT = "<account>"
# In a name that must not exist (``probe_target: absent``): a fresh random part each time it is asked.
RANDOM = "<random>"
# The answers that decide; anything else in a reply is a target error.
_DECISIONS: Mapping[str, Outcome] = MappingProxyType(
    {"allowed": Outcome.ALLOWED, "explicitDeny": Outcome.DENIED, "implicitDeny": Outcome.DENIED}
)
CANNOT_ASK = "the caller may not call iam:SimulatePrincipalPolicy ({code})"
NOT_IMPLEMENTED = "the target does not implement iam:SimulatePrincipalPolicy ({code})"
NO_PRINCIPAL = "IAM knows no principal {arn} (an assumed role's path is not in its session ARN)"
NOT_SIMULATED = "the simulator evaluates users and roles, not {arn}"
_REFUSED_QUESTION = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_UNIMPLEMENTED = frozenset({"500", "501", "NotImplemented", "NotImplementedException"})
_CALLER = re.compile(r"^arn:(?P<partition>[^:]+):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)$")

# botocore's service name -> IAM's action prefix, where the model's signing name or endpoint prefix differs.
_PREFIX_OVERRIDES: Mapping[str, str] = MappingProxyType(
    {"monitoring": "cloudwatch", "iotdata": "iot", "data-ats.iot": "iot", "email": "ses"}
)
# API operations whose IAM action has another name.
_ACTION_RENAMES: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("s3", "ListObjectsV2"): "ListBucket",
        ("s3", "ListObjects"): "ListBucket",
        ("s3", "ListObjectVersions"): "ListBucketVersions",
        ("s3", "HeadObject"): "GetObject",
        ("s3", "HeadBucket"): "ListBucket",
        ("s3", "ListBuckets"): "ListAllMyBuckets",
        ("lambda", "Invoke"): "InvokeFunction",
    }
)


@dataclass(frozen=True, slots=True)
class Question:
    """What the simulator is asked: one IAM action, on one resource or (None) on every resource (``*``).

    The resource may hold :data:`PARTITION` and :data:`ACCOUNT`, filled from the caller's ARN when asked, and
    :data:`RANDOM`, filled with a fresh random part: the question reads the same in every environment.
    """

    action: str
    resource: str | None = None

    def describe(self) -> str:
        """``iam:CreateAccessKey on arn:<partition>:iam::<account>:user/bob``: the observation's target."""
        return f"{self.action} on {self.resource or '*'}"


def iam_prefix(service_metadata: Mapping[str, Any]) -> str:
    """IAM's action prefix of a botocore service: its signing name, else its endpoint prefix (botocore's
    model metadata), with the few known exceptions (CloudWatch signs as ``monitoring``)."""
    name = str(service_metadata.get("signingName") or service_metadata.get("endpointPrefix") or "")
    return _PREFIX_OVERRIDES.get(name, name)


def iam_action(prefix: str, service: str, operation: str) -> str:
    """``<prefix>:<Operation>``, or the action IAM knows the operation by (``s3:ListBucket`` for
    ``ListObjectsV2``)."""
    return f"{prefix}:{_ACTION_RENAMES.get((service, operation), operation)}"


def iam_entity_arn(kind: str, name: str) -> str:
    """The ARN of an IAM user, role, group or instance profile by name (no path): a question's resource."""
    return f"arn:{PARTITION}:iam::{ACCOUNT}:{kind}/{name}"


def s3_arn(bucket: str, key: str | None = None) -> str:
    """A bucket's or an object's ARN, as a question's resource."""
    return f"arn:{PARTITION}:s3:::{bucket}" + (f"/{key}" if key is not None else "")


def policy_source(caller_arn: str) -> str | None:
    """The principal the simulator evaluates for ``caller_arn``: a user or role as it is, an assumed-role
    session as its role; None for what it cannot evaluate (root, a federated user)."""
    found = _CALLER.match(caller_arn)
    if found is None:
        return None
    partition, account, resource = found["partition"], found["account"], found["resource"]
    if found["service"] == "iam":
        return caller_arn if resource.startswith(("user/", "role/")) else None
    if resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None


def _fill(resource: str, caller_arn: str) -> str:
    found = _CALLER.match(caller_arn)
    assert found is not None  # checked by policy_source first
    filled = resource.replace(PARTITION, found["partition"]).replace(ACCOUNT, found["account"])
    return filled.replace(RANDOM, secrets.token_hex(6))


def decision(results: Iterable[Mapping[str, Any]]) -> ProbeResult:
    """ALLOWED when every evaluation result is ``allowed``; DENIED (the decision as the reason) when one is a
    deny, the explicit one first. A reply without a known decision is the target's error."""
    found = [str(r.get("EvalDecision", "")) for r in results]
    if not found or any(d not in _DECISIONS for d in found):
        # Read as "could not be asked" (the cross-check's ERROR): never as a decision.
        return ProbeResult(Outcome.ERROR, reason="simulator reply without a known decision")
    for denied in ("explicitDeny", "implicitDeny"):
        if denied in found:
            return ProbeResult(Outcome.DENIED, reason=denied)
    return ProbeResult(Outcome.ALLOWED)


def _iam(ctx: ProbeContext) -> AbstractContextManager[IAMClient]:
    # step_client builds a client for any botocore service name; its overloads type the usual three.
    return cast("AbstractContextManager[IAMClient]", step_client(ctx, cast(Any, "iam")))


def _skipped(reason: str) -> ProbeResult:
    return ProbeResult(Outcome.SKIPPED, reason=reason)


def _cannot_simulate(exc: ClientError, source: str) -> str | None:
    """Why the target cannot answer the question at all, or None when the error is an ordinary one."""
    code = errors.error_code(exc)
    if code in _REFUSED_QUESTION:
        return CANNOT_ASK.format(code=code)
    if code in _UNIMPLEMENTED:
        return NOT_IMPLEMENTED.format(code=f"HTTP {code}" if code.isdigit() else code)
    if code in ("NoSuchEntity", "NoSuchEntityException"):
        return NO_PRINCIPAL.format(arn=source)
    return None


def _asked(call: Any, source: str | None = None) -> Any:
    """``call()``; a fault raised as it is (ERROR), any other refusal of the question a harness error."""
    try:
        return call()
    except ClientError as exc:
        skipped = _cannot_simulate(exc, source) if source is not None else None
        if skipped is not None:
            return _skipped(skipped)
        failure = errors.translate(exc)
        if failure is not None and failure.outcome is Outcome.ERROR:
            raise
        raise errors.AwsSetupError(f"simulator question refused: {errors.error_code(exc)}") from None


def simulate(ctx: ProbeContext, question: Question) -> ProbeResult:
    """What IAM's policy simulator declares for ``question`` and the environment's identity: ALLOWED,
    DENIED, or SKIPPED with the reason it cannot say (see the module docstring)."""

    def caller() -> Any:
        with step_client(ctx, "sts") as sts:
            return sts.get_caller_identity()

    reply = _asked(caller)
    caller_arn = str(reply["Arn"])
    source = policy_source(caller_arn)
    if source is None:
        return _skipped(NOT_SIMULATED.format(arn=caller_arn))
    request: dict[str, Any] = {"PolicySourceArn": source, "ActionNames": [question.action]}
    if question.resource is not None:
        request["ResourceArns"] = [_fill(question.resource, caller_arn)]

    def ask() -> Any:
        with _iam(ctx) as iam, ctx.timer:
            return iam.simulate_principal_policy(**request)

    answer = _asked(ask, source)
    if isinstance(answer, ProbeResult):
        return answer
    return decision(answer.get("EvaluationResults") or [])
