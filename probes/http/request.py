"""``http.request``: one request to the environment's HTTP API, the decision read from its status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from parityprobe.grant import Grant
from parityprobe.model import Effect, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import HttpProbe, http_settings, send
from .errors import BadReply, HttpSetupError, UnexpectedStatus
from .settings import header_name

Method = Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Characters that would turn the path into something else on the wire (a fragment, an encoded `..`, a
# Windows separator) or into header or log injection. A query (``?``) is allowed.
_FORBIDDEN_CHARACTERS = frozenset("#%\\") | {chr(c) for c in range(0x21)} | {"\x7f"}
# Headers the probe sets itself: the token goes in ``token``, the correlation id is always the step's.
_RESERVED_HEADERS = frozenset({"authorization", "host", "content-length", "x-correlation-id"})
# A JSON field whose name says it holds a credential never becomes a grant attribute (attributes are
# reported and stored in plain text).
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "credential", "cookie", "session")


class HttpRequestParams(ProbeParams):
    """``method``; ``path`` (under the environment's ``base_url``, e.g. ``/api/orders``) or ``url``
    (absolute); ``headers``; ``token`` (sent as a bearer token); ``data`` (a JSON body; POST, PUT, PATCH);
    ``json_field`` (a dotted path into a JSON reply whose value becomes a grant attribute)."""

    method: Method = "GET"
    path: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    token: Secret | None = None
    data: dict[str, JsonValue] | None = None
    json_field: str | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith("/"):
            raise ValueError("give the path with a leading slash (it is appended to the base_url)")
        if any(segment in (".", "..") for segment in v.split("?", 1)[0].split("/")):
            raise ValueError("the path may not contain '.' or '..' segments")
        bad = sorted({c for c in v if c in _FORBIDDEN_CHARACTERS})
        if bad:
            raise ValueError(f"the path may not contain {', '.join(repr(c) for c in bad)}")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if v is not None and any(ord(c) <= 0x20 or c == "\x7f" for c in v):
            raise ValueError("the url may not contain spaces or control characters")
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            header_name(name)
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the probe (a bearer token goes in 'token')")
            if any(ord(c) < 0x20 or c == "\x7f" for c in value):
                raise ValueError(f"header {name!r} has a control character in its value")
        return v

    @field_validator("json_field")
    @classmethod
    def _json_field(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = v.split(".")
        if any(not part for part in parts):
            raise ValueError("json_field is a dotted path of names, e.g. 'account.tier'")
        if any(word in v.lower() for word in _SECRET_WORDS):
            raise ValueError(
                "json_field may not name a credential: grant attributes are reported in plain text"
            )
        return v

    @model_validator(mode="after")
    def _target(self) -> HttpRequestParams:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' (under the environment's base_url) or 'url'")
        if self.data is not None and self.method not in _BODY_METHODS:
            raise ValueError(f"data is sent only with POST, PUT or PATCH, not {self.method}")
        return self


class HttpRequest(HttpProbe):
    """Send ``method`` to ``path`` under the environment's ``base_url`` (or to an absolute ``url``), with the
    step's correlation id in the environment's correlation header and ``token``, if given, as a bearer token.

    ALLOWED for a 2xx. 401 is DENIED (``unauthorized``: no valid credentials), 403 DENIED (``forbidden``),
    404 NOT_FOUND. 429 is ERROR throttled; a 5xx, an unfollowed 3xx or any other status ERROR target_error.
    Faults (timeout, unreachable, TLS handshake) through the plane's one exception table.

    Grant: with ``json_field``, an attribute named for it holding that field of the JSON reply (text as is,
    other values as JSON), so environments answering differently show it; a field absent from the reply is
    no attribute. Outputs: ``status`` (the HTTP status code, as text). The body is never an output.

    The class effect is READ, and only GET, HEAD and OPTIONS run under it. The other methods change state:
    such a step's effect is ``write`` (:meth:`effect_for`), and the probe also refuses them, before anything
    is sent, where the environment does not allow ``write``. It records no undo: the probe cannot know what
    a request creates, so the scenario's cleanup steps must remove it.
    """

    name: ClassVar[str] = "http.request"
    Params: ClassVar[type[ProbeParams]] = HttpRequestParams
    outputs: ClassVar[frozenset[str]] = frozenset({"status"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def effect_for(cls, with_: Mapping[str, Any]) -> Effect:
        """``write`` unless the step's method is plainly GET, HEAD or OPTIONS (or left at GET)."""
        method = with_.get("method", "GET")
        if isinstance(method, str) and method.upper() in _READ_METHODS:
            return Effect.READ
        return Effect.WRITE

    def target(self, params: HttpRequestParams) -> str | None:
        """The path (or absolute url) the request is aimed at."""
        return params.path if params.path is not None else params.url

    def run(self, params: HttpRequestParams, ctx: ProbeContext) -> ProbeResult:
        settings = http_settings(ctx)
        if params.method not in _READ_METHODS and not ctx.environment.safety.allows(Effect.WRITE):
            raise HttpSetupError(
                f"http.request {params.method} changes state: give the step 'effect: write' and allow write "
                f"in environment {ctx.environment.name!r} (safety.allow_effects)"
            )
        if any(name.lower() == settings.correlation_header.lower() for name in params.headers):
            raise HttpSetupError(f"header {settings.correlation_header!r} carries the step's correlation id")
        url = settings.base_url + params.path if params.path is not None else params.url
        assert url is not None  # the params' validator requires one of them
        kwargs: dict[str, Any] = {} if params.data is None else {"json": params.data}
        reply = send(ctx, params.method, url, token=params.token, headers=params.headers, **kwargs)
        if not 200 <= reply.status_code < 300:
            raise UnexpectedStatus(reply.status_code)
        grant = Grant()
        if params.json_field is not None:
            value = _field(reply.json(), params.json_field)
            if value is not None:
                grant = Grant(attributes=MappingProxyType({params.json_field: value}))
        outputs: dict[str, OutputValue] = {"status": str(reply.status_code)}
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


def _field(body: Any, path: str) -> str | None:
    """The value at the dotted ``path`` of a JSON body, as text (a string as is, anything else as JSON);
    None when the body has no such field. A body that is not JSON at all raises (the target's fault)."""
    value = body
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | int | float | bool):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    raise BadReply("unexpected json value")
