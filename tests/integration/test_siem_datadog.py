"""The ``datadog`` connector against a loopback server speaking Datadog's Logs Search API v2.

The fake follows the documented contract (docs.datadoghq.com, "Search logs (POST)" and "Log Search Syntax"):
``POST /api/v2/logs/events/search`` with ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` (403 ``{"errors": […]}``
otherwise); a body ``{"filter": {"query", "from", "to", "indexes"}, "sort", "page": {"limit", "cursor"}}``;
free-text quoted sequences match the log message, ``*:"…"`` every attribute, ``OR`` between them; a reply
``{"data": [{"id", "type": "log", "attributes": {"timestamp", "service", "host", "status", "tags",
"message", "attributes"}}], "meta": {"page": {"after"}, "status": "done", "elapsed", "request_id"},
"links": {"next"}}``, the cursor present while more logs match.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parityprobe.model import ErrorKind
from parityprobe.siem.connector import SiemQuery, SiemThrottled, SiemUnavailable
from parityprobe.siem.datadog import SEARCH_PATH, DatadogConnector, DatadogSettings
from parityprobe.siem.settings import SiemRegistry, SiemSettings
from tests.siem_http_support import Reply, Seen, SiemServer, siem_server

pytestmark = pytest.mark.lab

API_KEY = "ddkey-" + secrets.token_hex(16)
APP_KEY = "ddapp-" + secrets.token_hex(20)
SINCE = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 22, 9, 10, tzinfo=UTC)
_TERM = re.compile(r'(\*:)?"((?:[^"\\]|\\.)*)"')


@dataclass
class FakeDatadog:
    """An organisation's logs: ``logs`` as (index, log in the API's shape)."""

    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, seen: Seen) -> Reply:
        if seen.method != "POST" or seen.path != SEARCH_PATH:
            return Reply.json({"errors": ["Not found"]}, 404)
        if seen.headers.get("dd-api-key") != API_KEY or seen.headers.get("dd-application-key") != APP_KEY:
            return Reply.json({"errors": ["Forbidden"]}, 403)
        body = seen.json()
        search_filter, page = body["filter"], body.get("page", {})
        terms = parse_query(search_filter["query"])
        if terms is None or body.get("sort") != "timestamp":
            return Reply.json({"errors": ["invalid query"]}, 400)
        since, until = _time(search_filter["from"]), _time(search_filter["to"])
        indexes = search_filter.get("indexes")
        matching = [
            log
            for index, log in self.logs
            if (indexes is None or index in indexes)
            and since <= _time(log["attributes"]["timestamp"]) <= until
            and any(_matches(log["attributes"], term, full) for full, term in terms)
        ]
        matching.sort(key=lambda log: _time(log["attributes"]["timestamp"]))
        start = json.loads(base64.b64decode(page["cursor"]))["at"] if "cursor" in page else 0
        limit = int(page.get("limit", 10))
        end = start + limit
        meta: dict[str, Any] = {"elapsed": 12, "request_id": "r-1", "status": "done"}
        reply: dict[str, Any] = {"data": matching[start:end], "meta": meta}
        if end < len(matching):
            cursor = base64.b64encode(json.dumps({"at": end}).encode()).decode()
            meta["page"] = {"after": cursor}
            reply["links"] = {"next": f"https://api.example{SEARCH_PATH}?page[cursor]={cursor}"}
        return Reply.json(reply)


def parse_query(query: str) -> list[tuple[bool, str]] | None:
    """``"a" OR *:"b"`` as [(full_text, term)]; None when the query is anything else."""
    terms: list[tuple[bool, str]] = []
    for part in query.split(" OR "):
        found = _TERM.fullmatch(part)
        if found is None:
            return None
        terms.append((found.group(1) is not None, re.sub(r"\\(.)", r"\1", found.group(2))))
    return terms


def _matches(attributes: dict[str, Any], term: str, full_text: bool) -> bool:
    haystack = json.dumps(attributes) if full_text else str(attributes.get("message", ""))
    return term in haystack


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def log(index: str, at: int, message: str | None = None, **attributes: Any) -> tuple[str, dict[str, Any]]:
    """A log ``at`` seconds into the window."""
    stamp = (SINCE + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body: dict[str, Any] = {
        "timestamp": stamp,
        "service": "vault",
        "host": "vault-0",
        "status": "info",
        "tags": ["env:staging", "source:vault"],
        "attributes": attributes,
    }
    if message is not None:
        body["message"] = message
    return index, {"id": "AQAAAY" + secrets.token_hex(6), "type": "log", "attributes": body}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_DD_API_KEY", API_KEY)
    monkeypatch.setenv("PP_TEST_DD_APP_KEY", APP_KEY)


@pytest.fixture
def server() -> Iterator[SiemServer]:
    with siem_server() as running:
        yield running


def settings(url: str, **extra: Any) -> DatadogSettings:
    result = DatadogSettings.model_validate(
        {
            "type": "datadog",
            "site": url,
            "api_key": {"env": "PP_TEST_DD_API_KEY"},
            "application_key": {"env": "PP_TEST_DD_APP_KEY"},
            **extra,
        }
    )
    result.api_key.resolve(Path("."), "api_key")
    result.application_key.resolve(Path("."), "application_key")
    return result


def search(server: SiemServer, ids: set[str], **extra: Any) -> list[Any]:
    connector = settings(server.url, **extra).connect()
    try:
        connector.begin()
        return list(connector.search(SiemQuery(frozenset(ids), SINCE, UNTIL)))
    finally:
        connector.close()


def failure(server: SiemServer, reply: Reply, **extra: Any) -> SiemUnavailable:
    server.behaviour = lambda seen: reply
    with pytest.raises(SiemUnavailable) as caught:
        search(server, {"pp-r1-login"}, **extra)
    assert API_KEY not in str(caught.value) and APP_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value) and APP_KEY not in repr(caught.value)
    return caught.value


def test_one_request_for_every_id_follows_every_page(server: SiemServer) -> None:
    fake = FakeDatadog(
        [
            log("main", 10, "login pp-r1-login ok", request={"path": "auth/approle/login"}),
            log("main", 20, "read pp-r1-read denied", error="permission denied"),
            log("main", 30, "both pp-r1-login and pp-r1-read"),
            log("main", 40, "someone else pp-r2-login"),
            log("main", 50, "again pp-r1-revoke"),
            log("audit", 60, "other index pp-r1-login"),
            log("main", 900, "after the window pp-r1-login"),
        ]
    )
    server.behaviour = fake
    events = search(server, {"pp-r1-read", "pp-r1-login", "pp-r1-revoke"}, page_size=2, indexes=["main"])

    assert len(server.seen) == 2
    first, second = server.seen
    for seen in server.seen:
        assert (seen.method, seen.path) == ("POST", SEARCH_PATH)
        assert seen.headers["dd-api-key"] == API_KEY
        assert seen.headers["dd-application-key"] == APP_KEY
    assert first.json() == {
        "filter": {
            "query": '"pp-r1-login" OR "pp-r1-read" OR "pp-r1-revoke"',
            "from": "2026-11-22T09:00:00.000Z",
            "to": "2026-11-22T09:10:00.000Z",
            "indexes": ["main"],
        },
        "sort": "timestamp",
        "page": {"limit": 2},
    }
    assert second.json()["filter"] == first.json()["filter"]
    assert second.json()["page"] == {"limit": 2, "cursor": base64.b64encode(b'{"at": 2}').decode()}

    found = [(e.correlation_id, e.time) for e in events]
    assert found == [
        ("pp-r1-login", SINCE + timedelta(seconds=10)),
        ("pp-r1-read", SINCE + timedelta(seconds=20)),
        ("pp-r1-login", SINCE + timedelta(seconds=30)),
        ("pp-r1-read", SINCE + timedelta(seconds=30)),
        ("pp-r1-revoke", SINCE + timedelta(seconds=50)),
    ]
    login = events[0]
    assert login.ingested_at is None
    assert login.fields["request.path"] == "auth/approle/login"
    assert login.fields["message"] == "login pp-r1-login ok"
    assert login.fields["service"] == "vault"
    assert login.fields["tags"] == "env:staging,source:vault"
    assert events[1].fields["error"] == "permission denied"


def test_full_text_finds_ids_in_json_attributes(server: SiemServer) -> None:
    audit = {
        "type": "response",
        "request": {"path": "secret/data/billing/db", "headers": {"x-correlation-id": ["pp-r1-read"]}},
        "error": "1 error occurred:\n\t* permission denied\n\n",
    }
    fake = FakeDatadog(
        [log("main", 5, None, **audit), log("main", 6, json.dumps(audit | {"type": "request"}))]
    )
    server.behaviour = fake
    events = search(server, {"pp-r1-read"}, full_text=True)

    assert server.seen[0].json()["filter"]["query"] == '*:"pp-r1-read"'
    assert "indexes" not in server.seen[0].json()["filter"]
    assert [e.fields["type"] for e in events] == ["response", "request"]  # a JSON message is flattened too
    assert events[1].fields["request.headers.x-correlation-id"] == "pp-r1-read"
    assert "message" not in events[1].fields


def test_free_text_alone_misses_ids_only_in_attributes(server: SiemServer) -> None:
    """What ``full_text`` is for: Datadog's free text searches the message only."""
    server.behaviour = FakeDatadog([log("main", 5, None, request={"id": "pp-r1-read"})])
    assert search(server, {"pp-r1-read"}) == []


def test_quotes_in_ids_are_escaped(server: SiemServer) -> None:
    odd = 'pp-r1-"odd"\\id'
    server.behaviour = FakeDatadog([log("main", 5, f"saw {odd} here")])
    events = search(server, {odd})
    assert server.seen[0].json()["filter"]["query"] == '"pp-r1-\\"odd\\"\\\\id"'
    assert [e.correlation_id for e in events] == [odd]


def test_no_ids_no_request(server: SiemServer) -> None:
    server.behaviour = FakeDatadog()
    assert search(server, set()) == []
    assert server.seen == []


def test_throttled_with_retry_after(server: SiemServer) -> None:
    limits = {"X-RateLimit-Limit": "300", "X-RateLimit-Period": "3600", "X-RateLimit-Remaining": "0"}
    exc = failure(
        server, Reply.json({"errors": ["Rate limit exceeded"]}, 429, **limits, **{"Retry-After": "17"})
    )
    assert isinstance(exc, SiemThrottled)
    assert exc.retry_after == 17
    assert exc.kind is ErrorKind.THROTTLED


def test_throttled_with_only_the_rate_limit_reset(server: SiemServer) -> None:
    limits = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42"}
    exc = failure(server, Reply.json({"errors": ["Rate limit exceeded"]}, 429, **limits))
    assert isinstance(exc, SiemThrottled) and exc.retry_after == 42


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_no_answer(server: SiemServer, status: int) -> None:
    # An error page that echoes the request's keys must not reach the reason.
    exc = failure(server, Reply.json({"errors": [f"Forbidden: {API_KEY} {APP_KEY}"]}, status))
    assert not isinstance(exc, SiemThrottled)
    assert exc.kind is ErrorKind.TARGET_ERROR
    assert f"HTTP {status}" in exc.reason


def test_wrong_key_is_refused_by_the_fake(server: SiemServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.behaviour = FakeDatadog()
    monkeypatch.setenv("PP_TEST_DD_APP_KEY", "not-the-key")
    with pytest.raises(SiemUnavailable, match="HTTP 403"):
        search(server, {"pp-r1-login"})


def test_server_error_is_no_answer(server: SiemServer) -> None:
    exc = failure(server, Reply.json({"errors": ["Internal Server Error"]}, 500))
    assert exc.kind is ErrorKind.TARGET_ERROR
    assert not isinstance(exc, SiemThrottled)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"<html>gateway</html>", {"Content-Type": "text/html"}),
        Reply.json({"errors": []}),
        Reply.json({"data": {"not": "a list"}}),
        Reply.json({"data": [{"id": "x", "type": "log"}]}),
        Reply.json({"data": [], "meta": {"page": {"after": 42}}}),
        Reply.json(["not", "an", "object"]),
    ],
)
def test_malformed_reply_is_no_answer(server: SiemServer, reply: Reply) -> None:
    exc = failure(server, reply)
    assert exc.kind is ErrorKind.TARGET_ERROR
    assert "malformed" in exc.reason


def test_search_timed_out_at_datadog_is_no_answer(server: SiemServer) -> None:
    """Datadog's ``meta.status: timeout`` comes with whatever logs it had found: not an answer."""
    partial = {"data": [log("main", 5, "pp-r1-login")[1]], "meta": {"status": "timeout"}}
    exc = failure(server, Reply.json(partial))
    assert exc.kind is ErrorKind.TIMEOUT


def test_a_repeated_cursor_is_no_answer(server: SiemServer) -> None:
    exc = failure(server, Reply.json({"data": [], "meta": {"page": {"after": "same"}}}))
    assert "cursor" in exc.reason
    assert len(server.seen) == 2


def test_no_answer_within_the_timeout(server: SiemServer) -> None:
    exc = failure(server, Reply(hang=True), timeout_seconds=0.3)
    assert exc.kind is ErrorKind.TIMEOUT


def test_unreachable(server: SiemServer) -> None:
    url = server.url
    server.shutdown()
    server.server_close()
    connector = settings(url).connect()
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(SiemQuery(frozenset({"pp-r1-login"}), SINCE, UNTIL))
    assert caught.value.kind is ErrorKind.UNREACHABLE


def test_keys_never_in_repr(server: SiemServer) -> None:
    configured = settings(server.url)
    connector = configured.connect()
    assert isinstance(connector, DatadogConnector)
    for text in (repr(configured), str(configured), repr(connector), repr(configured.model_dump())):
        assert API_KEY not in text and APP_KEY not in text
    connector.close()


def test_registered_and_chosen_by_type() -> None:
    assert SiemRegistry().load("datadog") is DatadogSettings
    section = SiemSettings.model_validate(
        {"connectors": {"dd": {"type": "datadog", "api_key": {"env": "A"}, "application_key": {"env": "B"}}}}
    )
    connector = section.settings_of(None)
    assert isinstance(connector, DatadogSettings)
    assert connector.site == "https://api.datadoghq.com"
    assert connector.page_size == 1000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"site": "api.datadoghq.com"}, "http://"),
        ({"api_key": API_KEY}, "never a literal"),
        ({"application_key": None}, "application_key"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"indexes": []}, "indexes"),
        ({"indexes": [" "]}, "index name"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"query": "service:vault"}, "query"),
    ],
)
def test_settings_validation(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {"type": "datadog", "api_key": {"env": "A"}, "application_key": {"env": "B"}}
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        DatadogSettings.model_validate(data)
    assert message in str(caught.value)
