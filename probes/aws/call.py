"""``aws.call``: any AWS API operation as a step, for decisions no dedicated probe covers.

The step names the ``service`` (botocore's name: ``iam``, ``ec2``, ``s3``), the ``operation`` (the API name,
``CreateAccessKey``) and its ``params``; all three are checked against botocore's service model when the
step is bound, so a misspelt operation or parameter is a plan error. The decision comes from the plane's one
exception table (:mod:`.errors`): explicit and implicit deny, invalid credentials, throttling, not found.

Effect: ``read`` for operations named Get*, List*, Describe*, Head*; ``write`` for every other, unless
the step asks for one of the non-destructive forms below (:meth:`AwsCall.effect_for`, which the plan
checks against every environment's safety; the probe also refuses a write, before any request, where
the environment does not allow ``write``). A real write records no undo: the probe cannot know what an
operation creates, so the scenario's cleanup steps must remove it (``aws.iam_create_access_key`` is the
escalation check that does).

Non-destructive forms, each said in the observation's reason:

- ``params: {DryRun: true}`` (EC2 and the other services whose operation takes ``DryRun``): AWS answers
  ``DryRunOperation`` when the request would have been authorized (ALLOWED, nothing changed) and
  ``UnauthorizedOperation`` when not (DENIED).
- ``probe_target: absent`` on an IAM operation that names a user, role, group or instance profile: each such
  name is replaced by ``pp-absent-<random>``, which cannot exist. IAM evaluates the caller's policies before
  looking the entity up, so ``NoSuchEntity`` is ALLOWED with nothing changed and ``AccessDenied`` DENIED.
  Refused for an operation that would create the entity it names (``CreateUser`` with ``UserName``). Caveat:
  a policy that allows only named resources (``user/app-*``) does not match the absent name and denies.
- ``probe_target: absent`` on an S3 operation taking ``IfMatch`` (``PutObject``, ``DeleteObject``): the object
  keeps its key and gets ``IfMatch`` set to an ETag no object has; S3 authorizes first, then refuses the
  precondition (``PreconditionFailed``, or ``NoSuchKey`` for a missing object): ALLOWED, nothing written.

A target that does not honour the form (it answers success) really changed something: the result is
ALLOWED with a reason saying so, never reported as a dry result.

Measured against moto 5.2.5 in server mode with IAM enforcement (as the lab runs it):

- DryRun is honoured only where moto's EC2 handler checks it: ``RunInstances``, ``DescribeInstances``,
  ``CreateSecurityGroup`` and most security-group, volume, snapshot, image and address operations answer
  ``DryRunOperation`` (after the policy check: a caller without the action gets ``AccessDenied``).
  ``CreateVpc`` ignores it and creates the VPC; the probe then reports the change.
- IAM authorizes before the entity lookup (AccessDenied for an unauthorized caller, NoSuchEntity for an
  authorized one), as on AWS.
- S3 ``PutObject`` with ``IfMatch`` is checked after authorization: PreconditionFailed for an existing
  object, NoSuchKey for a missing one.

Grant: nothing, except for the operations that name the caller (``sts:GetCallerIdentity``,
``sts:AssumeRole``): ``identity``, normalised as ``aws.caller_identity`` does.
``crosscheck: simulator`` asks IAM's policy simulator for ``<prefix>:<Operation>`` (the prefix from botocore's
model: its signing name, else its endpoint prefix; the few operations IAM names otherwise, such as S3's
``ListObjectsV2`` = ``s3:ListBucket``, are in :mod:`.simulator`) on ``resource`` when the step gives it, else
on the resource the parameters name (an IAM user, role, group or instance profile, an S3 bucket or object, a
secret given by ARN), else on every resource (``*``).

Outputs: ``status`` (the HTTP status, as text), ``arn`` and ``id`` (a known non-secret field of the reply for
the operations listed in :data:`KNOWN_FIELDS`, else empty). Nothing else of the reply is ever an output: it
can hold credentials (``CreateAccessKey``, ``AssumeRole``, ``GetSecretValue``).
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import Any, ClassVar, Literal, cast

import botocore.session
from botocore import xform_name
from botocore.exceptions import ClientError, UnknownServiceError
from botocore.model import ServiceModel
from pydantic import Field, JsonValue, model_validator

from parityprobe.model import Effect, Grant, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from . import errors
from .client import AwsProbe, step_client
from .declared import DeclaresSimulated
from .identity import normalise_arn
from .simulator import RANDOM, Question, iam_action, iam_entity_arn, iam_prefix, s3_arn

_READ_OPERATION = re.compile(r"^(Get|List|Describe|Head)[A-Z]")
DRY_RUN = "DryRun"
ABSENT_PREFIX = "pp-absent-"
# IAM parameters naming an existing entity the operation acts on.
_IAM_TARGETS = ("UserName", "RoleName", "GroupName", "InstanceProfileName")
_IAM_KINDS: Mapping[str, str] = MappingProxyType(
    {"UserName": "user", "RoleName": "role", "GroupName": "group", "InstanceProfileName": "instance-profile"}
)
_S3_PRECONDITION = "IfMatch"
# Codes that prove, for an absent target, that the request was authorized and changed nothing.
_ABSENT_PROOF: Mapping[str, frozenset[str]] = MappingProxyType(
    {"iam": frozenset({"NoSuchEntity"}), "s3": frozenset({"PreconditionFailed", "NoSuchKey"})}
)
ABSENT_AUTHORIZED = "authorized; nothing changed (target absent)"
PRECONDITION_AUTHORIZED = "authorized; nothing written (precondition)"
DRY_RUN_IGNORED = "changed: DryRun not honoured by the target"
ABSENT_IGNORED = "changed: the request succeeded although its target was absent"

# Non-secret fields of known replies: (service, operation) -> {output: path in the reply}.
KNOWN_FIELDS: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        ("sts", "GetCallerIdentity"): {"arn": ("Arn",)},
        ("sts", "AssumeRole"): {"arn": ("AssumedRoleUser", "Arn")},
        ("iam", "GetUser"): {"arn": ("User", "Arn")},
        ("iam", "CreateUser"): {"arn": ("User", "Arn")},
        ("iam", "GetRole"): {"arn": ("Role", "Arn")},
        ("iam", "CreateRole"): {"arn": ("Role", "Arn")},
        ("iam", "CreateAccessKey"): {"id": ("AccessKey", "AccessKeyId")},
        ("ec2", "CreateVpc"): {"id": ("Vpc", "VpcId")},
        ("ec2", "CreateSecurityGroup"): {"id": ("GroupId",)},
        ("s3", "PutObject"): {"id": ("VersionId",)},
    }
)
_IDENTITY_ARNS = frozenset({("sts", "GetCallerIdentity"), ("sts", "AssumeRole")})


@functools.cache
def _botocore() -> botocore.session.Session:
    # Only botocore's shipped models are read from it, never credentials or configuration.
    return botocore.session.Session()


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service``; ValueError for a name botocore does not know."""
    try:
        return _botocore().get_service_model(service)
    except UnknownServiceError:
        raise ValueError(f"unknown AWS service {service!r}") from None


def _input_members(model: ServiceModel, operation: str) -> frozenset[str]:
    shape = model.operation_model(operation).input_shape
    return frozenset(shape.members) if shape is not None else frozenset()


class AwsCallParams(ProbeParams):
    """``service``, ``operation`` (the API name), ``params`` (its input), and ``probe_target: absent``;
    ``resource``: the ARN ``crosscheck: simulator`` asks about (nothing else uses it)."""

    service: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    operation: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    params: dict[str, JsonValue] = Field(default_factory=dict)
    probe_target: Literal["absent"] | None = None
    resource: str | None = Field(default=None, pattern=r"^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$")

    @model_validator(mode="after")
    def _known(self) -> AwsCallParams:
        model = service_model(self.service)
        if self.operation not in model.operation_names:
            raise ValueError(f"{self.service} has no operation {self.operation!r}")
        members = _input_members(model, self.operation)
        unknown = sorted(set(self.params) - members)
        if unknown:
            raise ValueError(f"{self.service} {self.operation} takes no parameter {', '.join(unknown)}")
        if self.probe_target == "absent":
            self._check_absent(members)
        return self

    def _check_absent(self, members: frozenset[str]) -> None:
        if self.params.get(DRY_RUN) is True:
            raise ValueError("give either DryRun or probe_target: absent, not both")
        if self.service == "iam":
            targets = [name for name in _IAM_TARGETS if name in members]
            if not targets:
                raise ValueError(f"iam {self.operation} names no user, role, group or instance profile")
            created = [name for name in targets if self.operation == f"Create{name.removesuffix('Name')}"]
            if created:
                raise ValueError(f"iam {self.operation} would create the absent {created[0]}")
        elif self.service == "s3":
            if _S3_PRECONDITION not in members:
                raise ValueError(f"s3 {self.operation} takes no IfMatch precondition")
            if _S3_PRECONDITION in self.params:
                raise ValueError("probe_target: absent sets IfMatch itself")
        else:
            raise ValueError("probe_target: absent is supported for iam and s3 operations")


def _effect(operation: Any, params: Any, probe_target: Any) -> Effect:
    if isinstance(operation, str) and _READ_OPERATION.match(operation):
        return Effect.READ
    if probe_target == "absent":
        return Effect.READ
    if isinstance(params, Mapping) and params.get(DRY_RUN) is True:
        return Effect.READ
    return Effect.WRITE


def _field(reply: Mapping[str, Any], path: tuple[str, ...]) -> str:
    value: Any = reply
    for key in path:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return value if isinstance(value, str) else ""


def _named_resource(params: AwsCallParams) -> str | None:
    """The ARN of what the parameters name, as far as they alone say it; None when they do not."""
    values = params.params
    if params.service == "iam":
        members = _input_members(service_model("iam"), params.operation)
        for name in _IAM_TARGETS:
            if name in members and (name in values or params.probe_target == "absent"):
                entity = ABSENT_PREFIX + RANDOM if params.probe_target == "absent" else values[name]
                return iam_entity_arn(_IAM_KINDS[name], str(entity))
    if params.service == "s3" and isinstance(values.get("Bucket"), str):
        key = values.get("Key")
        return s3_arn(str(values["Bucket"]), key if isinstance(key, str) else None)
    secret = values.get("SecretId")
    if params.service == "secretsmanager" and isinstance(secret, str) and secret.startswith("arn:"):
        return secret
    return None


def _close_streams(reply: Mapping[str, Any]) -> None:
    # A streaming body (S3 GetObject) holds its connection until closed; it is never read.
    for value in reply.values():
        closer = getattr(value, "close", None)
        if callable(closer) and hasattr(value, "iter_chunks"):
            closer()


class AwsCall(DeclaresSimulated, AwsProbe):
    """One call of ``operation`` of ``service`` with ``params``; see the module docstring for the outcomes.

    ALLOWED: the call succeeded (reason set when it changed something it was asked not to), or a
    non-destructive form proved it authorized (reason says nothing changed). DENIED, NOT_FOUND, ERROR: as the
    plane's table says.
    """

    name: ClassVar[str] = "aws.call"
    Params: ClassVar[type[ProbeParams]] = AwsCallParams
    outputs: ClassVar[frozenset[str]] = frozenset({"status", "arn", "id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def effect_for(cls, with_: Mapping[str, Any]) -> Effect:
        """``read`` for Get/List/Describe/Head operations, ``DryRun: true`` and ``probe_target: absent``;
        ``write`` otherwise (a templated operation may be anything)."""
        return _effect(with_.get("operation"), with_.get("params"), with_.get("probe_target"))

    def question(self, params: AwsCallParams) -> Question:
        """The operation's IAM action, on ``resource`` or the resource the parameters name (see the module
        docstring)."""
        prefix = iam_prefix(service_model(params.service).metadata)
        action = iam_action(prefix, params.service, params.operation)
        return Question(action, params.resource or _named_resource(params))

    def run(self, params: AwsCallParams, ctx: ProbeContext) -> ProbeResult:
        writes = _effect(params.operation, params.params, params.probe_target) is Effect.WRITE
        if writes and not ctx.environment.safety.allows(Effect.WRITE):
            raise errors.AwsSetupError(
                f"aws.call {params.service} {params.operation} changes the target: give the step "
                f"'effect: write' and allow write in environment {ctx.environment.name!r} "
                "(safety.allow_effects)"
            )
        request = self._request(params)
        client_cm = cast(AbstractContextManager[Any], step_client(ctx, cast(Any, params.service)))
        with client_cm as client:
            method = getattr(client, xform_name(params.operation))
            try:
                with ctx.timer:
                    reply: dict[str, Any] = method(**request)
            except ClientError as exc:
                if params.probe_target == "absent":
                    code = errors.error_code(exc)
                    if code in _ABSENT_PROOF.get(params.service, frozenset()):
                        proved = ABSENT_AUTHORIZED if params.service == "iam" else PRECONDITION_AUTHORIZED
                        return ProbeResult(reason=proved)
                raise
            _close_streams(reply)
        return self._result(params, reply, ctx)

    @staticmethod
    def _request(params: AwsCallParams) -> dict[str, Any]:
        request: dict[str, Any] = dict(params.params)
        if params.probe_target != "absent":
            return request
        absent = ABSENT_PREFIX + secrets.token_hex(6)
        if params.service == "s3":
            request[_S3_PRECONDITION] = f'"{absent}"'
            return request
        members = _input_members(service_model(params.service), params.operation)
        for name in _IAM_TARGETS:
            if name in members:
                request[name] = absent
        return request

    @staticmethod
    def _result(params: AwsCallParams, reply: Mapping[str, Any], ctx: ProbeContext) -> ProbeResult:
        status = reply.get("ResponseMetadata", {}).get("HTTPStatusCode")
        key = (params.service, params.operation)
        known = KNOWN_FIELDS.get(key, {})
        outputs: dict[str, OutputValue] = {
            "status": str(status) if isinstance(status, int) else "",
            "arn": _field(reply, known["arn"]) if "arn" in known else "",
            "id": _field(reply, known["id"]) if "id" in known else "",
        }
        grant = Grant()
        if key in _IDENTITY_ARNS and outputs["arn"]:
            grant = Grant(identity=normalise_arn(str(outputs["arn"]), ctx.correlation_id))
        reason = None
        if params.params.get(DRY_RUN) is True:
            reason = DRY_RUN_IGNORED
        elif params.probe_target == "absent":
            reason = ABSENT_IGNORED
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs), reason=reason)
