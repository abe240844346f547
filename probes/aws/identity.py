"""STS probes: who the environment's identity is, and which roles it may assume."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field

from parityprobe.model import Grant
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import ENVIRONMENT_SESSION_NAME, AwsProbe, step_client
from .declared import DeclaresSimulated
from .simulator import Question

if TYPE_CHECKING:
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef

CORRELATION_PLACEHOLDER = "<correlation-id>"
SESSION_PLACEHOLDER = "<session>"
# AWS: RoleSessionName is 2-64 characters of [\w+=,.@-].
_SESSION_UNSAFE = re.compile(r"[^A-Za-z0-9_+=,.@-]")
_SESSION_MAX = 64
_ASSUMED_ROLE = re.compile(r"^(arn:[^:]+:sts::[^:]*:assumed-role/[^/]+)/([^/]+)$")
ROLE_ARN = r"^arn:[a-z0-9-]+:iam::\d{12}:role/[\w+=,.@/-]+$"


def session_name(correlation_id: str) -> str:
    """The RoleSessionName for a step: its correlation id, made to satisfy AWS's rules.

    Too long an id keeps its start and gets a digest of the whole, so it stays unique and stable.
    """
    name = _SESSION_UNSAFE.sub("-", correlation_id)
    if len(name) > _SESSION_MAX:
        digest = hashlib.sha256(correlation_id.encode()).hexdigest()[:8]
        name = f"{name[: _SESSION_MAX - 9]}-{digest}"
    return name.ljust(2, "-")


def normalise_arn(arn: str, correlation_id: str) -> str:
    """The principal ARN with its per-call part replaced, so environments and runs compare.

    An assumed-role session named after this step becomes ``<correlation-id>``; any other session name
    (an instance id, an IRSA or SDK-generated name) differs per call too and becomes ``<session>``.
    Users, roles and federated users are returned as they are.
    """
    found = _ASSUMED_ROLE.match(arn)
    if found is None:
        return arn
    session = found.group(2)
    if session == session_name(correlation_id):
        return f"{found.group(1)}/{CORRELATION_PLACEHOLDER}"
    if session == ENVIRONMENT_SESSION_NAME:
        return arn
    return f"{found.group(1)}/{SESSION_PLACEHOLDER}"


class NoParams(ProbeParams):
    """A probe that takes no parameters."""


class CallerIdentity(AwsProbe):
    """``sts:GetCallerIdentity``: the principal the environment's AWS credentials act as.

    AWS allows this call to every valid credential, so it tests the credentials, not a policy.
    Grant: ``identity`` = the caller ARN, per-call session part normalised (see :func:`normalise_arn`).
    Outputs: ``account_id`` and ``arn`` (the ARN as returned), plain strings.
    """

    name = "aws.caller_identity"
    Params = NoParams
    outputs = frozenset({"account_id", "arn"})
    secret_outputs: frozenset[str] = frozenset()

    def run(self, params: NoParams, ctx: ProbeContext) -> ProbeResult:
        with step_client(ctx, "sts") as sts, ctx.timer:
            reply = sts.get_caller_identity()
        arn = reply["Arn"]
        return ProbeResult(
            grant=Grant(identity=normalise_arn(arn, ctx.correlation_id)),
            outputs=MappingProxyType({"account_id": reply["Account"], "arn": arn}),
        )


def _as_secret(value: Any) -> Any:
    # An external id written in the scenario arrives as text; it is wrapped so it never renders.
    return Secret(value, "aws external id") if isinstance(value, str) else value


class AssumeRoleParams(ProbeParams):
    """The role to attempt; optionally the session length, the external id its trust policy asks for, and
    ``source_identity``: send the step's session name as ``SourceIdentity`` too (see :class:`AssumeRole`)."""

    role_arn: str = Field(pattern=ROLE_ARN)
    duration_seconds: int | None = Field(default=None, ge=900, le=43200)
    external_id: Annotated[Secret, BeforeValidator(_as_secret)] | None = None
    source_identity: bool = False


class AssumeRole(DeclaresSimulated, AwsProbe):
    """``sts:AssumeRole`` of ``role_arn``, with the step's correlation id as RoleSessionName.

    READ: the probe only attempts the role; the credentials it receives are never used by it (a later step
    may, through the outputs). CloudTrail records the session name, which ties the event to the step. With
    ``source_identity: true`` the session name is also sent as ``SourceIdentity``, which AWS keeps on every
    later action of the session and of roles chained from it; the role's trust policy must then allow
    ``sts:SetSourceIdentity`` as well, or AWS refuses the whole request (DENIED).
    Grant: ``identity`` = the assumed-role ARN with the session normalised to ``<correlation-id>``;
    ``ttl_seconds`` = seconds until the credentials expire (by the runner's clock); ``expires_at``.
    Outputs: ``access_key_id``, ``secret_access_key``, ``session_token``, all :class:`Secret`.
    ``crosscheck: simulator`` asks about ``sts:AssumeRole`` on the role. The simulator evaluates the caller's
    identity policies only, not the role's trust policy: a trust policy that refuses the caller makes the live
    decision narrower than the declared one (a low finding that is true: a review of the caller's policies
    overstates what works).
    """

    name = "aws.assume_role"
    Params = AssumeRoleParams
    outputs = frozenset({"access_key_id", "secret_access_key", "session_token"})
    secret_outputs = outputs

    def question(self, params: AssumeRoleParams) -> Question:
        return Question("sts:AssumeRole", params.role_arn)

    def run(self, params: AssumeRoleParams, ctx: ProbeContext) -> ProbeResult:
        request: AssumeRoleRequestTypeDef = {
            "RoleArn": params.role_arn,
            "RoleSessionName": session_name(ctx.correlation_id),
        }
        if params.duration_seconds is not None:
            request["DurationSeconds"] = params.duration_seconds
        if params.external_id is not None:
            request["ExternalId"] = params.external_id.reveal()
        if params.source_identity:
            request["SourceIdentity"] = request["RoleSessionName"]
        with step_client(ctx, "sts") as sts, ctx.timer:
            reply = sts.assume_role(**request)
        return session_result(reply, ctx)


def session_result(reply: Any, ctx: ProbeContext, attributes: Mapping[str, str] | None = None) -> ProbeResult:
    """What an assumed role's reply grants (``identity`` normalised, ``ttl_seconds`` by the runner's clock,
    ``expires_at``, and ``attributes``) and its three credentials, as secret outputs."""
    issued = reply["Credentials"]
    expires = sts_moment(issued["Expiration"])
    ttl = round((expires - ctx.now()).total_seconds())
    return ProbeResult(
        grant=Grant(
            identity=normalise_arn(reply["AssumedRoleUser"]["Arn"], ctx.correlation_id),
            ttl_seconds=max(0, ttl),
            expires_at=expires,
            attributes=MappingProxyType(dict(attributes or {})),
        ),
        outputs=MappingProxyType(
            {
                "access_key_id": Secret(issued["AccessKeyId"], "aws access key id"),
                "secret_access_key": Secret(issued["SecretAccessKey"], "aws secret access key"),
                "session_token": Secret(issued["SessionToken"], "aws session token"),
            }
        ),
    )


def sts_moment(moment: datetime) -> datetime:
    """An STS timestamp as an aware UTC datetime. STS sends UTC; an AWS-compatible server that omits the
    zone gives botocore a naive value, which is UTC too, never the machine's local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
