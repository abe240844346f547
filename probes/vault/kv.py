"""``vault.kv_read``: read a secret from a KV version 2 mount."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any, ClassVar

import hvac.exceptions as hv
from pydantic import Field

from parityprobe.model import Grant, Outcome, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import VaultProbe, acting_token, mapping, required, step_client
from .declared import DeclaresCapabilities

FIELD_NOT_FOUND = "field not found"
VERSION_DELETED = "version deleted"
VERSION_DESTROYED = "version destroyed"


class KvReadParams(ProbeParams):
    """``path`` inside the mount (``payments/db``); ``version`` defaults to the latest."""

    path: str = Field(min_length=1)
    mount: str = "secret"
    token: Secret | None = None
    version: int | None = Field(default=None, ge=1)
    field: str | None = None


class KvRead(DeclaresCapabilities, VaultProbe):
    """Read ``<mount>/data/<path>`` (KV v2), acting with the step's token or the environment's own.

    A missing secret and a deleted or destroyed version are NOT_FOUND; a secret without the requested
    ``field`` is NOT_FOUND too ("field not found"): the read was allowed, and what the step asked for is not
    there. That is a decision about content, not an error, so it still compares between environments.

    Grant: ``version`` (the version read). Secret data appears only in the ``value`` output, as a Secret.
    Outputs: ``version`` (text, always), ``value`` (secret; only when ``field`` is given and present).
    """

    name: ClassVar[str] = "vault.kv_read"
    Params: ClassVar[type[ProbeParams]] = KvReadParams
    outputs: ClassVar[frozenset[str]] = frozenset({"version", "value"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset({"value"})

    def capability_needed(self, params: KvReadParams) -> tuple[str, str]:
        return f"{params.mount}/data/{params.path}", "read"

    def run(self, params: KvReadParams, ctx: ProbeContext) -> ProbeResult:
        """One read request; the timer covers it only (not an environment login before it)."""
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client:
            try:
                with ctx.timer:
                    reply = client.secrets.kv.v2.read_secret_version(
                        path=params.path,
                        version=params.version,
                        mount_point=params.mount,
                        raise_on_deleted_version=True,
                    )
            except hv.InvalidPath as exc:
                gone = _gone_version(exc)
                if gone is None:
                    raise
                return gone
        body = required(reply, "data")
        version = _version(body.get("metadata"))
        outputs: dict[str, OutputValue] = {"version": version}
        grant = Grant(version=_number(version))
        if params.field is None:
            return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))
        data = mapping(body.get("data"))
        if params.field not in data:
            return ProbeResult(Outcome.NOT_FOUND, grant, MappingProxyType(outputs), FIELD_NOT_FOUND)
        value = Secret(_text(data[params.field]), "vault secret value")
        ctx.redactor.register(value)
        outputs["value"] = value
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


def _gone_version(exc: hv.InvalidPath) -> ProbeResult | None:
    # A deleted or destroyed version is a 404 whose body still carries the version's metadata (and null data);
    # a key that never existed is a 404 with no body. Both are NOT_FOUND; the first says which version.
    metadata = mapping(mapping(mapping(getattr(exc, "json", None)).get("data")).get("metadata"))
    if metadata.get("destroyed") is True:
        reason = VERSION_DESTROYED
    elif metadata.get("deletion_time"):
        reason = VERSION_DELETED
    else:
        return None
    version = _version(metadata)
    outputs: dict[str, OutputValue] = {"version": version}
    return ProbeResult(Outcome.NOT_FOUND, Grant(version=_number(version)), MappingProxyType(outputs), reason)


def _version(metadata: Any) -> str:
    version = mapping(metadata).get("version")
    return str(version) if isinstance(version, int) else ""


def _number(version: str) -> int | None:
    return int(version) if version else None


def _text(value: Any) -> str:
    # KV values are JSON; a non-string one (number, object) is passed on in its JSON form.
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
