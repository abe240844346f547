"""``vault.kv_delete`` and ``vault.kv_undelete``: may this token delete a KV version 2 secret? By default,
without deleting it.

The dry probe asks the server (``sys/capabilities-self``, see :mod:`.capabilities`) whether the token has
``delete`` on ``<mount>/data/<path>``, the capability ``DELETE <mount>/data/<path>`` needs. Unlike
``vault.kv_write``, it cannot send the real request and have the engine refuse it harmlessly: a KV v2
delete has no check-and-set, and OpenBao answers 204 to a permitted delete even of a path that holds
nothing. So the dry answer is the ACL's, which is exactly what a real delete's 403 would be.

The real delete (``dry: false``) is a soft delete of the latest version, undone by ``POST
<mount>/undelete/<path> {"versions": [n]}``. To record that undo before acting, the probe first reads
``<mount>/metadata/<path>`` for the current version, so it needs ``read`` there too. Measured on OpenBao 2.7:

- ``DELETE <mount>/data/<path>`` answers 204 whether or not there was anything to delete, and again for a
  version already deleted; so "nothing there" is decided from the metadata read, before any delete;
- ``POST <mount>/undelete/<path>`` answers 204 for a version that is deleted, not deleted, destroyed, beyond
  the current one, or of a path that does not exist: undeleting is idempotent, and reports nothing;
- a token without the capability gets 403 on each of the three paths.

A real delete whose metadata read is refused is not sent: deleting without being able to record the undo
would leave a change the run cannot take back. The probe then asks the capabilities endpoint: a token that
may not delete either is DENIED (the delete would have been refused); one that may delete gets a harness
error saying the undo could not be recorded.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar

import hvac.exceptions as hv
from pydantic import Field

from parityprobe.model import Effect, Grant, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .capabilities import capabilities_self, decision
from .client import DryByDefault, VaultProbe, acting_token, mapping, required, step_client
from .declared import DeclaresCapabilities
from .errors import NOT_FOUND, PERMISSION_DENIED, VaultSetupError

AUTHORIZED_DRY = "authorized per capabilities; nothing deleted"
LATEST_ALREADY_DELETED = "latest version already deleted"
DELETE_REFUSED = "dry: false deletes; this environment's safety.allow_effects does not include write"
CAPABILITIES_REFUSED = (
    "the token may not ask sys/capabilities-self (it lacks the default policy, or is invalid): "
    "a dry delete cannot decide"
)
UNDO_UNRECORDABLE = (
    "not deleted: the token may delete but not read the secret's metadata, so the undo (undelete of the "
    "current version) cannot be recorded"
)
UNDELETE = "vault.kv_undelete"


class KvDeleteParams(ProbeParams):
    """``path`` inside the mount; the latest version is deleted only with ``dry: false``."""

    path: str = Field(min_length=1)
    mount: str = "secret"
    token: Secret | None = None
    dry: bool = True


class KvDelete(DryByDefault, DeclaresCapabilities, VaultProbe):
    """Delete the latest version of ``<mount>/data/<path>`` (KV v2), acting with the step's token or the
    environment's own.

    ``dry: true`` (the default) changes nothing: ALLOWED with reason "authorized per capabilities; nothing
    deleted" when the token has ``delete`` on ``<mount>/data/<path>`` (or is root), DENIED ("permission
    denied") when it has not. Existence is not checked: a missing secret is still ALLOWED if the policy
    allows. A token that may not ask the capabilities endpoint at all is an ERROR (harness), never DENIED:
    the question was refused, not the delete.

    ``dry: false`` deletes for real: the step's effect is then ``write`` (:meth:`effect_for`), and the probe
    refuses, before any request, where the environment does not allow ``write``. It reads the metadata,
    records the undo ``vault.kv_undelete`` of the current version, then sends the delete. ALLOWED when
    deleted; NOT_FOUND when there is no secret ("not found") or its latest version is already deleted or
    destroyed ("latest version already deleted"; nothing sent, no undo); DENIED when refused. Metadata
    refused: see the module docstring. Between the metadata read and the delete another writer may add a
    version; the delete then removes that one and the undo undeletes the one read (a no-op), leaving the
    newer one deleted — a race the KV v2 API gives no way to close.

    The undo runs with the environment's own token, not the step's: the step's token may be revoked by a
    cleanup step before undos run, and a journal resumed after a crash holds no secrets. That token needs
    ``update`` on ``<mount>/undelete/<path>``.

    Grant: ``version`` (the version deleted; real deletes only). Outputs: ``version`` (text; real deletes).
    """

    name: ClassVar[str] = "vault.kv_delete"
    Params: ClassVar[type[ProbeParams]] = KvDeleteParams
    outputs: ClassVar[frozenset[str]] = frozenset({"version"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def capability_needed(self, params: KvDeleteParams) -> tuple[str, str]:
        return f"{params.mount}/data/{params.path}", "delete"

    def run(self, params: KvDeleteParams, ctx: ProbeContext) -> ProbeResult:
        """Dry: one capabilities request, timed. Real: metadata read, then the delete (timed)."""
        self.refuse_real_change(params.dry, ctx, DELETE_REFUSED)
        token = acting_token(ctx, params.token)
        data_path = f"{params.mount}/data/{params.path}"
        with step_client(ctx, token) as client:
            if params.dry:
                with ctx.timer:
                    allowed = _may_delete(client, data_path)
                if allowed:
                    return ProbeResult(reason=AUTHORIZED_DRY)
                return ProbeResult(Outcome.DENIED, reason=PERMISSION_DENIED)
            return _delete(client, params, ctx, data_path)


def _may_delete(client: Any, data_path: str) -> bool:
    try:
        capabilities = capabilities_self(client, data_path)
    except hv.Forbidden:
        raise VaultSetupError(CAPABILITIES_REFUSED) from None
    return decision(capabilities, "delete") is Outcome.ALLOWED


def _delete(client: Any, params: KvDeleteParams, ctx: ProbeContext, data_path: str) -> ProbeResult:
    try:
        reply = client.secrets.kv.v2.read_secret_metadata(path=params.path, mount_point=params.mount)
    except hv.Forbidden:
        if not _may_delete(client, data_path):
            return ProbeResult(Outcome.DENIED, reason=PERMISSION_DENIED)
        raise VaultSetupError(UNDO_UNRECORDABLE) from None
    metadata = mapping(required(reply, "data"))
    version = metadata.get("current_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise hv.UnexpectedError("Vault reply has no data.current_version")
    if version < 1:
        # Metadata written without any version (custom metadata only): there is nothing to delete.
        return ProbeResult(Outcome.NOT_FOUND, reason=NOT_FOUND)
    latest = mapping(mapping(metadata.get("versions")).get(str(version)))
    if latest.get("deletion_time") or latest.get("destroyed"):
        return ProbeResult(Outcome.NOT_FOUND, reason=LATEST_ALREADY_DELETED)
    entry = ctx.record_undo(
        f"undelete version {version} of {data_path}",
        UNDELETE,
        path=params.path,
        mount=params.mount,
        version=version,
    )
    try:
        with ctx.timer:
            client.secrets.kv.v2.delete_latest_version_of_secret(path=params.path, mount_point=params.mount)
    except hv.VaultError:
        # The server answered with a refusal or a failure: it deleted nothing. (A timeout or a lost
        # connection leaves the undo pending: the delete may have happened.)
        ctx.undo_not_needed(entry)
        raise
    outputs: dict[str, OutputValue] = {"version": str(version)}
    return ProbeResult(grant=Grant(version=version), outputs=MappingProxyType(outputs))


class KvUndeleteParams(ProbeParams):
    """The secret and the version to restore; ``token`` defaults to the environment's own."""

    path: str = Field(min_length=1)
    mount: str = "secret"
    version: int = Field(ge=1)
    token: Secret | None = None


class KvUndelete(VaultProbe):
    """Undelete one version of ``<mount>/data/<path>`` (KV v2): ``POST <mount>/undelete/<path>``.

    The undo of a real ``vault.kv_delete``. ALLOWED on the server's 204, which OpenBao also sends when the
    version is not deleted, destroyed (it stays destroyed) or missing: the server reports nothing more, so
    neither does the probe. DENIED when the token lacks ``update`` on ``<mount>/undelete/<path>``. The
    effect is WRITE; it restores rather than creates, so it records no undo.

    Grant: ``version`` (the version asked for). Outputs: none.
    """

    name: ClassVar[str] = UNDELETE
    Params: ClassVar[type[ProbeParams]] = KvUndeleteParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: KvUndeleteParams, ctx: ProbeContext) -> ProbeResult:
        """One undelete request, timed."""
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client, ctx.timer:
            client.secrets.kv.v2.undelete_secret_versions(
                path=params.path, versions=[params.version], mount_point=params.mount
            )
        return ProbeResult(grant=Grant(version=params.version))
