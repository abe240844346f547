"""Contract tests of the ``splunk`` connector against a loopback server speaking Splunk's REST search export:
``POST /services/search/v2/jobs/export`` with a form (``search``, ``earliest_time``, ``latest_time``,
``output_mode=json``), answered with newline-delimited JSON rows (``preview``, ``offset``, ``result`` with
``_raw``, ``_time``, ``_indextime``; ``messages`` rows; ``lastrow``), as the Splunk REST API reference and
splunk-sdk-python's ``JSONResultsReader`` describe it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from parityprobe.model import ErrorKind
from parityprobe.siem.connector import SiemQuery, SiemThrottled, SiemUnavailable
from parityprobe.siem.settings import SiemSettings
from parityprobe.siem.splunk import EXPORT_PATH, SplunkConnector, SplunkSettings
from tests.siem_http_support import Reply, Seen, SiemServer, siem_server

pytestmark = pytest.mark.lab

TOKEN = "splunk-token-7f3a9c1e5b"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def audit_line(cid: str, kind: str, path: str, at: datetime) -> str:
    """A Vault audit entry as a file audit device writes it: the correlation header is a list."""
    return json.dumps(
        {
            "time": at.isoformat().replace("+00:00", "Z"),
            "type": kind,
            "request": {"path": path, "operation": "read", "headers": {"x-correlation-id": [cid]}},
        }
    )


class FakeSplunk:
    """The export endpoint over an index of raw lines: matches the quoted terms of the search, streams the
    matching results as JSON rows (a preview row first, the last row flagged), one row per chunk."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, datetime]] = []

    def __call__(self, seen: Seen) -> Reply:
        if seen.method != "POST" or seen.path != EXPORT_PATH:
            return Reply(404)
        if seen.headers.get("authorization") != f"Bearer {TOKEN}":
            body = {"messages": [{"type": "WARN", "text": "call not properly authenticated"}]}
            return Reply.json(body, 401)
        form = seen.form()
        terms = re.findall(r'"((?:[^"\\]|\\.)*)"', form["search"][0])
        earliest = float(form["earliest_time"][0])
        latest = float(form["latest_time"][0])
        rows: list[dict[str, object]] = [
            {"messages": [{"type": "INFO", "text": "Your timerange was substituted"}]}
        ]
        hits = [
            (line, at)
            for line, at in self.raw
            if earliest <= at.timestamp() < latest and any(term in line for term in terms)
        ]
        if hits:
            preview = {"_raw": hits[0][0], "_time": "ignored"}
            rows.append({"preview": True, "offset": 0, "result": preview})
        for offset, (line, at) in enumerate(hits):
            result = {
                "_raw": line,
                "_time": at.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
                "_indextime": str(int(at.timestamp()) + 3),
                "index": "vault",
                "sourcetype": "vault_audit",
            }
            row: dict[str, object] = {"preview": False, "offset": offset, "result": result}
            if offset == len(hits) - 1:
                row["lastrow"] = True
            rows.append(row)
        body = "\n".join(json.dumps(row) for row in rows) + "\n"
        return Reply(200, body.encode(), {"Content-Type": "application/json"})


@pytest.fixture
def fake() -> FakeSplunk:
    return FakeSplunk()


@pytest.fixture
def server(fake: FakeSplunk) -> Iterator[SiemServer]:
    with siem_server() as server:
        server.behaviour = fake
        yield server


def settings(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: object
) -> SplunkSettings:
    monkeypatch.setenv("PP_TEST_SPLUNK_TOKEN", TOKEN)
    model = SplunkSettings.model_validate(
        {
            "type": "splunk",
            "base_url": base_url,
            "token": {"env": "PP_TEST_SPLUNK_TOKEN"},
            "index": "vault",
            **extra,
        }
    )
    model.token.resolve(tmp_path, "splunk token")
    return model


@pytest.fixture
def connector(
    server: SiemServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SplunkConnector]:
    conn = settings(server.url, tmp_path, monkeypatch, timeout_seconds=0.5).connect()
    yield conn
    conn.close()


def query(*ids: str) -> SiemQuery:
    return SiemQuery(frozenset(ids), T0 - timedelta(minutes=1), T0 + timedelta(minutes=5))


def test_one_export_request_carries_every_id(
    fake: FakeSplunk, server: SiemServer, connector: SplunkConnector
) -> None:
    ids = [f"pp-run1-step{n}" for n in range(5)]
    for n, cid in enumerate(ids):
        fake.raw.append((audit_line(cid, "request", f"secret/data/s{n}", T0 + timedelta(seconds=n)), T0))
    fake.raw.append((audit_line("pp-other-step0", "request", "secret/data/x", T0), T0))

    events = connector.search(query(*ids))

    assert len(server.seen) == 1
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", EXPORT_PATH)
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    form = seen.form()
    assert form["output_mode"] == ["json"]
    terms = " OR ".join(f'"{cid}"' for cid in sorted(ids))
    assert form["search"] == [f"search index=vault ({terms})"]
    assert float(form["earliest_time"][0]) == (T0 - timedelta(minutes=1)).timestamp()
    assert float(form["latest_time"][0]) > (T0 + timedelta(minutes=5)).timestamp()
    assert sorted(e.correlation_id for e in events) == sorted(ids)


def test_events_carry_raw_json_fields_event_time_and_index_time(
    fake: FakeSplunk, connector: SplunkConnector
) -> None:
    fake.raw.append((audit_line("pp-r-login", "response", "auth/approle/login", T0), T0))

    (event,) = connector.search(query("pp-r-login"))

    assert event.fields["request.path"] == "auth/approle/login"
    assert event.fields["request.headers.x-correlation-id"] == "pp-r-login"
    assert event.fields["type"] == "response"
    assert event.time == T0
    assert event.ingested_at == T0 + timedelta(seconds=3)


def test_streamed_rows_are_all_read_and_previews_skipped(
    fake: FakeSplunk, server: SiemServer, connector: SplunkConnector
) -> None:
    # The export has no pages: every result streams in one reply, whatever its size.
    for n in range(250):
        fake.raw.append((audit_line(f"pp-r-s{n % 2}", "request", f"p/{n}", T0), T0))

    events = connector.search(query("pp-r-s0", "pp-r-s1"))

    assert len(server.seen) == 1
    assert len(events) == 250  # the preview row of the first result is not counted twice
    assert {e.fields["request.path"] for e in events} == {f"p/{n}" for n in range(250)}


def test_whole_ids_only_and_one_event_per_id_carried(fake: FakeSplunk, connector: SplunkConnector) -> None:
    fake.raw.append((audit_line("pp-r-login-2", "request", "a", T0), T0))
    both = json.dumps({"time": "2026-11-22T09:00:00Z", "note": "pp-r-login then pp-r-read"})
    fake.raw.append((both, T0))

    events = connector.search(query("pp-r-login", "pp-r-read"))

    assert sorted(e.correlation_id for e in events) == ["pp-r-login", "pp-r-read"]


def test_non_json_raw_uses_the_results_own_fields(fake: FakeSplunk, connector: SplunkConnector) -> None:
    fake.raw.append(("Nov 22 09:00:00 host app: request pp-r-x denied", T0))

    (event,) = connector.search(query("pp-r-x"))

    assert event.fields["sourcetype"] == "vault_audit"
    assert event.fields["_raw"].endswith("pp-r-x denied")


def test_sourcetype_is_quoted_into_the_search(
    server: SiemServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = settings(server.url, tmp_path, monkeypatch, sourcetype='vault "audit"').connect()
    conn.search(query("pp-a-b"))
    conn.close()

    assert server.seen[0].form()["search"] == ['search index=vault sourcetype="vault \\"audit\\"" ("pp-a-b")']


def test_nothing_found_is_an_empty_list(connector: SplunkConnector) -> None:
    assert connector.search(query("pp-none-here")) == []


def test_429_with_retry_after_is_throttled(server: SiemServer, connector: SplunkConnector) -> None:
    server.behaviour = lambda seen: Reply.json({"messages": []}, 429, **{"Retry-After": "17"})
    with pytest.raises(SiemThrottled) as caught:
        connector.search(query("pp-a-b"))
    assert caught.value.retry_after == 17
    assert caught.value.kind is ErrorKind.THROTTLED


def test_search_quota_503_with_retry_after_is_throttled(
    server: SiemServer, connector: SplunkConnector
) -> None:
    body = {"messages": [{"type": "FATAL", "text": "search quota exceeded"}]}
    server.behaviour = lambda seen: Reply.json(body, 503, **{"Retry-After": "5"})
    with pytest.raises(SiemThrottled) as caught:
        connector.search(query("pp-a-b"))
    assert caught.value.retry_after == 5


def test_refused_token_is_unavailable_without_the_token(
    server: SiemServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = settings(server.url, tmp_path, monkeypatch).connect()
    monkeypatch.setenv("PP_TEST_SPLUNK_TOKEN", "x")  # the connector holds the value it was given
    server.behaviour = lambda seen: Reply.json({"messages": [{"type": "WARN", "text": f"bad {TOKEN}"}]}, 401)
    with pytest.raises(SiemUnavailable) as caught:
        conn.search(query("pp-a-b"))
    conn.close()
    assert "401" in caught.value.reason
    assert caught.value.kind is ErrorKind.TARGET_ERROR
    assert not isinstance(caught.value, SiemThrottled)
    assert TOKEN not in caught.value.reason


@pytest.mark.parametrize("status", [403, 500, 502])
def test_refusals_and_server_errors_are_unavailable(
    server: SiemServer, connector: SplunkConnector, status: int
) -> None:
    server.behaviour = lambda seen: Reply(status, f"<html>{TOKEN}</html>".encode())
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-a-b"))
    assert str(status) in caught.value.reason
    assert TOKEN not in caught.value.reason


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'["a list"]\n', b'{"preview":false,"result":"text"}\n'],
    ids=["html", "not-an-object", "result-not-an-object"],
)
def test_malformed_body_is_unavailable(server: SiemServer, connector: SplunkConnector, body: bytes) -> None:
    server.behaviour = lambda seen: Reply(200, body)
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-a-b"))
    assert "malformed" in caught.value.reason


def test_failed_search_message_in_the_stream_is_unavailable(
    server: SiemServer, connector: SplunkConnector
) -> None:
    rows = [
        {
            "preview": False,
            "offset": 0,
            "result": {"_raw": "pp-a-b", "_time": "2026-11-22T09:00:00.000+00:00"},
        },
        {"messages": [{"type": "ERROR", "text": "Search results might be incomplete: peer down"}]},
    ]
    server.behaviour = lambda seen: Reply(200, "\n".join(json.dumps(r) for r in rows).encode())
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-a-b"))
    assert "ERROR" in caught.value.reason


def test_no_answer_within_the_timeout_is_a_timeout(server: SiemServer, connector: SplunkConnector) -> None:
    server.behaviour = lambda seen: Reply(hang=True)
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-a-b"))
    assert caught.value.kind is ErrorKind.TIMEOUT


def test_nothing_listening_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with siem_server() as gone:
        url = gone.url
    conn = settings(url, tmp_path, monkeypatch).connect()
    with pytest.raises(SiemUnavailable) as caught:
        conn.search(query("pp-a-b"))
    conn.close()
    assert caught.value.kind is ErrorKind.UNREACHABLE


def test_settings_never_show_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = settings("https://splunk:8089", tmp_path, monkeypatch)
    assert TOKEN not in repr(model)
    assert TOKEN not in str(model)
    assert TOKEN not in model.model_dump_json()


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "splunk:8089"},
        {"unknown": 1},
        {"token": "literal-token"},
        {"index": "vault OR index=*"},
        {"timeout_seconds": 0},
    ],
    ids=["base-url", "unknown-field", "literal-token", "index-injection", "timeout"],
)
def test_bad_settings_are_refused(change: dict[str, object]) -> None:
    data = {"type": "splunk", "base_url": "https://splunk:8089", "token": {"env": "T"}, "index": "vault"}
    with pytest.raises(ValidationError):
        SplunkSettings.model_validate({**data, **change})


def test_registered_as_a_connector_type() -> None:
    section = SiemSettings.model_validate(
        {
            "connectors": {
                "s": {
                    "type": "splunk",
                    "base_url": "https://splunk:8089/",
                    "token": {"env": "T"},
                    "index": "vault",
                }
            }
        }
    )
    model = section.settings_of("s")
    assert isinstance(model, SplunkSettings)
    assert model.base_url == "https://splunk:8089"
