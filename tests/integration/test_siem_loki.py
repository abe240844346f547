"""Contract tests of the ``loki`` connector against a loopback server speaking Loki's HTTP API:
``GET /loki/api/v1/query_range`` with ``query`` (a stream selector and a ``|~`` line filter), ``start``
(inclusive) and ``end`` (exclusive) in nanoseconds, ``direction`` and ``limit`` (entries across all
streams); replies ``{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {labels},
"values": [["<ns>", "<line>"], ...]}], "stats": {}}}`` — as Loki's HTTP API reference describes them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from parityprobe.model import ErrorKind
from parityprobe.siem._http import basic_credentials
from parityprobe.siem.connector import SiemQuery, SiemThrottled, SiemUnavailable
from parityprobe.siem.loki import QUERY_RANGE_PATH, LokiConnector, LokiSettings, to_ns
from parityprobe.siem.settings import SiemSettings
from tests.siem_http_support import Reply, Seen, SiemServer, siem_server

pytestmark = pytest.mark.lab

TOKEN = "glc_loki-token-0a9b8c7d"
PASSWORD = "loki-password-31f2"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
NS0 = to_ns(T0)
SELECTOR = '{job="vault-audit"}'
VAULT = {"job": "vault-audit", "host": "vault-0"}
STREAMS = (
    b'{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {}, "values": %s}]}}'
)


def audit_line(cid: str, path: str, at: datetime) -> str:
    time = at.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"time": time, "type": "request", "request": {"path": path, "headers": {"x-correlation-id": [cid]}}}
    )


def go_string(literal: str) -> str:
    """A LogQL double-quoted string's value (Go's escapes for backslash and quote)."""
    return re.sub(r"\\(.)", r"\1", literal)


class FakeLoki:
    """``query_range`` over entries (labels, ns timestamp, line): equality matchers of the selector, the
    ``|~`` regex, ``start`` ≤ ts < ``end``, forward order, the first ``limit`` entries of all streams."""

    def __init__(self) -> None:
        self.entries: list[tuple[dict[str, str], int, str]] = []
        self.auth: str | None = f"Bearer {TOKEN}"

    def __call__(self, seen: Seen) -> Reply:
        if seen.method != "GET" or seen.path != QUERY_RANGE_PATH:
            return Reply(404)
        if self.auth is not None and seen.headers.get("authorization") != self.auth:
            return Reply(401, b"no org id / bad credentials\n", {"Content-Type": "text/plain"})
        params = {name: values[0] for name, values in seen.params.items()}
        match = re.fullmatch(r'(\{.*\}) \|~ "((?:[^"\\]|\\.)*)"', params["query"])
        if match is None:
            return Reply(400, b"parse error\n")
        matchers = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        line_filter = re.compile(go_string(match.group(2)))
        start, end, limit = int(params["start"]), int(params["end"]), int(params["limit"])
        assert params["direction"] == "forward"
        picked = sorted(
            (
                (ts, n, labels, line)
                for n, (labels, ts, line) in enumerate(self.entries)
                if all(labels.get(k) == v for k, v in matchers.items())
                and start <= ts < end
                and line_filter.search(line)
            ),
            key=lambda entry: (entry[0], entry[1]),
        )[:limit]
        streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for ts, _, labels, line in picked:
            streams.setdefault(tuple(sorted(labels.items())), []).append([str(ts), line])
        result = [{"stream": dict(key), "values": values} for key, values in streams.items()]
        return Reply.json(
            {"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}}
        )


@pytest.fixture
def fake() -> FakeLoki:
    return FakeLoki()


@pytest.fixture
def server(fake: FakeLoki) -> Iterator[SiemServer]:
    with siem_server() as server:
        server.behaviour = fake
        yield server


def settings(base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: object) -> LokiSettings:
    monkeypatch.setenv("PP_TEST_LOKI_TOKEN", TOKEN)
    monkeypatch.setenv("PP_TEST_LOKI_PASSWORD", PASSWORD)
    data: dict[str, object] = {"type": "loki", "base_url": base_url, "selector": SELECTOR}
    if "username" not in extra:
        data["token"] = {"env": "PP_TEST_LOKI_TOKEN"}
    model = LokiSettings.model_validate({**data, **extra})
    for ref in (model.token, model.password):
        if ref is not None:
            ref.resolve(tmp_path, "loki credential")
    return model


@pytest.fixture
def connector(server: SiemServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LokiConnector]:
    conn = settings(
        server.url, tmp_path, monkeypatch, timeout_seconds=0.5, limit=3, tenant="platform"
    ).connect()
    yield conn
    conn.close()


def query(*ids: str) -> SiemQuery:
    return SiemQuery(frozenset(ids), T0 - timedelta(minutes=1), T0 + timedelta(minutes=5))


def test_one_request_carries_every_id(fake: FakeLoki, server: SiemServer, connector: LokiConnector) -> None:
    ids = ["pp-run1.x-a", "pp-run1.x-b"]
    fake.entries += [
        (VAULT, NS0 + 1, audit_line(ids[0], "a", T0)),
        (VAULT, NS0 + 2, audit_line(ids[1], "b", T0)),
        (VAULT, NS0 + 3, audit_line("pp-run1Xx-a", "c", T0)),  # the escaped dot matches only a dot
        ({"job": "other"}, NS0 + 4, audit_line(ids[0], "d", T0)),
    ]

    events = connector.search(query(*ids))

    assert len(server.seen) == 1
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("GET", QUERY_RANGE_PATH)
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-scope-orgid"] == "platform"
    params = {name: values[0] for name, values in seen.params.items()}
    assert params["query"] == '{job="vault-audit"} |~ "pp\\\\-run1\\\\.x\\\\-a|pp\\\\-run1\\\\.x\\\\-b"'
    assert params["direction"] == "forward"
    assert params["limit"] == "3"
    assert int(params["start"]) == to_ns(T0 - timedelta(minutes=1))
    assert int(params["end"]) == to_ns(T0 + timedelta(minutes=5)) + 1
    assert sorted(e.fields["request.path"] for e in events) == ["a", "b"]


def test_pages_move_start_to_the_last_timestamp_and_drop_repeats(
    fake: FakeLoki, server: SiemServer, connector: LokiConnector
) -> None:
    other = {"job": "vault-audit", "host": "vault-1"}
    fake.entries += [
        (VAULT, NS0 + 1, audit_line("pp-r-a", "p1", T0)),
        (VAULT, NS0 + 2, audit_line("pp-r-a", "p2", T0)),
        (VAULT, NS0 + 3, audit_line("pp-r-a", "p3", T0)),
        (other, NS0 + 3, audit_line("pp-r-b", "p3-other-stream", T0)),  # same ns as the page's last
        (other, NS0 + 4, audit_line("pp-r-b", "p4", T0)),
    ]

    events = connector.search(query("pp-r-a", "pp-r-b"))

    starts = [int(s.params["start"][0]) for s in server.seen]
    assert starts == [to_ns(T0 - timedelta(minutes=1)), NS0 + 3, NS0 + 4]
    assert sorted(e.fields["request.path"] for e in events) == ["p1", "p2", "p3", "p3-other-stream", "p4"]


def test_more_than_a_page_at_one_nanosecond_moves_on(
    fake: FakeLoki, server: SiemServer, connector: LokiConnector
) -> None:
    fake.entries += [(VAULT, NS0 + 1, audit_line("pp-r-a", "p0", T0))]
    fake.entries += [(VAULT, NS0 + 5, audit_line("pp-r-a", f"dense{n}", T0)) for n in range(4)]
    fake.entries += [(VAULT, NS0 + 6, audit_line("pp-r-a", "after", T0))]

    events = connector.search(query("pp-r-a"))

    paths = sorted(e.fields["request.path"] for e in events)
    # The documented limit: of 4 entries sharing one ns, only the first `limit` (3) are seen.
    assert paths == ["after", "dense0", "dense1", "dense2", "p0"]
    starts = [int(s.params["start"][0]) for s in server.seen]
    assert starts == [to_ns(T0 - timedelta(minutes=1)), NS0 + 5, NS0 + 5, NS0 + 6]


def test_line_time_labels_and_plain_lines(fake: FakeLoki, connector: LokiConnector) -> None:
    fake.entries += [
        (VAULT, NS0 + 9_000_000_000, audit_line("pp-r-a", "json", T0)),
        (VAULT, NS0 + 2_000_000_000, "level=warn msg=denied id=pp-r-b"),
    ]

    events = {e.correlation_id: e for e in connector.search(query("pp-r-a", "pp-r-b"))}

    assert events["pp-r-a"].time == T0  # the line's own time, not the entry's timestamp
    assert events["pp-r-a"].fields["labels.host"] == "vault-0"
    assert events["pp-r-a"].ingested_at is None
    assert events["pp-r-b"].time == T0 + timedelta(seconds=2)
    assert events["pp-r-b"].fields["line"] == "level=warn msg=denied id=pp-r-b"


def test_whole_ids_only(fake: FakeLoki, connector: LokiConnector) -> None:
    fake.entries.append((VAULT, NS0, audit_line("pp-r-a-2", "x", T0)))
    assert connector.search(query("pp-r-a")) == []


def test_basic_credentials(
    server: SiemServer, fake: FakeLoki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.auth = basic_credentials("123456", PASSWORD)
    fake.entries.append((VAULT, NS0, audit_line("pp-r-a", "x", T0)))
    model = settings(
        server.url, tmp_path, monkeypatch, username="123456", password={"env": "PP_TEST_LOKI_PASSWORD"}
    )
    conn = model.connect()

    assert len(conn.search(query("pp-r-a"))) == 1
    conn.close()
    assert "x-scope-orgid" not in server.seen[0].headers
    assert PASSWORD not in repr(model)


@pytest.mark.parametrize("retry_after", ["12", "Sun, 22 Nov 2099 09:00:00 GMT"], ids=["seconds", "http-date"])
def test_429_with_retry_after_is_throttled(
    server: SiemServer, connector: LokiConnector, retry_after: str
) -> None:
    server.behaviour = lambda seen: Reply(
        429, b"Ingestion rate limit exceeded\n", {"Retry-After": retry_after}
    )
    with pytest.raises(SiemThrottled) as caught:
        connector.search(query("pp-r-a"))
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 12


def test_refused_credentials_are_unavailable(
    server: SiemServer, fake: FakeLoki, connector: LokiConnector
) -> None:
    fake.auth = "Bearer another"
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert not isinstance(caught.value, SiemThrottled)
    assert "401" in caught.value.reason
    assert TOKEN not in caught.value.reason


@pytest.mark.parametrize("status", [403, 500, 504])
def test_refusals_and_server_errors_are_unavailable(
    server: SiemServer, connector: LokiConnector, status: int
) -> None:
    server.behaviour = lambda seen: Reply(status, f"error: {TOKEN}".encode())
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert str(status) in caught.value.reason
    assert TOKEN not in caught.value.reason


@pytest.mark.parametrize(
    "body",
    [
        b"parse error at line 1",
        b'{"status": "error", "error": "x"}',
        b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
        STREAMS % b'[["x", "line"]]',
        STREAMS % b'[["1"]]',
    ],
    ids=["text", "status-error", "matrix", "bad-timestamp", "short-entry"],
)
def test_malformed_body_is_unavailable(server: SiemServer, connector: LokiConnector, body: bytes) -> None:
    server.behaviour = lambda seen: Reply(200, body, {"Content-Type": "application/json"})
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert "malformed" in caught.value.reason


def test_no_answer_within_the_timeout_is_a_timeout(server: SiemServer, connector: LokiConnector) -> None:
    server.behaviour = lambda seen: Reply(hang=True)
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert caught.value.kind is ErrorKind.TIMEOUT


def test_settings_never_show_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = settings("https://loki:3100", tmp_path, monkeypatch)
    assert TOKEN not in repr(model)
    assert TOKEN not in model.model_dump_json()


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "loki:3100"},
        {"unknown": 1},
        {"token": "literal"},
        {"selector": 'job="vault"'},
        {"tenant": "a\r\nX-Evil: 1"},
        {"username": "u"},
        {"username": "u", "password": {"env": "P"}, "token": {"env": "T"}},
        {"limit": 0},
    ],
    ids=["base-url", "unknown", "literal-token", "selector", "tenant", "user-alone", "both", "limit"],
)
def test_bad_settings_are_refused(change: dict[str, object]) -> None:
    data = {"type": "loki", "base_url": "https://loki:3100", "selector": SELECTOR}
    with pytest.raises(ValidationError):
        LokiSettings.model_validate({**data, **change})


def test_registered_as_a_connector_type() -> None:
    section = SiemSettings.model_validate(
        {"connectors": {"l": {"type": "loki", "base_url": "http://loki:3100", "selector": SELECTOR}}}
    )
    assert isinstance(section.settings_of("l"), LokiSettings)
