"""IAM probes: the access-key escalation check on a named user, and its undo.

Creating an access key for another user is the classic IAM privilege escalation: whoever may call
``iam:CreateAccessKey`` on a user can act as that user. :class:`IamCreateAccessKey` asks the question for
real (IAM has no dry run for it) and leaves nothing behind: the undo is recorded before the request, the key
is deleted at once, and the undo deletes it again in cleanup (then NOT_FOUND: already gone). Its secret is
never kept.

Measured against moto in server mode with IAM enforcement: authorization is evaluated before the user's
existence (an unauthorized caller gets AccessDenied for a user that does not exist, an authorized one
NoSuchEntity), and a user's third key is refused with ``LimitExceeded`` (409), as on AWS.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, cast

from botocore.exceptions import ClientError
from pydantic import Field

from parityprobe.model import Effect, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from . import errors
from .client import AwsProbe, step_client
from .declared import DeclaresSimulated
from .simulator import Question, iam_entity_arn

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

DELETE_ACCESS_KEY = "aws.iam_delete_access_key"
CREATED_AND_DELETED = "changed and undone: access key created, then deleted"
DELETE_FAILED = "changed: access key created; deleting it failed ({reason}); left to cleanup"
KEY_ID_UNKNOWN = (
    "the access key id is unknown (the create request's reply never arrived): check the user's keys by hand"
)
# IAM: user names are 1-64 characters of [\w+=,.@-]; access key ids 16-128 word characters.
USER_NAME = r"^[\w+=,.@-]{1,64}$"
ACCESS_KEY_ID = r"^\w{16,128}$"


def iam_client(ctx: ProbeContext) -> AbstractContextManager[IAMClient]:
    """The environment's IAM client, acting for this step (see :func:`.client.step_client`)."""
    # step_client builds a client for any botocore service name; its overloads type the usual three.
    return cast("AbstractContextManager[IAMClient]", step_client(ctx, cast(Any, "iam")))


def refuse_write(ctx: ProbeContext, what: str) -> None:
    """AwsSetupError, before any request, where the environment does not allow ``write``."""
    if not ctx.environment.safety.allows(Effect.WRITE):
        raise errors.AwsSetupError(
            f"{what} changes the target: allow write in environment {ctx.environment.name!r} "
            "(safety.allow_effects)"
        )


class CreateAccessKeyParams(ProbeParams):
    """The user to create an access key for."""

    user_name: str = Field(pattern=USER_NAME)


class IamCreateAccessKey(DeclaresSimulated, AwsProbe):
    """``iam:CreateAccessKey`` for ``user_name``: may this identity mint credentials for that user?

    WRITE (a key really is created): refused before any request where the environment does not allow
    ``write``. The undo (``aws.iam_delete_access_key``) is recorded before the request and amended with the
    key id after it; a refusal resolves it.

    ALLOWED: the key was created; it is then deleted at once, and the reason says so ("changed and undone").
    Should that deletion fail, the reason says the key is left to cleanup (the undo, still pending, retries).
    ALLOWED also when IAM refuses only after authorizing (the user already has two keys, ``LimitExceeded``;
    nothing created, see :mod:`.errors`). DENIED: the caller may not (AccessDenied). NOT_FOUND: no such user
    (IAM authorizes first, so the caller may create keys for a user of that name).
    Grant: none. Outputs: ``access_key_id`` (plain: the id of a key that no longer exists; the secret access
    key is never kept).
    ``crosscheck: simulator`` asks for ``iam:CreateAccessKey`` on the user's ARN (by name: no path).
    """

    name: ClassVar[str] = "aws.iam_create_access_key"
    Params: ClassVar[type[ProbeParams]] = CreateAccessKeyParams
    effect: ClassVar[Effect] = Effect.WRITE
    outputs: ClassVar[frozenset[str]] = frozenset({"access_key_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def question(self, params: CreateAccessKeyParams) -> Question:
        return Question("iam:CreateAccessKey", iam_entity_arn("user", params.user_name))

    def run(self, params: CreateAccessKeyParams, ctx: ProbeContext) -> ProbeResult:
        refuse_write(ctx, self.name)
        entry = ctx.record_undo(
            f"delete the access key created for IAM user {params.user_name}",
            DELETE_ACCESS_KEY,
            user_name=params.user_name,
        )
        with iam_client(ctx) as iam:
            try:
                with ctx.timer:
                    reply = iam.create_access_key(UserName=params.user_name)
            except ClientError:
                # A decided refusal created nothing. Any other failure (a timeout) may have created a key
                # whose id never arrived: the undo stays pending, and reports that it cannot know it.
                ctx.undo_not_needed(entry)
                raise
            key_id = reply["AccessKey"]["AccessKeyId"]
            ctx.amend_undo(entry, access_key_id=key_id)
            reason = CREATED_AND_DELETED
            try:
                iam.delete_access_key(UserName=params.user_name, AccessKeyId=key_id)
            except Exception as exc:
                failure = errors.translate(exc)
                if failure is None:
                    raise
                reason = DELETE_FAILED.format(reason=failure.reason)
        outputs: dict[str, OutputValue] = {"access_key_id": key_id}
        return ProbeResult(outputs=MappingProxyType(outputs), reason=reason)


class DeleteAccessKeyParams(ProbeParams):
    """The user and the id of the key to delete (None: a create whose reply never arrived)."""

    user_name: str = Field(pattern=USER_NAME)
    access_key_id: str | None = Field(default=None, pattern=ACCESS_KEY_ID)


class IamDeleteAccessKey(AwsProbe):
    """``iam:DeleteAccessKey`` of a key of ``user_name``: the undo of ``aws.iam_create_access_key``.

    WRITE. ALLOWED: deleted. NOT_FOUND: the key (or the user) is already gone. DENIED: the caller may not.
    Without ``access_key_id`` (the create's reply never arrived) the probe cannot tell the key it created
    from the user's own, so it deletes nothing: an ERROR (harness) naming the user, for a person to check.
    Grant: none. Outputs: none.
    """

    name: ClassVar[str] = DELETE_ACCESS_KEY
    Params: ClassVar[type[ProbeParams]] = DeleteAccessKeyParams
    effect: ClassVar[Effect] = Effect.WRITE
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: DeleteAccessKeyParams, ctx: ProbeContext) -> ProbeResult:
        if params.access_key_id is None:
            raise errors.AwsSetupError(f"IAM user {params.user_name}: {KEY_ID_UNKNOWN}")
        refuse_write(ctx, self.name)
        with iam_client(ctx) as iam, ctx.timer:
            iam.delete_access_key(UserName=params.user_name, AccessKeyId=params.access_key_id)
        return ProbeResult()
