"""The HTTP SIEM connectors' one translation table: every httpx exception class has its entry, and status
codes and ``Retry-After`` are read as documented."""

from __future__ import annotations

import inspect
import ssl
from datetime import UTC, datetime

import httpx
import pytest

from parityprobe.model import ErrorKind
from parityprobe.siem._http import (
    TRANSPORT_ERRORS,
    check_status,
    parse_when,
    retry_after_seconds,
    transport_failure,
)
from parityprobe.siem.connector import SiemThrottled, SiemUnavailable


def _httpx_exceptions() -> list[type[Exception]]:
    return [
        cls
        for _, cls in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__.startswith("httpx")
    ]


@pytest.mark.parametrize("cls", _httpx_exceptions(), ids=lambda cls: cls.__name__)
def test_every_httpx_exception_class_has_an_entry(cls: type[Exception]) -> None:
    assert any(issubclass(cls, entry) for entry, _, _ in TRANSPORT_ERRORS)


def test_specific_classes_come_before_their_bases() -> None:
    classes = [entry for entry, _, _ in TRANSPORT_ERRORS]
    for index, cls in enumerate(classes):
        assert not any(issubclass(cls, earlier) and cls is not earlier for earlier in classes[:index]), cls


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectTimeout("x"), ErrorKind.TIMEOUT),
        (httpx.ReadTimeout("x"), ErrorKind.TIMEOUT),
        (httpx.ConnectError("x"), ErrorKind.UNREACHABLE),
        (httpx.RemoteProtocolError("x"), ErrorKind.TARGET_ERROR),
    ],
)
def test_transport_kinds(exc: Exception, kind: ErrorKind) -> None:
    assert transport_failure(exc, "loki h:1").kind is kind


def test_a_tls_failure_is_found_down_the_cause_chain() -> None:
    try:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as tls:
            raise httpx.ConnectError("failed") from tls
    except httpx.ConnectError as exc:
        failure = transport_failure(exc, "splunk h:1")
    assert failure.reason == "splunk h:1: tls handshake failed"
    assert failure.kind is ErrorKind.UNREACHABLE


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_status_mapping() -> None:
    check_status(_response(200), "x")
    for status, kind in [
        (401, ErrorKind.TARGET_ERROR),
        (404, ErrorKind.TARGET_ERROR),
        (302, ErrorKind.TARGET_ERROR),
    ]:
        with pytest.raises(SiemUnavailable) as caught:
            check_status(_response(status), "x")
        assert caught.value.kind is kind and not isinstance(caught.value, SiemThrottled)
    with pytest.raises(SiemUnavailable) as unavailable:
        check_status(_response(503), "x")  # no Retry-After: down, not asking us to slow down
    assert not isinstance(unavailable.value, SiemThrottled)
    with pytest.raises(SiemThrottled) as throttled:
        check_status(_response(503, **{"Retry-After": "4"}), "x")
    assert throttled.value.retry_after == 4


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7
    assert retry_after_seconds("Sun, 22 Nov 2026 09:00:30 GMT", now) == 30
    assert retry_after_seconds("Sun, 22 Nov 2026 08:00:00 GMT", now) == 0
    assert retry_after_seconds("-3", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_parse_when_reads_epoch_text_and_refuses_out_of_range() -> None:
    assert parse_when("1795338000") == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert parse_when("1795338000000") == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert parse_when("2026-11-22T09:00:00Z") == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert parse_when("1e300") is None
    assert parse_when("nan") is None
    assert parse_when(None) is None
