"""The one place where httpx's exceptions, and the replies the HTTP plane reads as refusals, become outcomes.

Reasons are short, fixed phrases: an error body (an OAuth ``error_description``, an API's message) can echo
what it was sent, and two environments must produce the same reason for the same decision however their
servers word it. Order matters: subclasses are matched before their bases (``ConnectTimeout`` is a
timeout, not a connection error). A TLS failure reaches us as a ``ConnectError`` whose cause is an
``ssl.SSLError``: :func:`translate` looks down the cause chain for it before walking the table.
"""

from __future__ import annotations

import json
import ssl

import httpx

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
NOT_FOUND = "not found"
TLS_FAILED = "tls handshake failed"
INVALID_SCOPE = "invalid scope"
INVALID_CLIENT = "invalid client"
UNAUTHORIZED_CLIENT = "unauthorized client"
UNSUPPORTED_GRANT_TYPE = "unsupported grant type"


class HttpSetupError(ParityProbeError):
    """The environment cannot run an HTTP probe as configured (no ``http`` section, no OAuth 2.0 client, a
    client certificate that cannot be loaded). Its message is written by us, holds no secret, and becomes the
    harness error's reason."""


class UnexpectedStatus(Exception):
    """The target answered with a status that is not success; :func:`status_failure` says what it means."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP status {status}")
        self.status = status


class OAuthError(Exception):
    """A token endpoint's error reply (RFC 6749 §5.2): its ``error`` code and HTTP status, never its
    ``error_description`` (free text that may echo the request)."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(f"OAuth error {code!r} (HTTP {status})")
        self.code = code
        self.status = status


class BadReply(Exception):
    """A reply of the wrong shape (not JSON, a token response without ``access_token``): the target's fault.
    ``reason`` is a fixed phrase of ours."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# (exception class, failure), most specific first. One table, so the unit test can walk it; the
# Kubernetes plane, an HTTP API too, reads its transport failures from it.
TRANSPORT: tuple[tuple[type[BaseException], Failure], ...] = (
    # Timeouts first: ConnectTimeout is a TimeoutException, and the server never answered in time.
    (httpx.TimeoutException, Failure.error(ErrorKind.TIMEOUT, "timed out")),
    (ssl.SSLError, Failure.error(ErrorKind.UNREACHABLE, TLS_FAILED)),
    (httpx.ProxyError, Failure.error(ErrorKind.UNREACHABLE, "proxy unreachable")),
    (httpx.ConnectError, Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    # The connection broke after it was made: the target (or something on the way) dropped it.
    (httpx.ReadError, Failure.error(ErrorKind.TARGET_ERROR, "connection lost")),
    (httpx.WriteError, Failure.error(ErrorKind.TARGET_ERROR, "connection lost")),
    (httpx.CloseError, Failure.error(ErrorKind.TARGET_ERROR, "connection lost")),
    (httpx.NetworkError, Failure.error(ErrorKind.UNREACHABLE, "network error")),
    (httpx.RemoteProtocolError, Failure.error(ErrorKind.TARGET_ERROR, "malformed http response")),
    # We could not even build a valid request from the configuration: the target saw nothing.
    (httpx.LocalProtocolError, Failure.error(ErrorKind.HARNESS_ERROR, "invalid request")),
    (httpx.UnsupportedProtocol, Failure.error(ErrorKind.HARNESS_ERROR, "unsupported url scheme")),
    (httpx.ProtocolError, Failure.error(ErrorKind.TARGET_ERROR, "http protocol error")),
    (httpx.TransportError, Failure.error(ErrorKind.UNREACHABLE, "transport error")),
    (httpx.DecodingError, Failure.error(ErrorKind.TARGET_ERROR, "response not decodable")),
    (httpx.TooManyRedirects, Failure.error(ErrorKind.TARGET_ERROR, "too many redirects")),
    (httpx.RequestError, Failure.error(ErrorKind.TARGET_ERROR, "http error")),
    (httpx.HTTPStatusError, Failure.error(ErrorKind.TARGET_ERROR, "unexpected status")),
    (httpx.HTTPError, Failure.error(ErrorKind.TARGET_ERROR, "http error")),
    (httpx.InvalidURL, Failure.error(ErrorKind.HARNESS_ERROR, "invalid url")),
    (httpx.CookieConflict, Failure.error(ErrorKind.HARNESS_ERROR, "cookie conflict")),
    (httpx.StreamError, Failure.error(ErrorKind.HARNESS_ERROR, "response stream misused")),
    # A reply body that is not JSON where JSON was promised.
    (json.JSONDecodeError, Failure.error(ErrorKind.TARGET_ERROR, "response is not json")),
)

# RFC 6749 §5.2 error codes of a token endpoint: the refusals are decisions, the rest why there is none.
_OAUTH_ERRORS: dict[str, Failure] = {
    "invalid_scope": Failure(Outcome.DENIED, INVALID_SCOPE),
    "invalid_client": Failure(Outcome.DENIED, INVALID_CLIENT),
    "unauthorized_client": Failure(Outcome.DENIED, UNAUTHORIZED_CLIENT),
    "unsupported_grant_type": Failure(Outcome.DENIED, UNSUPPORTED_GRANT_TYPE),
    "invalid_grant": Failure(Outcome.DENIED, "invalid grant"),
    "access_denied": Failure(Outcome.DENIED, "access denied"),
    "invalid_request": Failure.error(ErrorKind.TARGET_ERROR, "invalid request"),
    "server_error": Failure.error(ErrorKind.TARGET_ERROR, "server error"),
    "temporarily_unavailable": Failure.error(ErrorKind.TARGET_ERROR, "temporarily unavailable"),
}


def status_failure(status: int) -> Failure:
    """What a non-2xx status means: 401/403 DENIED, 404 NOT_FOUND, 429 throttled, anything else an error
    (an unfollowed redirect, another 4xx, a 5xx)."""
    if status == 401:
        return Failure(Outcome.DENIED, UNAUTHORIZED)
    if status == 403:
        return Failure(Outcome.DENIED, FORBIDDEN)
    if status == 404:
        return Failure(Outcome.NOT_FOUND, NOT_FOUND)
    if status == 429:
        return Failure.error(ErrorKind.THROTTLED, "rate limited")
    if 500 <= status < 600:
        return Failure.error(ErrorKind.TARGET_ERROR, f"server error {status}")
    if 300 <= status < 400:
        return Failure.error(ErrorKind.TARGET_ERROR, f"unexpected redirect {status}")
    return Failure.error(ErrorKind.TARGET_ERROR, f"unexpected status {status}")


def oauth_failure(code: str, status: int) -> Failure:
    """What a token endpoint's error code means; an unknown code (or a 5xx without one) is the target's
    fault, reported by its status, never by the code's text."""
    known = _OAUTH_ERRORS.get(code)
    if known is not None:
        return known
    if status == 429 or status >= 500:
        return status_failure(status)
    return Failure.error(ErrorKind.TARGET_ERROR, f"token endpoint error {status}")


def translate(exc: BaseException) -> Failure | None:
    """The outcome ``exc`` means, or None when it is not an HTTP, OAuth or HTTP-setup failure."""
    if isinstance(exc, HttpSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, str(exc))
    if isinstance(exc, UnexpectedStatus):
        return status_failure(exc.status)
    if isinstance(exc, OAuthError):
        return oauth_failure(exc.code, exc.status)
    if isinstance(exc, BadReply):
        return Failure.error(ErrorKind.TARGET_ERROR, exc.reason)
    if isinstance(exc, httpx.TransportError) and _tls_cause(exc):
        return Failure.error(ErrorKind.UNREACHABLE, TLS_FAILED)
    for cls, failure in TRANSPORT:
        if isinstance(exc, cls):
            return failure
    return None


def known_classes() -> tuple[type[BaseException], ...]:
    """The classes the table maps, in matching order (for tests and documentation)."""
    return tuple(cls for cls, _ in TRANSPORT)


def _tls_cause(exc: BaseException) -> bool:
    """True when an ``ssl.SSLError`` is somewhere down ``exc``'s cause chain (httpx wraps httpcore's error,
    which wraps the ssl module's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            # The peer closing the connection (even mid-handshake) is a lost connection, not a TLS failure.
            return not isinstance(current, ssl.SSLEOFError | ssl.SSLZeroReturnError)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
