"""``vault.kv_write``: is this token allowed to write a KV version 2 secret? By default, without writing it.

The dry probe sends a real write to ``<mount>/data/<path>`` carrying ``options.cas`` set to a version the
secret can never reach. Vault and OpenBao check the token's ACL before the KV engine sees the request, so:

- a policy that does not allow the write answers 403 "permission denied" → DENIED (through :mod:`.errors`);
- a policy that allows it lets the engine refuse the check-and-set with 400 ``{"errors": ["check-and-set
  parameter did not match the current version"]}`` → ALLOWED, and nothing changed. OpenBao answers the same
  for a secret that does not exist yet (any ``cas`` above 0 on a missing secret is refused, and no metadata
  is created), so the probe needs no read permission to pick its value.

Any other 400 stays what the plane's table says (an error): only that exact refusal proves authorization.

Caveat: the probe assumes the mount is KV version 2 (reading the mount's version would need more permission
than the probe tests). On a KV version 1 mount, ``options`` means nothing and the request stores the fixed
marker as a secret named ``data/<path>``: the probe then reports that it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import hvac.exceptions as hv
from pydantic import Field

from parityprobe.model import Grant, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import DryByDefault, VaultProbe, acting_token, mapping, required, step_client
from .declared import DeclaresCapabilities
from .errors import error_messages

# KV v2 keeps versions as unsigned 64-bit integers and parses ``cas`` as a signed one (2**64 is refused as
# "error parsing check-and-set parameter"), so the largest int64 is accepted and never reached.
UNREACHABLE_VERSION = 2**63 - 1
CAS_MISMATCH = "check-and-set parameter did not match the current version"
AUTHORIZED_DRY = "authorized; nothing written (check-and-set)"
CAS_IGNORED = "written: check-and-set not enforced"
WRITE_REFUSED = "dry: false writes; this environment's safety.allow_effects does not include write"
MARKER: dict[str, str] = {"parityprobe": "probe"}


class KvWriteParams(ProbeParams):
    """``path`` inside the mount; ``data`` is written only with ``dry: false`` (the default is a marker)."""

    path: str = Field(min_length=1)
    mount: str = "secret"
    token: Secret | None = None
    data: dict[str, str] = Field(default_factory=lambda: dict(MARKER))
    dry: bool = True


class KvWrite(DryByDefault, DeclaresCapabilities, VaultProbe):
    """Write ``<mount>/data/<path>`` (KV v2), acting with the step's token or the environment's own.

    ``dry: true`` (the default) changes nothing: ALLOWED with reason "authorized; nothing written
    (check-and-set)", or DENIED. Should the server store the marker anyway (a KV version 1 mount ignores
    ``cas``), the result says so: ALLOWED, reason "written: check-and-set not enforced".

    ``dry: false`` performs a real write of ``data``: the step's effect is then ``write``
    (:meth:`effect_for`, checked by the plan against every environment's safety), and the probe also
    refuses, before any request, where the environment does not allow ``write``. The class effect stays
    READ so the dry default runs in read-only environments. A real write records no undo: KV versions
    cannot be removed without destroying history.

    Grant: ``version`` (the version written; real writes only; empty when dry).
    Outputs: ``version`` (text; real writes only).
    """

    name: ClassVar[str] = "vault.kv_write"
    Params: ClassVar[type[ProbeParams]] = KvWriteParams
    outputs: ClassVar[frozenset[str]] = frozenset({"version"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def capability_needed(self, params: KvWriteParams) -> tuple[str, str]:
        return f"{params.mount}/data/{params.path}", "create|update"

    def run(self, params: KvWriteParams, ctx: ProbeContext) -> ProbeResult:
        """One write request; the timer covers it only (not an environment login before it)."""
        self.refuse_real_change(params.dry, ctx, WRITE_REFUSED)
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client:
            if not params.dry:
                with ctx.timer:
                    reply = client.secrets.kv.v2.create_or_update_secret(
                        path=params.path, secret=dict(params.data), mount_point=params.mount
                    )
                return _written(reply)
            try:
                with ctx.timer:
                    reply = client.secrets.kv.v2.create_or_update_secret(
                        path=params.path,
                        # A fixed marker, never the step's data: should the server ignore cas, this is
                        # all that lands.
                        secret=dict(MARKER),
                        cas=UNREACHABLE_VERSION,
                        mount_point=params.mount,
                    )
            except hv.InvalidRequest as exc:
                if not _cas_mismatch(exc):
                    raise
                return ProbeResult(reason=AUTHORIZED_DRY)
        # The server accepted a write whose check-and-set could not match: it did not enforce cas (a KV
        # version 1 mount answers 204 and stores the marker under data/<path>). Report what really happened,
        # allowed and written, never a dry result; the version when the reply carries one.
        version = mapping(mapping(reply).get("data")).get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            return ProbeResult(reason=CAS_IGNORED)
        return ProbeResult(grant=Grant(version=version), outputs=_version_output(version), reason=CAS_IGNORED)


def _cas_mismatch(exc: hv.InvalidRequest) -> bool:
    # Exactly the engine's refusal (one message), so that no other 400 is mistaken for an authorization.
    return error_messages(exc) == [CAS_MISMATCH]


def _written(reply: Any) -> ProbeResult:
    version = mapping(required(reply, "data")).get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise hv.UnexpectedError("Vault reply has no data.version")
    return ProbeResult(grant=Grant(version=version), outputs=_version_output(version))


def _version_output(version: int) -> Mapping[str, OutputValue]:
    outputs: dict[str, OutputValue] = {"version": str(version)}
    return MappingProxyType(outputs)
