"""``vault.request``: one request to any Vault path, for decisions no dedicated probe covers."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import hvac.exceptions as hv
from pydantic import Field, JsonValue, field_validator, model_validator

from parityprobe.model import Effect, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .capabilities import needed_capability
from .client import VaultProbe, acting_token, step_client
from .declared import DeclaresCapabilities
from .errors import VaultSetupError

Method = Literal["GET", "LIST", "POST", "PUT", "DELETE"]
_READ_METHODS = frozenset({"GET", "LIST"})
_BODY_METHODS = frozenset({"POST", "PUT"})
# Characters that would turn the path into something else on the wire (a query, a fragment, an encoded
# `..`, a Windows separator) or into header or log injection.
_FORBIDDEN_CHARACTERS = frozenset("?#%\\") | {chr(c) for c in range(0x21)} | {"\x7f"}


class VaultRequestParams(ProbeParams):
    """``method``, ``path`` (under ``/v1/``, e.g. ``sys/mounts``), ``data`` (the JSON body; POST, PUT)."""

    method: Method
    path: str = Field(min_length=1)
    data: dict[str, JsonValue] | None = None
    token: Secret | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if v.startswith("/"):
            raise ValueError("give the path without a leading slash (it is relative to /v1/)")
        if any(segment in (".", "..") for segment in v.split("/")):
            raise ValueError("the path may not contain '.' or '..' segments")
        bad = sorted({c for c in v if c in _FORBIDDEN_CHARACTERS})
        if bad:
            raise ValueError(f"the path may not contain {', '.join(repr(c) for c in bad)}")
        return v

    @model_validator(mode="after")
    def _body(self) -> VaultRequestParams:
        if self.data is not None and self.method not in _BODY_METHODS:
            raise ValueError(f"data is sent only with POST or PUT, not {self.method}")
        return self


class VaultRequest(DeclaresCapabilities, VaultProbe):
    """Send ``method`` to ``/v1/<path>``, acting with the step's token or the environment's own.

    The class effect is READ, and only GET and LIST run under it. POST, PUT and DELETE change state: such a
    step's effect is ``write`` (:meth:`effect_for`, which the plan checks against every environment's
    safety), and the probe itself also refuses them, before anything is sent, where the environment does
    not allow ``write``. Such a request records no undo: the probe cannot know what a path creates, so the
    scenario's cleanup steps must remove it.

    Allowed for any 2xx; 403 is DENIED, 404 NOT_FOUND, the rest through the plane's one exception table.

    Grant: none. Outputs: ``status`` (the HTTP status code, as text). The response body is never an output:
    it can hold secrets (tokens, secret values) that a generic probe cannot tell apart.
    """

    name: ClassVar[str] = "vault.request"
    Params: ClassVar[type[ProbeParams]] = VaultRequestParams
    outputs: ClassVar[frozenset[str]] = frozenset({"status"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def effect_for(cls, with_: Mapping[str, Any]) -> Effect:
        """``write`` unless the step's method is plainly GET or LIST (a templated one may be anything)."""
        method = with_.get("method")
        if isinstance(method, str) and method.upper() in _READ_METHODS:
            return Effect.READ
        return Effect.WRITE

    def capability_needed(self, params: VaultRequestParams) -> tuple[str, str]:
        return params.path, needed_capability(params.method)

    def run(self, params: VaultRequestParams, ctx: ProbeContext) -> ProbeResult:
        """Check the environment's safety first (an AppRole login is a request too), then one timed call."""
        if params.method not in _READ_METHODS and not ctx.environment.safety.allows(Effect.WRITE):
            raise VaultSetupError(
                f"vault.request {params.method} changes state: give the step 'effect: write' and allow write "
                f"in environment {ctx.environment.name!r} (safety.allow_effects)"
            )
        token = acting_token(ctx, params.token)
        kwargs: dict[str, Any] = {} if params.data is None else {"json": params.data}
        with step_client(ctx, token) as client, ctx.timer:
            reply = client.adapter.request(params.method, f"/v1/{params.path}", **kwargs)
        # hvac's JSON adapter returns the parsed body only for a 200 with JSON; otherwise the Response.
        status = 200 if isinstance(reply, dict) else getattr(reply, "status_code", None)
        if not isinstance(status, int) or not 200 <= status < 300:
            # requests follows redirects; a 1xx or an unfollowed 3xx is neither a decision nor success.
            raise hv.UnexpectedError(f"Vault answered {status}")
        outputs: dict[str, OutputValue] = {"status": str(status)}
        return ProbeResult(outputs=MappingProxyType(outputs))
