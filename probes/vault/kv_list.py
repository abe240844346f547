"""``vault.kv_list``: list the keys under a path of a KV version 2 mount."""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar

import hvac.exceptions as hv

from parityprobe.model import OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import VaultProbe, acting_token, required, step_client
from .declared import DeclaresCapabilities


class KvListParams(ProbeParams):
    """``path`` inside the mount (``payments``), or ``""`` for the mount's root."""

    path: str = ""
    mount: str = "secret"
    token: Secret | None = None


class KvList(DeclaresCapabilities, VaultProbe):
    """LIST ``<mount>/metadata/<path>`` (KV v2), acting with the step's token or the environment's own.

    DENIED on 403. A path with no keys under it, existing or not, is NOT_FOUND: Vault and OpenBao answer an
    empty list with 404 ``{"errors": []}``, so the two cannot be told apart.

    Grant: none. Key names are not reported anywhere (they can be sensitive: ``customer-42/api-key``).
    Outputs: ``count`` (text, the number of keys, a folder counting once).
    """

    name: ClassVar[str] = "vault.kv_list"
    Params: ClassVar[type[ProbeParams]] = KvListParams
    outputs: ClassVar[frozenset[str]] = frozenset({"count"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def capability_needed(self, params: KvListParams) -> tuple[str, str]:
        # Vault checks a LIST on the path with a trailing slash (``secret/metadata/payments/``).
        inside = params.path.strip("/")
        return f"{params.mount}/metadata/{inside}/" if inside else f"{params.mount}/metadata/", "list"

    def run(self, params: KvListParams, ctx: ProbeContext) -> ProbeResult:
        """One LIST request; the timer covers it only (not an environment login before it)."""
        token = acting_token(ctx, params.token)
        with step_client(ctx, token) as client, ctx.timer:
            reply = client.secrets.kv.v2.list_secrets(path=params.path, mount_point=params.mount)
        keys = required(reply, "data", "keys")
        if not isinstance(keys, list):
            raise hv.UnexpectedError("Vault reply's data.keys is not a list")
        outputs: dict[str, OutputValue] = {"count": str(len(keys))}
        return ProbeResult(outputs=MappingProxyType(outputs))
