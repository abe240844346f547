"""``aws.config``: a read-only snapshot of the AWS configuration a workload depends on, compared between
environments as configuration drift (:mod:`parityprobe.compare.drift`).

It reads, and never changes: the workload's IAM roles (their trust policy, inline and attached managed
policies) and users (inline and attached policies), each policy read into normalised statements by
:mod:`.policy_document`; and its Secrets Manager secrets' rotation settings (enabled, schedule, and how the
last rotation stands against the schedule). Keys are named by :mod:`parityprobe.compare.aws_keys`. Nothing
secret is read: secret *values* never are (``DescribeSecret`` only).

What always differs between accounts and proves nothing is left out (ARNs' account ids through the vars,
role ids, creation and rotation timestamps: the last rotation is a bucket, ``never``, ``within schedule``,
``overdue``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from botocore.exceptions import ClientError
from pydantic import Field, StringConstraints, model_validator

from parityprobe.compare import aws_keys, drift
from parityprobe.compare.grants import normalise
from parityprobe.model import Grant, Outcome
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from . import errors
from .client import AwsProbe, auditor_client
from .policy_document import UnreadDocument, statements

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

T = TypeVar("T")
IamName = Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{1,128}$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^[\w/+=.@:-]+$", max_length=2048)]
ENABLED, DISABLED = "enabled", "disabled"
NEVER, WITHIN, OVERDUE, UNSCHEDULED = "never", "within schedule", "overdue", "rotated, no schedule"
# AWS rotates within the schedule's window (a whole day unless the rules set a shorter ``Duration``).
_DEFAULT_WINDOW = timedelta(hours=24)
_RATE = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")
_WINDOW = re.compile(r"^(\d+)h$")


class AwsConfigParams(ProbeParams):
    """The workload's IAM ``roles`` and ``users`` and its Secrets Manager ``secrets`` (at least one)."""

    roles: list[IamName] = Field(default_factory=list)
    users: list[IamName] = Field(default_factory=list)
    secrets: list[SecretName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> AwsConfigParams:
        if not (self.roles or self.users or self.secrets):
            raise ValueError("name at least one role, user or secret")
        for name, items in (("role", self.roles), ("user", self.users), ("secret", self.secrets)):
            if len(items) != len(set(items)):
                raise ValueError(f"each {name} may be listed once")
        return self


class _Refused:
    """A read the caller was refused."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


_ABSENT = object()


class AwsConfig(AwsProbe):
    """Read the IAM and Secrets Manager configuration the workload depends on, as one snapshot (READ).

    It reads with the environment's ``aws.config_credentials`` (a read-only auditor) where given, else as the
    workload. ALLOWED when at least one part could be read: a part that identity may not read is
    recorded as ``not readable (AccessDenied)`` and compared as inconclusive, never as parity (the reason
    lists them). DENIED (``AccessDenied``) when nothing at all could be read. A role, user or secret that
    does not exist is ``absent``. Faults (unreachable, throttled, 5xx) are errors through the plane's table.

    Grant: ``attributes`` only, the keys of :mod:`parityprobe.compare.aws_keys` (each environment's ``vars``
    replaced by ``${vars.NAME}``). Outputs: none.
    """

    name: ClassVar[str] = "aws.config"
    Params: ClassVar[type[ProbeParams]] = AwsConfigParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: AwsConfigParams, ctx: ProbeContext) -> ProbeResult:
        snap = _Snapshot(ctx)
        if params.roles or params.users:
            with auditor_client(ctx, "iam") as iam:
                for role in params.roles:
                    snap.principal(iam, "role", role)
                for user in params.users:
                    snap.principal(iam, "user", user)
        if params.secrets:
            with auditor_client(ctx, "secretsmanager") as sm:
                for secret in params.secrets:
                    snap.secret(sm, secret)
        if snap.read == 0:
            return ProbeResult(Outcome.DENIED, reason=snap.refusal or errors.ACCESS_DENIED)
        reason = f"not readable: {', '.join(snap.refused)}" if snap.refused else None
        return ProbeResult(grant=Grant(attributes=MappingProxyType(snap.attributes)), reason=reason)


class _Snapshot:
    """The attributes being collected, names normalised with the environment's vars as they go in."""

    def __init__(self, ctx: ProbeContext) -> None:
        self._ctx = ctx
        self._vars = ctx.environment.vars
        self.attributes: dict[str, str] = {drift.SNAPSHOT: aws_keys.SNAPSHOT}
        self.refused: list[str] = []
        self.refusal: str | None = None
        self.read = 0
        self._documents: dict[str, Any] = {}

    def name(self, text: str) -> str:
        return normalise(text, self._vars) or ""

    def ask(self, key: str, action: Callable[[], T]) -> T | None:
        """``action()``; a refusal records ``key`` as not readable and a missing entity as absent (None)."""
        try:
            with self._ctx.timer:
                reply = action()
        except ClientError as exc:
            failure = errors.translate(exc)
            if failure is None or failure.outcome not in (Outcome.DENIED, Outcome.NOT_FOUND):
                raise
            if failure.outcome is Outcome.NOT_FOUND:
                self.read += 1
                self.attributes[key] = drift.ABSENT
                return None
            self.attributes[key] = drift.unreadable(failure.reason)
            self.refused.append(key)
            self.refusal = self.refusal or failure.reason
            return None
        self.read += 1
        return reply

    def principal(self, iam: IAMClient, kind: str, name: str) -> None:
        shown = self.name(name)
        key = aws_keys.principal_key(kind, shown)
        if kind == "role":
            role = self.ask(key, lambda: iam.get_role(RoleName=name))
            if role is None:
                return
            self.document(aws_keys.document_key(kind, shown), role["Role"].get("AssumeRolePolicyDocument"))
        elif self.ask(key, lambda: iam.get_user(UserName=name)) is None:
            return
        self.attributes[key] = drift.PRESENT
        listing = aws_keys.listing_key(kind, shown, aws_keys.INLINE)
        names = self.ask(listing, lambda: _inline_names(iam, kind, name))
        if names is not None:
            self.attributes[listing] = drift.LISTED
            for policy in names:
                doc_key = aws_keys.document_key(kind, shown, self.name(policy))
                reply = self.ask(doc_key, functools.partial(_inline_document, iam, kind, name, policy))
                if reply is not None:
                    self.document(doc_key, reply)
        listing = aws_keys.listing_key(kind, shown, aws_keys.MANAGED)
        attached = self.ask(listing, lambda: _attached(iam, kind, name))
        if attached is not None:
            self.attributes[listing] = drift.LISTED
            for policy_name, arn in attached:
                doc_key = aws_keys.document_key(kind, shown, self.name(policy_name), managed=True)
                document = self.managed(iam, doc_key, arn)
                if document is not None:
                    self.document(doc_key, document)

    def managed(self, iam: IAMClient, key: str, arn: str) -> Any:
        """The default version's document of a managed policy (read once per snapshot)."""
        if arn not in self._documents:
            policy = self.ask(key, lambda: iam.get_policy(PolicyArn=arn))
            if policy is None:
                return None
            version = policy["Policy"].get("DefaultVersionId") or "v1"
            reply = self.ask(key, lambda: iam.get_policy_version(PolicyArn=arn, VersionId=version))
            if reply is None:
                return None
            self._documents[arn] = reply["PolicyVersion"].get("Document")
        return self._documents[arn]

    def document(self, key: str, document: Any) -> None:
        found = statements(document if document is not None else "", self._vars)
        if isinstance(found, UnreadDocument):
            self.attributes[key] = f"present, not read as JSON ({found.digest})"
            return
        self.attributes[key] = drift.PRESENT
        for label, text in found.items():
            self.attributes[aws_keys.statement_key(key, label)] = text

    def secret(self, sm: SecretsManagerClient, name: str) -> None:
        key = aws_keys.secret_key(self.name(name))
        reply = self.ask(key, lambda: sm.describe_secret(SecretId=name))
        if reply is None:
            return
        self.attributes[key] = drift.PRESENT
        enabled = reply.get("RotationEnabled") is True
        rules: Mapping[str, Any] = reply.get("RotationRules") or {}
        shown = self.name(name)
        self.attributes[aws_keys.secret_key(shown, aws_keys.ROTATION)] = ENABLED if enabled else DISABLED
        self.attributes[aws_keys.secret_key(shown, aws_keys.SCHEDULE)] = schedule_text(rules)
        bucket = rotation_bucket(
            reply.get("LastRotatedDate"), reply.get("NextRotationDate"), rules, self._ctx.now()
        )
        self.attributes[aws_keys.secret_key(shown, aws_keys.LAST_ROTATED)] = bucket


def _inline_names(iam: IAMClient, kind: str, name: str) -> list[str]:
    if kind == "role":
        pages = iam.get_paginator("list_role_policies").paginate(RoleName=name)
    else:
        pages = iam.get_paginator("list_user_policies").paginate(UserName=name)
    return [policy for page in pages for policy in page["PolicyNames"]]


def _inline_document(iam: IAMClient, kind: str, name: str, policy: str) -> Any:
    if kind == "role":
        return iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    return iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]


def _attached(iam: IAMClient, kind: str, name: str) -> list[tuple[str, str]]:
    """(name, ARN) of each managed policy attached."""
    if kind == "role":
        pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
    else:
        pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=name)
    return [
        (policy.get("PolicyName", ""), policy.get("PolicyArn", ""))
        for page in pages
        for policy in page["AttachedPolicies"]
    ]


def schedule_text(rules: Mapping[str, Any]) -> str:
    """``every 30 days``, ``rate(10 days)``, ``cron(0 8 1 * ? *)``, with ``, window 3h`` when set; else
    ``(not set)``."""
    days = rules.get("AutomaticallyAfterDays")
    expression = " ".join(str(rules.get("ScheduleExpression") or "").split())
    if expression:
        text = expression
    elif isinstance(days, int) and days > 0:
        text = f"every {days} days"
    else:
        return drift.NOT_SET
    window = rules.get("Duration")
    return f"{text}, window {window}" if window else text


def _interval(rules: Mapping[str, Any]) -> timedelta | None:
    days = rules.get("AutomaticallyAfterDays")
    rate = _RATE.match(" ".join(str(rules.get("ScheduleExpression") or "").split()))
    if rate is not None:
        count, unit = int(rate.group(1)), rate.group(2)
        return timedelta(hours=count) if unit.startswith("hour") else timedelta(days=count)
    if isinstance(days, int) and days > 0 and not rules.get("ScheduleExpression"):
        return timedelta(days=days)
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rotation_bucket(last: object, following: object, rules: Mapping[str, Any], now: datetime) -> str:
    """How the last rotation stands: ``never``, ``within schedule``, ``overdue``, or ``rotated, no schedule``.

    Overdue: more than the schedule's interval and its window since the last rotation, or (for a ``cron``
    schedule) the next rotation's date more than a window ago.
    """
    if not isinstance(last, datetime):
        return NEVER
    window = _DEFAULT_WINDOW
    if (hours := _WINDOW.match(str(rules.get("Duration") or ""))) is not None:
        window = timedelta(hours=int(hours.group(1)))
    interval = _interval(rules)
    if interval is not None:
        return WITHIN if now - _utc(last) <= interval + window else OVERDUE
    if isinstance(following, datetime):
        return WITHIN if now <= _utc(following) + window else OVERDUE
    return UNSCHEDULED
