"""The Kubernetes plane's exception table: every httpx exception class has a decided outcome, API statuses and
review answers map as documented, TLS failures are found down the cause chain, and no reason repeats what an
exception or a server said."""

from __future__ import annotations

import inspect
import json
import ssl

import httpx
import pytest

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.k8s import errors
from parityprobe.probes.k8s.access import decision
from parityprobe.probes.k8s.errors import (
    ApiRefusal,
    BadReply,
    K8sSetupError,
    retry_after_seconds,
    status_failure,
    translate,
)
from tests.unit.test_http_errors import EXPECTED

DENIED, NOT_FOUND, ERROR = Outcome.DENIED, Outcome.NOT_FOUND, Outcome.ERROR
TIMEOUT, UNREACHABLE = ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE
THROTTLED, TARGET, HARNESS = ErrorKind.THROTTLED, ErrorKind.TARGET_ERROR, ErrorKind.HARNESS_ERROR

# Appears in every constructed exception's message: no reason may repeat it.
MARKER = "LEAKED0secret0value"

# Every exception class httpx exports, and what it must translate to: the HTTP plane's, whose table this
# plane reads its transport failures from.
# The table's other rows: the ssl module's errors (reached bare or down a cause chain) and a body that is not
# JSON. Together with EXPECTED they must cover every row of the table.
OTHERS: dict[type[BaseException], Failure] = {
    ssl.SSLCertVerificationError: Failure.error(TARGET, "server certificate not trusted"),
    ssl.SSLError: Failure.error(UNREACHABLE, "tls handshake failed"),
    json.JSONDecodeError: Failure.error(TARGET, "response is not json"),
}


def exported_exceptions() -> set[type[BaseException]]:
    return {
        cls
        for _, cls in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(cls, BaseException) and not issubclass(cls, Warning)
    }


def make(cls: type[BaseException]) -> BaseException:
    message = f"boom {MARKER}"
    request = httpx.Request("GET", f"https://127.0.0.1:1/api/v1/namespaces/{MARKER}/secrets")
    if cls is httpx.HTTPStatusError:
        return httpx.HTTPStatusError(message, request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls(message, request=request)
    if cls in (httpx.StreamConsumed, httpx.StreamClosed, httpx.ResponseNotRead, httpx.RequestNotRead):
        return cls()
    if cls is json.JSONDecodeError:
        return json.JSONDecodeError(message, "{", 0)
    if issubclass(cls, ssl.SSLError):
        return cls(1, message)
    return cls(message)


def qualified(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_class_is_decided() -> None:
    found = exported_exceptions()
    assert found - EXPECTED.keys() == set(), "new exception classes need an entry in errors._TABLE and here"
    assert EXPECTED.keys() - found == set()


def test_every_table_row_is_exercised() -> None:
    # A row no test reaches is a row nobody decided: each table class is one of the cases below.
    assert set(errors.known_classes()) <= EXPECTED.keys() | OTHERS.keys()


@pytest.mark.parametrize("cls", sorted(EXPECTED, key=qualified), ids=qualified)
def test_table(cls: type[BaseException]) -> None:
    failure = translate(make(cls))
    assert failure is not None
    assert (failure.outcome, failure.error_kind) == EXPECTED[cls]
    assert failure.reason and MARKER not in failure.reason
    assert (failure.error_kind is None) == (failure.outcome is not ERROR)


@pytest.mark.parametrize("cls", sorted(OTHERS, key=qualified), ids=qualified)
def test_other_rows(cls: type[BaseException]) -> None:
    assert translate(make(cls)) == OTHERS[cls]


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
    # A certificate from a CA the environment does not trust: the server answered, with the wrong identity.
    verify = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {MARKER}")
    exc = wrapped(httpx.ConnectError("x", request=request), wrapped(OSError("httpcore.ConnectError"), verify))
    assert translate(exc) == Failure.error(TARGET, "server certificate not trusted")
    # Any other handshake failure (no common protocol, a refused client certificate) is no connection.
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION]")
    assert translate(wrapped(httpx.ConnectError("x", request=request), alert)) == Failure.error(
        UNREACHABLE, "tls handshake failed"
    )
    # The peer closing the connection is a lost connection, even though ssl reports it.
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert translate(wrapped(httpx.ReadError("x", request=request), eof)) == Failure.error(
        TARGET, "connection lost"
    )
    refused = wrapped(httpx.ConnectError("x", request=request), ConnectionRefusedError(111, "refused"))
    assert translate(refused) == Failure.error(UNREACHABLE, "connection failed")


def test_a_cyclic_cause_chain_ends() -> None:
    exc = httpx.ConnectError("x")
    other = ValueError("y")
    exc.__context__ = other
    other.__context__ = exc
    assert translate(exc) == Failure.error(UNREACHABLE, "connection failed")


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (401, None, Failure(DENIED, "unauthorized")),
        (403, None, Failure(DENIED, "forbidden")),
        (404, None, Failure(NOT_FOUND, "not found")),
        (429, None, Failure.error(THROTTLED, "throttled")),
        (429, 7, Failure.error(THROTTLED, "throttled: retry after 7s")),
        (500, None, Failure.error(TARGET, "server error 500")),
        (503, 1, Failure.error(TARGET, "server error 503")),
        (409, None, Failure.error(TARGET, "unexpected status 409")),
        (400, None, Failure.error(TARGET, "unexpected status 400")),
        (302, None, Failure.error(TARGET, "unexpected status 302")),
    ],
)
def test_status_table(status: int, retry_after: int | None, expected: Failure) -> None:
    assert status_failure(status, retry_after) == expected
    assert translate(ApiRefusal(status, retry_after)) == expected


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5), (" 12 ", 12), (None, None), ("", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-1", None)],
)
def test_retry_after(header: str | None, seconds: int | None) -> None:
    assert retry_after_seconds(header) == seconds
    assert retry_after_seconds("999999999") is None


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        ({"allowed": True, "reason": f'RBAC: allowed by RoleBinding "{MARKER}"'}, Outcome.ALLOWED, None),
        ({"allowed": False}, DENIED, "no rule allows it"),
        ({"allowed": False, "reason": MARKER}, DENIED, "no rule allows it"),
        ({"allowed": False, "denied": True, "reason": MARKER}, DENIED, "denied by an authorizer"),
        ({"allowed": False, "evaluationError": MARKER}, DENIED, "no rule allows it (evaluation error)"),
    ],
)
def test_review_decisions_use_fixed_reasons(
    status: dict[str, object], outcome: Outcome, reason: str | None
) -> None:
    assert decision(status) == ProbeResult(outcome, reason=reason)


@pytest.mark.parametrize("status", [{}, {"allowed": "yes"}, {"denied": True}])
def test_a_review_without_allowed_is_a_bad_reply(status: dict[str, object]) -> None:
    with pytest.raises(BadReply) as caught:
        decision(status)
    assert translate(caught.value) == Failure.error(TARGET, "SelfSubjectAccessReview has no status.allowed")


def test_own_exceptions() -> None:
    assert translate(K8sSetupError("no 'k8s' section")) == Failure.error(HARNESS, "no 'k8s' section")
    assert translate(BadReply("/version has no gitVersion")) == Failure.error(
        TARGET, "/version has no gitVersion"
    )


def test_foreign_exceptions_are_left_to_others() -> None:
    assert translate(KeyError("x")) is None
    assert translate(ValueError("x")) is None
