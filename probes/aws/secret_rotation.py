"""Secrets Manager rotation as a step: a new version promoted to ``AWSCURRENT``, readers served it by stage
within a bound, the previous version kept as ``AWSPREVIOUS``; and the undo that clears a dangling
``AWSPENDING``.

Two ways to rotate (``mode``):

- ``stages`` (default; works on AWS and on moto): the probe is the rotation function. It puts a new random
  value (never output) as ``AWSPENDING``, moves ``AWSCURRENT`` to it (the old version becomes
  ``AWSPREVIOUS``), removes ``AWSPENDING``, then waits until ``GetSecretValue(VersionStage=AWSCURRENT)``
  serves the new version.
- ``rotate_secret`` (needs real AWS with a rotation Lambda): ``RotateSecret`` with ``RotateImmediately``,
  then waits until ``AWSCURRENT`` is on another version and no version carries ``AWSPENDING``, and until
  readers are served it. moto does not rotate faithfully: without a Lambda it moves ``AWSCURRENT`` to a new
  version that has no value, so readers cannot read it and the result says so (``new version readable``
  ``not within …``); with one it leaves ``AWSPENDING`` on an empty version (``rotation`` ``not completed``).

Readers are always asked by ``VersionStage``: moto keeps serving the old version to a request without one
after the labels moved (its default version is not updated); on AWS the stage is what readers use anyway.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

from botocore.exceptions import ClientError
from pydantic import Field

from parityprobe.config.durations import Duration, humanise
from parityprobe.model import Effect, Grant, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from . import errors
from .client import AwsProbe, step_client
from .iam import refuse_write

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

T = TypeVar("T")
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
PENDING_CLEAR = "aws.secret_pending_clear"
READABLE, PREVIOUS_KEPT, ROTATION = "new version readable", "previous version kept", "rotation"
YES, NO, COMPLETED = "yes", "no", "completed"
# The new value: random, as long as a typical generated password, never leaving the probe.
_VALUE_BYTES = 32


class SecretRotateParams(ProbeParams):
    """The secret (name or ARN), how to rotate it, and how soon readers must be served the new version."""

    secret_id: str = Field(min_length=1)
    mode: Literal["stages", "rotate_secret"] = "stages"
    readable_within: Duration = Field(default=30, gt=0)


class _Refused(Exception):
    """A call of the rotation was decided against (DENIED): the probe's verdict, naming the call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _call(operation: str, action: Callable[[], T]) -> T:
    """``action()``; a denial becomes :class:`_Refused` naming ``operation``; anything else propagates."""
    try:
        return action()
    except ClientError as exc:
        failure = errors.translate(exc)
        if failure is not None and failure.outcome is Outcome.DENIED:
            raise _Refused(f"{failure.reason} ({operation})") from exc
        raise


class SecretRotate(AwsProbe):
    """Rotate ``secret_id`` (see the module docstring for the two modes) and check what readers see.

    WRITE: refused before any request where the environment does not allow ``write``. The rotation is the
    intended change and is not undone (the previous version stays readable as ``AWSPREVIOUS``). In
    ``stages`` mode the new version's id is chosen before it is put, and an undo removing its ``AWSPENDING``
    label (``aws.secret_pending_clear``) is recorded first; it is resolved once the promotion finished, so a
    step failing between the put and the promotion leaves no dangling ``AWSPENDING``.

    ALLOWED when the rotation ran. DENIED at the first refused call, the reason naming it
    (``AccessDenied (PutSecretValue)``); NOT_FOUND when the secret does not exist.
    Grant: ``stages`` of the new version as readers are served it (none when never served); ``attributes``
    ``new version readable`` (``yes`` or ``not within <T>``), ``previous version kept`` (``yes`` when
    ``AWSPREVIOUS`` is the version that was current before, else ``no``) and, in ``rotate_secret`` mode,
    ``rotation`` (``completed`` or ``not completed within <T>``). Waits: ``new version readable``, seconds
    from the promotion to the first read served the new version. Outputs: ``version_id`` and
    ``previous_version_id`` (plain).
    """

    name: ClassVar[str] = "aws.secret_rotate"
    Params: ClassVar[type[ProbeParams]] = SecretRotateParams
    effect: ClassVar[Effect] = Effect.WRITE
    outputs: ClassVar[frozenset[str]] = frozenset({"version_id", "previous_version_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: SecretRotateParams, ctx: ProbeContext) -> ProbeResult:
        refuse_write(ctx, self.name)
        with step_client(ctx, "secretsmanager") as sm:
            try:
                if params.mode == "stages":
                    return _by_stages(sm, params, ctx)
                return _by_rotate_secret(sm, params, ctx)
            except _Refused as refused:
                return ProbeResult(Outcome.DENIED, reason=refused.reason)


def _current_version(sm: SecretsManagerClient, secret_id: str, ctx: ProbeContext) -> str:
    with ctx.timer:
        reply = _call("GetSecretValue", lambda: sm.get_secret_value(SecretId=secret_id, VersionStage=CURRENT))
    return reply["VersionId"]


def _by_stages(sm: SecretsManagerClient, params: SecretRotateParams, ctx: ProbeContext) -> ProbeResult:
    secret_id = params.secret_id
    old = _current_version(sm, secret_id, ctx)
    new = str(uuid.uuid4())  # the ClientRequestToken becomes the version id: known before the put
    entry = ctx.record_undo(
        f"remove {PENDING} from the version put by the rotation of secret {secret_id}",
        PENDING_CLEAR,
        secret_id=secret_id,
        version_id=new,
    )
    value = Secret(secrets.token_urlsafe(_VALUE_BYTES), "aws secret value")
    try:
        with ctx.timer:
            _call(
                "PutSecretValue",
                lambda: sm.put_secret_value(
                    SecretId=secret_id,
                    ClientRequestToken=new,
                    SecretString=value.reveal(),
                    VersionStages=[PENDING],
                ),
            )
    except _Refused:
        ctx.undo_not_needed(entry)
        raise
    except ClientError as exc:
        # A decided answer put nothing; a fault (a 5xx, a lost reply) may have: then its undo stays pending.
        failure = errors.translate(exc)
        if failure is None or failure.outcome is not Outcome.ERROR:
            ctx.undo_not_needed(entry)
        raise
    with ctx.timer:
        _call(
            "UpdateSecretVersionStage",
            lambda: sm.update_secret_version_stage(
                SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=new, RemoveFromVersionId=old
            ),
        )
        _call(
            "UpdateSecretVersionStage",
            lambda: sm.update_secret_version_stage(
                SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=new
            ),
        )
    ctx.undo_not_needed(entry)
    return _served(sm, params, ctx, old, new, {})


def _by_rotate_secret(sm: SecretsManagerClient, params: SecretRotateParams, ctx: ProbeContext) -> ProbeResult:
    secret_id = params.secret_id
    old = _current_version(sm, secret_id, ctx)
    with ctx.timer:
        reply = _call(
            "RotateSecret",
            lambda: sm.rotate_secret(
                SecretId=secret_id, ClientRequestToken=str(uuid.uuid4()), RotateImmediately=True
            ),
        )
    new = reply.get("VersionId") or ""

    def finished() -> str | None:
        stages = _call("DescribeSecret", lambda: sm.describe_secret(SecretId=secret_id)).get(
            "VersionIdsToStages", {}
        )
        current = [version for version, labels in stages.items() if CURRENT in labels]
        pending = [version for version, labels in stages.items() if PENDING in labels]
        return current[0] if current and current[0] != old and not pending else None

    polled = ctx.poll(finished, within=params.readable_within)
    if polled.value is None:
        attributes = {
            ROTATION: f"not completed {_not_within(params)}",
            READABLE: _not_within(params),
            PREVIOUS_KEPT: _previous_kept(sm, secret_id, old),
        }
        return _result(params, new or None, old, None, attributes, {})
    return _served(sm, params, ctx, old, polled.value, {ROTATION: COMPLETED})


def _read(sm: SecretsManagerClient, secret_id: str, stage: str) -> tuple[str, list[str]] | None:
    """The version id and stages readers asking for ``stage`` are served; None when there is no value."""
    try:
        reply = _call("GetSecretValue", lambda: sm.get_secret_value(SecretId=secret_id, VersionStage=stage))
    except ClientError as exc:
        failure = errors.translate(exc)
        if failure is not None and failure.outcome is Outcome.NOT_FOUND:
            return None  # a version without a value (moto's rotation without a Lambda), or no such stage
        raise
    return reply["VersionId"], list(reply.get("VersionStages", []))


def _previous_kept(sm: SecretsManagerClient, secret_id: str, old: str) -> str:
    previous = _read(sm, secret_id, PREVIOUS)
    return YES if previous is not None and previous[0] == old else NO


def _served(
    sm: SecretsManagerClient,
    params: SecretRotateParams,
    ctx: ProbeContext,
    old: str,
    new: str,
    attributes: dict[str, str],
) -> ProbeResult:
    """Wait until readers asking for AWSCURRENT are served ``new``; then check AWSPREVIOUS is ``old``."""

    def current() -> list[str] | None:
        served = _read(sm, params.secret_id, CURRENT)
        return served[1] if served is not None and served[0] == new else None

    polled = ctx.poll(current, within=params.readable_within)
    waits: dict[str, float] = {}
    if polled.value is not None:
        attributes[READABLE] = YES
        waits[READABLE] = polled.waited_seconds
    else:
        attributes[READABLE] = _not_within(params)
    attributes[PREVIOUS_KEPT] = _previous_kept(sm, params.secret_id, old)
    return _result(params, new, old, polled.value, attributes, waits)


def _not_within(params: SecretRotateParams) -> str:
    return f"not within {humanise(params.readable_within)}"


def _result(
    params: SecretRotateParams,
    new: str | None,
    old: str,
    stages: list[str] | None,
    attributes: dict[str, str],
    waits: Mapping[str, float],
) -> ProbeResult:
    outputs: dict[str, OutputValue] = {"version_id": new or "", "previous_version_id": old}
    reason = None
    if attributes.get(READABLE) != YES or attributes.get(ROTATION, COMPLETED) != COMPLETED:
        reason = f"rotated; readers not served the new version within {humanise(params.readable_within)}"
    return ProbeResult(
        grant=Grant(
            stages=frozenset(stages) if stages else None, attributes=MappingProxyType(dict(attributes))
        ),
        outputs=MappingProxyType(outputs),
        reason=reason,
        waits=MappingProxyType(dict(waits)),
    )


class PendingClearParams(ProbeParams):
    """The secret and the version whose ``AWSPENDING`` label is to be removed."""

    secret_id: str = Field(min_length=1)
    version_id: str = Field(min_length=1)


class SecretPendingClear(AwsProbe):
    """Remove ``AWSPENDING`` from ``version_id`` of ``secret_id``: the undo of ``aws.secret_rotate``.

    WRITE. ALLOWED: the label was removed. NOT_FOUND: the version does not carry it (the rotation finished,
    or never put the version) or the secret is gone. DENIED: the caller may not. Grant: none. Outputs: none.
    """

    name: ClassVar[str] = PENDING_CLEAR
    Params: ClassVar[type[ProbeParams]] = PendingClearParams
    effect: ClassVar[Effect] = Effect.WRITE
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: PendingClearParams, ctx: ProbeContext) -> ProbeResult:
        refuse_write(ctx, self.name)
        with step_client(ctx, "secretsmanager") as sm:
            with ctx.timer:
                versions = sm.describe_secret(SecretId=params.secret_id).get("VersionIdsToStages", {})
            if PENDING not in versions.get(params.version_id, []):
                return ProbeResult(Outcome.NOT_FOUND, reason=f"{PENDING} not on version {params.version_id}")
            with ctx.timer:
                sm.update_secret_version_stage(
                    SecretId=params.secret_id, VersionStage=PENDING, RemoveFromVersionId=params.version_id
                )
        return ProbeResult()
