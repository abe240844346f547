"""The HTTP plane's exception table: every httpx exception class has a decided outcome, statuses and OAuth
error codes map as documented, and no reason repeats what an exception or a server said."""

from __future__ import annotations

import inspect
import json
import ssl

import httpx
import pytest

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.http import errors
from parityprobe.probes.http.errors import (
    BadReply,
    HttpSetupError,
    OAuthError,
    UnexpectedStatus,
    oauth_failure,
    status_failure,
    translate,
)

DENIED, NOT_FOUND, ERROR = Outcome.DENIED, Outcome.NOT_FOUND, Outcome.ERROR
TIMEOUT, UNREACHABLE = ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE
THROTTLED, TARGET, HARNESS = ErrorKind.THROTTLED, ErrorKind.TARGET_ERROR, ErrorKind.HARNESS_ERROR

# Appears in every constructed exception's message: no reason may repeat it.
MARKER = "LEAKED0secret0value"

# Every exception class httpx exports, with the (outcome, error kind) it must translate to. A class added in
# a future httpx is missing here and fails test_every_class_is_decided until someone decides it.
EXPECTED: dict[type[BaseException], tuple[Outcome, ErrorKind | None]] = {
    httpx.HTTPError: (ERROR, TARGET),
    httpx.RequestError: (ERROR, TARGET),
    httpx.TransportError: (ERROR, UNREACHABLE),
    httpx.TimeoutException: (ERROR, TIMEOUT),
    httpx.ConnectTimeout: (ERROR, TIMEOUT),
    httpx.ReadTimeout: (ERROR, TIMEOUT),
    httpx.WriteTimeout: (ERROR, TIMEOUT),
    httpx.PoolTimeout: (ERROR, TIMEOUT),
    httpx.NetworkError: (ERROR, UNREACHABLE),
    httpx.ConnectError: (ERROR, UNREACHABLE),
    httpx.ReadError: (ERROR, TARGET),
    httpx.WriteError: (ERROR, TARGET),
    httpx.CloseError: (ERROR, TARGET),
    httpx.ProtocolError: (ERROR, TARGET),
    httpx.LocalProtocolError: (ERROR, HARNESS),
    httpx.RemoteProtocolError: (ERROR, TARGET),
    httpx.ProxyError: (ERROR, UNREACHABLE),
    httpx.UnsupportedProtocol: (ERROR, HARNESS),
    httpx.DecodingError: (ERROR, TARGET),
    httpx.TooManyRedirects: (ERROR, TARGET),
    httpx.HTTPStatusError: (ERROR, TARGET),
    httpx.InvalidURL: (ERROR, HARNESS),
    httpx.CookieConflict: (ERROR, HARNESS),
    httpx.StreamError: (ERROR, HARNESS),
    httpx.StreamConsumed: (ERROR, HARNESS),
    httpx.StreamClosed: (ERROR, HARNESS),
    httpx.ResponseNotRead: (ERROR, HARNESS),
    httpx.RequestNotRead: (ERROR, HARNESS),
}


def exported_exceptions() -> set[type[BaseException]]:
    return {
        cls
        for _, cls in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(cls, BaseException) and not issubclass(cls, Warning)
    }


def make(cls: type[BaseException]) -> BaseException:
    message = f"boom {MARKER}"
    request = httpx.Request("GET", f"http://127.0.0.1:1/{MARKER}")
    if cls is httpx.HTTPStatusError:
        return httpx.HTTPStatusError(message, request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls(message, request=request)
    if cls in (httpx.StreamConsumed, httpx.StreamClosed, httpx.ResponseNotRead, httpx.RequestNotRead):
        return cls()
    return cls(message)


def test_every_class_is_decided() -> None:
    found = exported_exceptions()
    assert found - EXPECTED.keys() == set(), "new exception classes need a row in errors.TRANSPORT"
    assert EXPECTED.keys() - found == set()


def qualified(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@pytest.mark.parametrize("cls", sorted(EXPECTED, key=qualified), ids=qualified)
def test_table(cls: type[BaseException]) -> None:
    failure = translate(make(cls))
    assert failure is not None
    assert (failure.outcome, failure.error_kind) == EXPECTED[cls]
    assert failure.reason and MARKER not in failure.reason
    assert (failure.error_kind is None) == (failure.outcome is not ERROR)


def test_no_table_entry_is_shadowed_by_an_earlier_base() -> None:
    classes = errors.known_classes()
    for i, later in enumerate(classes):
        for earlier in classes[:i]:
            assert not issubclass(later, earlier), f"{later.__name__} is shadowed by {earlier.__name__}"


def wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised from ``inner``, as httpx raises its errors from httpcore's, httpcore from ssl's."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as caught:
        return caught


def test_tls_failures_are_found_down_the_cause_chain() -> None:
    request = httpx.Request("GET", "https://127.0.0.1:1/")
    verify = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {MARKER}")
    middle = wrapped(OSError("httpcore.ConnectError"), verify)
    exc = wrapped(httpx.ConnectError("x", request=request), middle)
    assert translate(exc) == Failure.error(UNREACHABLE, "tls handshake failed")
    # TLS 1.3 reports a refused client certificate with the first read.
    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]")
    tls_failed = Failure.error(UNREACHABLE, "tls handshake failed")
    assert translate(wrapped(httpx.ReadError("x", request=request), alert)) == tls_failed
    # The peer closing the connection is a lost connection, even though ssl reports it.
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert translate(wrapped(httpx.ReadError("x", request=request), eof)) == Failure.error(
        TARGET, "connection lost"
    )
    # A plain connection refusal is no TLS failure.
    refused = wrapped(httpx.ConnectError("x", request=request), ConnectionRefusedError(111, "refused"))
    assert translate(refused) == Failure.error(UNREACHABLE, "connection failed")
    assert translate(ssl.SSLError("bare")) == Failure.error(UNREACHABLE, "tls handshake failed")


def test_a_cyclic_cause_chain_ends() -> None:
    exc = httpx.ConnectError("x")
    other = ValueError("y")
    exc.__context__ = other
    other.__context__ = exc
    assert translate(exc) == Failure.error(UNREACHABLE, "connection failed")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, Failure(DENIED, "unauthorized")),
        (403, Failure(DENIED, "forbidden")),
        (404, Failure(NOT_FOUND, "not found")),
        (429, Failure.error(THROTTLED, "rate limited")),
        (500, Failure.error(TARGET, "server error 500")),
        (599, Failure.error(TARGET, "server error 599")),
        (301, Failure.error(TARGET, "unexpected redirect 301")),
        (400, Failure.error(TARGET, "unexpected status 400")),
        (409, Failure.error(TARGET, "unexpected status 409")),
        (101, Failure.error(TARGET, "unexpected status 101")),
    ],
)
def test_status_table(status: int, expected: Failure) -> None:
    assert status_failure(status) == expected
    assert translate(UnexpectedStatus(status)) == expected


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("invalid_scope", 400, Failure(DENIED, "invalid scope")),
        ("invalid_client", 401, Failure(DENIED, "invalid client")),
        ("unauthorized_client", 400, Failure(DENIED, "unauthorized client")),
        ("unsupported_grant_type", 400, Failure(DENIED, "unsupported grant type")),
        ("invalid_request", 400, Failure.error(TARGET, "invalid request")),
        ("server_error", 500, Failure.error(TARGET, "server error")),
        (f"made_up_{MARKER}", 400, Failure.error(TARGET, "token endpoint error 400")),
        (f"made_up_{MARKER}", 503, Failure.error(TARGET, "server error 503")),
        (f"made_up_{MARKER}", 429, Failure.error(THROTTLED, "rate limited")),
    ],
)
def test_oauth_error_codes(code: str, status: int, expected: Failure) -> None:
    assert oauth_failure(code, status) == expected
    assert translate(OAuthError(code, status)) == expected


def test_own_exceptions() -> None:
    assert translate(HttpSetupError("no 'http' section")) == Failure.error(HARNESS, "no 'http' section")
    assert translate(BadReply("token response has no access_token")) == Failure.error(
        TARGET, "token response has no access_token"
    )
    assert translate(json.JSONDecodeError(MARKER, "{", 0)) == Failure.error(TARGET, "response is not json")


def test_foreign_exceptions_are_left_to_others() -> None:
    assert translate(KeyError("x")) is None
    assert translate(ValueError("x")) is None
