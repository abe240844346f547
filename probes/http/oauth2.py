"""``oauth2.client_credentials``: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) at the environment's
token endpoint."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import quote_plus

import httpx
from pydantic import Field, field_validator

from parityprobe.grant import Grant
from parityprobe.model import OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import HttpProbe, http_settings, send
from .errors import BadReply, HttpSetupError, OAuthError, UnexpectedStatus
from .settings import OAuth2Client

# RFC 6749 appendix A.4: a scope token is printable ASCII without space, '"' and '\'.
_SCOPE_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


class ClientCredentialsParams(ProbeParams):
    """``scopes`` to ask for (none: the client's default); ``client_id`` and ``client_secret`` to act as
    another client than the environment's own (a secret from an earlier step, say)."""

    scopes: list[str] = Field(default_factory=list)
    client_id: str | None = Field(default=None, min_length=1)
    client_secret: Secret | None = None

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: list[str]) -> list[str]:
        for scope in v:
            if not scope or any(c not in _SCOPE_CHARACTERS for c in scope):
                raise ValueError(f"{scope!r} is not an OAuth scope (printable ASCII, no space, quote or \\)")
        return v


class ClientCredentials(HttpProbe):
    """Ask the environment's token endpoint for an access token with the client-credentials grant, the client
    authenticating as the environment says (``client_secret_basic``: HTTP Basic with the form-encoded id and
    secret; ``client_secret_post``: both in the form body).

    ALLOWED when a token is issued. DENIED for the endpoint's refusals: ``invalid_scope`` (a scope the client
    may not have: ``invalid scope``), ``invalid_client`` (``invalid client``), ``unauthorized_client``,
    ``unsupported_grant_type``. The reply's ``error_description`` is never read into the reason: it can echo
    the request. ERROR for a 5xx, a 429, a timeout, or a reply that is not a token response.

    Grant: ``ttl_seconds`` from ``expires_in``; attributes ``scope`` (the granted scopes, sorted, space
    separated; the requested ones when the reply omits it, as RFC 6749 §5.1 allows) and ``token_type``
    (lower-cased). Outputs: ``access_token``, a secret registered with the redactor, for a later
    ``http.request``'s ``token``. Effect READ: an access token is not a stored object, and the grant is not
    revocable in general (RFC 7009 is optional), so it records no undo; it ends with its ``expires_in``.
    """

    name: ClassVar[str] = "oauth2.client_credentials"
    Params: ClassVar[type[ProbeParams]] = ClientCredentialsParams
    outputs: ClassVar[frozenset[str]] = frozenset({"access_token"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset({"access_token"})

    def target(self, params: ClientCredentialsParams) -> str | None:
        """The token endpoint (the probe knows no more before the environment is known)."""
        return "token endpoint"

    def run(self, params: ClientCredentialsParams, ctx: ProbeContext) -> ProbeResult:
        settings = http_settings(ctx)
        client = settings.oauth2
        endpoint = settings.token_endpoint()
        if client is None or endpoint is None:
            raise HttpSetupError(f"environment {ctx.environment.name!r} has no 'http.oauth2' client")
        client_id = params.client_id or _client_id(client)
        secret = params.client_secret or client.client_secret.secret()
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if params.scopes:
            form["scope"] = " ".join(params.scopes)
        headers = {"Accept": "application/json"}
        if client.auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
            auth: httpx.Auth | None = httpx.BasicAuth(quote_plus(client_id), quote_plus(secret.reveal()))
        else:
            auth = None
            form["client_id"] = client_id
            form["client_secret"] = secret.reveal()
        reply = send(ctx, "POST", endpoint, headers=headers, data=form, auth=auth)
        if reply.status_code != 200:
            raise _refusal(reply)
        body = _json_object(reply)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise BadReply("token response has no access_token")
        access_token = Secret(token, "oauth2 access token")
        ctx.redactor.register(access_token)
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or not token_type:
            raise BadReply("token response has no token_type")
        granted = _granted_scopes(body.get("scope"), params.scopes)
        attributes = {"scope": " ".join(sorted(granted)), "token_type": token_type.lower()}
        grant = Grant(
            ttl_seconds=_expires_in(body.get("expires_in")), attributes=MappingProxyType(attributes)
        )
        outputs: dict[str, OutputValue] = {"access_token": access_token}
        return ProbeResult(grant=grant, outputs=MappingProxyType(outputs))


def _client_id(client: OAuth2Client) -> str:
    value = client.client_id
    return value if isinstance(value, str) else value.secret().reveal()


def _json_object(reply: httpx.Response) -> dict[str, Any]:
    try:
        body = reply.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadReply("token response is not json") from None
    if not isinstance(body, dict):
        raise BadReply("token response is not a json object")
    return body


def _refusal(reply: httpx.Response) -> Exception:
    """The exception a non-200 reply of the token endpoint means: its RFC 6749 ``error`` code when it has
    one (a 400 or 401 with a JSON error body), else its status."""
    try:
        body = reply.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    code = body.get("error") if isinstance(body, dict) else None
    if isinstance(code, str) and code:
        return OAuthError(code, reply.status_code)
    return UnexpectedStatus(reply.status_code)


def _granted_scopes(value: Any, requested: list[str]) -> frozenset[str]:
    if value is None:
        return frozenset(requested)
    if not isinstance(value, str):
        raise BadReply("token response scope is not text")
    return frozenset(value.split())


def _expires_in(value: Any) -> int | None:
    if value is None:
        return None
    # Some servers send it as a string; anything but a non-negative whole number is a malformed reply.
    try:
        seconds = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        seconds = -1
    if seconds < 0 or (isinstance(value, float) and not value.is_integer()):
        raise BadReply("token response expires_in is not a number of seconds")
    return seconds
