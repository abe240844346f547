"""``aws.access_key_rotate``: an IAM access-key rotation on a canary user, timed as the workload lives it.

A workload that rotates its access key creates a new key, switches to it once it works, then deactivates
and deletes the old one. IAM is eventually consistent: a new key may be refused for a while, and an old one
accepted after its deletion. Between environments, both windows matter: a new key that takes seconds to
work fails deploys in one of them, and an old key that keeps working after its deletion is a revocation
that does not revoke.

The probe performs the rotation for real on a dedicated canary user (never a workload's own): it creates
an "old" key (standing in for the workload's current one) and a "new" one, waits until the new key is
accepted (``sts:GetCallerIdentity`` signed with it, which every valid key may call), deactivates and
deletes the old key, waits until the old key is refused, then deletes the new key. Each wait polls within
its budget and the step's deadline; set the step's ``timeout`` above ``new_key_within`` plus
``old_key_within``, or the deadline ends the second wait first. Both keys' undos are recorded before they
are created and stay recorded: cleanup deletes again whatever a failed deletion left (NOT_FOUND there means
already gone). Secret access keys exist only in memory, as :class:`~parityprobe.secret.Secret` values
handed to the signing client; none is ever an output, a reason or a log line.

Measured against moto 5.2.5 in server mode with IAM enforcement: a new key works at once, and a deleted key
is refused at once (``InvalidClientTokenId``), so both waits take one look there. moto does NOT reject an
Inactive key (AWS does): the probe deletes the old key before waiting, so the wait measures deletion on
both, and deactivation alone is never what the result rests on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from botocore.exceptions import ClientError
from pydantic import Field

from parityprobe.config.durations import Duration, humanise
from parityprobe.model import Effect, Grant, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from . import errors
from .client import AwsProbe, key_sts_client
from .iam import DELETE_ACCESS_KEY, USER_NAME, iam_client, refuse_write

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ROTATED = "changed and undone: two access keys created, rotated and deleted"
NEW_KEY_DELETE_FAILED = (
    "changed: two access keys created and rotated; deleting the new one failed ({reason}); left to cleanup"
)
NEW_KEY_WORKS = "new key works"
OLD_KEY_REFUSED = "old key refused"


class AccessKeyRotateParams(ProbeParams):
    """The canary user to rotate keys of, and how long each key may take to change state."""

    user_name: str = Field(pattern=USER_NAME)
    new_key_within: Duration = 30
    old_key_within: Duration = 30


@dataclass(frozen=True)
class _Key:
    id: str
    secret: Secret


class AccessKeyRotate(AwsProbe):
    """Rotate the access keys of ``user_name`` and time when each change takes effect.

    WRITE (two keys are created and deleted): refused before any request where the environment does not
    allow ``write``. Each key's undo (``aws.iam_delete_access_key``) is recorded before its creation and
    amended with its id; a refused creation resolves it.

    ALLOWED: the rotation ran; its attributes say how it went. DENIED: the caller may not create, deactivate
    or delete the user's keys (the first refusal; keys already created are deleted at once where the caller
    may, and else left to cleanup). NOT_FOUND: no such user. A fault (timeout, throttling, 5xx) is an ERROR,
    the created keys deleted where possible and left to cleanup otherwise.

    Grant: ``attributes`` ``new key`` = ``works`` or ``not working after <new_key_within>``, ``old key`` =
    ``refused`` or ``still accepted after <old_key_within>`` (so an environment whose old keys keep working
    differs from one where they stop). Waits: ``new key works`` and ``old key refused``, the seconds each
    took, for those that held (compared across environments like ``expect.within``). Outputs:
    ``old_access_key_id`` and ``new_access_key_id`` (plain: ids of keys that no longer exist).
    """

    name: ClassVar[str] = "aws.access_key_rotate"
    Params: ClassVar[type[ProbeParams]] = AccessKeyRotateParams
    effect: ClassVar[Effect] = Effect.WRITE
    outputs: ClassVar[frozenset[str]] = frozenset({"old_access_key_id", "new_access_key_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def run(self, params: AccessKeyRotateParams, ctx: ProbeContext) -> ProbeResult:
        refuse_write(ctx, self.name)
        user = params.user_name
        waits: dict[str, float] = {}
        with iam_client(ctx) as iam, self._deleted_on_failure(iam, user) as created:
            old = self._create(iam, user, ctx, "old")
            created.append(old)
            new = self._create(iam, user, ctx, "new")
            created.append(new)
            works = ctx.poll(lambda: _accepted(ctx, new), within=params.new_key_within)
            if works.value is not None:
                waits[NEW_KEY_WORKS] = round(works.waited_seconds, 3)
            with ctx.timer:
                iam.update_access_key(UserName=user, AccessKeyId=old.id, Status="Inactive")
                iam.delete_access_key(UserName=user, AccessKeyId=old.id)
            created.remove(old)
            refused = ctx.poll(lambda: _refused(ctx, old), within=params.old_key_within)
            if refused.value is not None:
                waits[OLD_KEY_REFUSED] = round(refused.waited_seconds, 3)
            created.remove(new)  # from here on, a failed deletion is said in the reason, not raised
        reason = ROTATED
        try:
            with iam_client(ctx) as iam, ctx.timer:
                iam.delete_access_key(UserName=user, AccessKeyId=new.id)
        except Exception as exc:
            failure = errors.translate(exc)
            if failure is None:
                raise
            reason = NEW_KEY_DELETE_FAILED.format(reason=failure.reason)
        attributes = {
            "new key": "works"
            if works.value is not None
            else f"not working after {humanise(params.new_key_within)}",
            "old key": "refused"
            if refused.value is not None
            else f"still accepted after {humanise(params.old_key_within)}",
        }
        outputs: dict[str, OutputValue] = {"old_access_key_id": old.id, "new_access_key_id": new.id}
        return ProbeResult(
            grant=Grant(attributes=MappingProxyType(attributes)),
            outputs=MappingProxyType(outputs),
            reason=reason,
            waits=MappingProxyType(waits),
        )

    @staticmethod
    def _create(iam: IAMClient, user: str, ctx: ProbeContext, which: str) -> _Key:
        """Create a key with its undo recorded first; a decided refusal resolves the undo and propagates."""
        entry = ctx.record_undo(
            f"delete the {which} access key created for IAM user {user} (rotation)",
            DELETE_ACCESS_KEY,
            user_name=user,
        )
        try:
            with ctx.timer:
                reply = iam.create_access_key(UserName=user)
        except ClientError:
            # A decided refusal created nothing. Any other failure (a timeout) may have created a key whose
            # id never arrived: the undo stays pending, and reports that it cannot know it.
            ctx.undo_not_needed(entry)
            raise
        key = reply["AccessKey"]
        ctx.amend_undo(entry, access_key_id=key["AccessKeyId"])
        secret = Secret(key["SecretAccessKey"], "aws secret access key")
        ctx.redactor.register(secret)
        return _Key(key["AccessKeyId"], secret)

    @staticmethod
    @contextmanager
    def _deleted_on_failure(iam: IAMClient, user: str) -> Iterator[list[_Key]]:
        """The keys still to delete should the block fail: deleted at once where possible (their undos stay
        recorded either way, so cleanup retries what fails here), then the failure propagates."""
        created: list[_Key] = []
        try:
            yield created
        except BaseException:
            for key in created:
                # Best effort: the recorded undo retries in cleanup whatever fails here.
                with suppress(Exception):
                    iam.delete_access_key(UserName=user, AccessKeyId=key.id)
            raise


def _accepted(ctx: ProbeContext, key: _Key) -> bool | None:
    """True when AWS accepts ``key``; None while it refuses it as invalid; any other failure raises."""
    return True if _works(ctx, key) else None


def _refused(ctx: ProbeContext, key: _Key) -> bool | None:
    """True when AWS refuses ``key`` as invalid; None while it accepts it; any other failure raises."""
    return None if _works(ctx, key) else True


def _works(ctx: ProbeContext, key: _Key) -> bool:
    """Whether ``sts:GetCallerIdentity`` signed with ``key`` succeeds (every valid key may call it).

    Only a refusal of the credentials themselves (:data:`.errors.INVALID_CREDENTIALS`) says the key does
    not work; a fault (throttling, timeout, 5xx) says nothing about the key and ends the probe as an ERROR.
    """
    try:
        with key_sts_client(ctx, key.id, key.secret) as sts:
            sts.get_caller_identity()
    except ClientError as exc:
        failure = errors.translate(exc)
        if (
            failure is not None
            and failure.outcome is Outcome.DENIED
            and failure.reason == errors.INVALID_CREDENTIALS
        ):
            return False
        raise
    return True
