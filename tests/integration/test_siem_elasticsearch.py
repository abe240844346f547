"""Contract tests of the ``elasticsearch`` connector against a loopback server speaking Elasticsearch's (and
OpenSearch's) search API: ``POST /<index>/_search`` with a ``bool`` filter (``range``, ``terms`` or
``query_string``), ``sort`` and ``search_after``; replies with ``took``, ``timed_out``, ``_shards`` and
``hits.hits[]`` (``_index``, ``_id``, ``_source``, ``sort``), errors as ``{"error": {...}, "status": n}`` —
as the Elasticsearch reference ("Search API", "Paginate search results") describes them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parityprobe.model import ErrorKind
from parityprobe.siem._http import basic_credentials
from parityprobe.siem.connector import SiemQuery, SiemThrottled, SiemUnavailable, parse_time
from parityprobe.siem.elasticsearch import ElasticsearchConnector, ElasticsearchSettings
from parityprobe.siem.settings import SiemSettings
from tests.siem_http_support import Reply, Seen, SiemServer, siem_server

pytestmark = pytest.mark.lab

API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
PASSWORD = "es-password-5d2e8a"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
INDEX = "vault-audit-*"


@dataclass(frozen=True)
class Doc:
    index: str
    id: str
    source: dict[str, Any]


def audit_doc(n: int, cid: str, at: datetime, **extra: Any) -> Doc:
    source = {
        "@timestamp": at.isoformat().replace("+00:00", "Z"),
        "type": "request",
        "request": {"path": f"secret/data/s{n}", "headers": {"x-correlation-id": [cid]}},
        **extra,
    }
    return Doc("vault-audit-2026.11.22", f"doc{n}", source)


def _dotted(source: dict[str, Any], name: str) -> Any:
    name = name.removesuffix(".keyword")
    value: Any = source
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class FakeElasticsearch:
    """``_search`` over a list of documents: the bool filter's range and ids clause, the sort on the time
    field then ``_doc`` (the document's position), ``search_after`` and ``size``."""

    def __init__(self) -> None:
        self.docs: list[Doc] = []
        self.auth = f"ApiKey {API_KEY}"

    def __call__(self, seen: Seen) -> Reply:
        if seen.method != "POST" or not seen.path.endswith("/_search"):
            return Reply(404)
        if seen.headers.get("authorization") != self.auth:
            error = {
                "type": "security_exception",
                "reason": "unable to authenticate with provided credentials",
            }
            return Reply.json({"error": {"root_cause": [error], **error}, "status": 401}, 401)
        body = seen.json()
        (time_sort, tie_sort) = body["sort"]
        time_field = next(iter(time_sort))
        assert list(tie_sort) == ["_doc"]
        window, ids_clause = body["query"]["bool"]["filter"]
        bounds = window["range"][time_field]
        since, until = parse_time(bounds["gte"]), parse_time(bounds["lte"])
        assert since is not None and until is not None
        hits = []
        for position, doc in enumerate(self.docs):
            at = parse_time(_dotted(doc.source, time_field))
            if at is None or not since <= at <= until or not self._matches(doc, ids_clause):
                continue
            hits.append(((int(at.timestamp() * 1000), position), doc))
        hits.sort(key=lambda hit: hit[0])
        if "search_after" in body:
            after = tuple(body["search_after"])
            hits = [hit for hit in hits if hit[0] > after]
        page = hits[: body["size"]]
        reply = {
            "took": 3,
            "timed_out": False,
            "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
            "hits": {
                "max_score": None,
                "hits": [
                    {"_index": d.index, "_id": d.id, "_score": None, "_source": d.source, "sort": list(key)}
                    for key, d in page
                ],
            },
        }
        return Reply.json(reply)

    @staticmethod
    def _matches(doc: Doc, clause: dict[str, Any]) -> bool:
        if "terms" in clause:
            ((field, values),) = clause["terms"].items()
            value = _dotted(doc.source, field)
            carried = value if isinstance(value, list) else [value]
            return any(v in values for v in carried)
        phrases = re.findall(r'"((?:[^"\\]|\\.)*)"', clause["query_string"]["query"])
        text = json.dumps(doc.source)
        return any(phrase in text for phrase in phrases)


@pytest.fixture
def fake() -> FakeElasticsearch:
    return FakeElasticsearch()


@pytest.fixture
def server(fake: FakeElasticsearch) -> Iterator[SiemServer]:
    with siem_server() as server:
        server.behaviour = fake
        yield server


def settings(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: object
) -> ElasticsearchSettings:
    monkeypatch.setenv("PP_TEST_ES_KEY", API_KEY)
    monkeypatch.setenv("PP_TEST_ES_PASSWORD", PASSWORD)
    data: dict[str, object] = {"type": "elasticsearch", "base_url": base_url, "index": INDEX}
    if "username" not in extra:
        data["api_key"] = {"env": "PP_TEST_ES_KEY"}
    model = ElasticsearchSettings.model_validate({**data, **extra})
    for ref in (model.api_key, model.password):
        if ref is not None:
            ref.resolve(tmp_path, "elasticsearch credential")
    return model


@pytest.fixture
def connector(
    server: SiemServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ElasticsearchConnector]:
    conn = settings(server.url, tmp_path, monkeypatch, timeout_seconds=0.5, page_size=3).connect()
    yield conn
    conn.close()


def query(*ids: str) -> SiemQuery:
    return SiemQuery(frozenset(ids), T0 - timedelta(minutes=1), T0 + timedelta(minutes=5))


def test_one_request_carries_every_id(
    fake: FakeElasticsearch, server: SiemServer, connector: ElasticsearchConnector
) -> None:
    ids = ["pp-run1-a", "pp-run1-b"]
    fake.docs += [audit_doc(0, ids[0], T0), audit_doc(1, ids[1], T0), audit_doc(2, "pp-other-a", T0)]

    events = connector.search(query(*ids))

    assert len(server.seen) == 1  # 2 hits < page_size 3: one page
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", f"/{INDEX}/_search")
    assert seen.headers["authorization"] == f"ApiKey {API_KEY}"
    body = seen.json()
    assert body["size"] == 3
    assert body["sort"] == [{"@timestamp": "asc"}, {"_doc": "asc"}]
    assert "search_after" not in body
    window, ids_clause = body["query"]["bool"]["filter"]
    assert parse_time(window["range"]["@timestamp"]["gte"]) == T0 - timedelta(minutes=1)
    assert parse_time(window["range"]["@timestamp"]["lte"]) == T0 + timedelta(minutes=5)
    assert ids_clause["query_string"]["query"] == '"pp-run1-a" OR "pp-run1-b"'
    assert sorted(e.correlation_id for e in events) == ids


def test_correlation_field_makes_a_terms_query(
    server: SiemServer, fake: FakeElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.docs += [audit_doc(0, "pp-r-a", T0), audit_doc(1, "pp-r-b", T0)]
    field = "request.headers.x-correlation-id.keyword"
    conn = settings(server.url, tmp_path, monkeypatch, correlation_field=field).connect()

    events = conn.search(query("pp-r-a", "pp-r-b"))
    conn.close()

    assert server.seen[0].json()["query"]["bool"]["filter"][1] == {"terms": {field: ["pp-r-a", "pp-r-b"]}}
    assert len(events) == 2


def test_pages_follow_search_after_until_a_short_page(
    fake: FakeElasticsearch, server: SiemServer, connector: ElasticsearchConnector
) -> None:
    fake.docs += [audit_doc(n, f"pp-r-{n % 2}", T0 + timedelta(seconds=n)) for n in range(5)]

    events = connector.search(query("pp-r-0", "pp-r-1"))

    assert len(server.seen) == 2
    first, second = (s.json() for s in server.seen)
    assert "search_after" not in first
    assert second["search_after"] == [int((T0 + timedelta(seconds=2)).timestamp() * 1000), 2]
    assert [e.fields["request.path"] for e in events] == [f"secret/data/s{n}" for n in range(5)]


def test_a_full_last_page_asks_once_more(
    fake: FakeElasticsearch, server: SiemServer, connector: ElasticsearchConnector
) -> None:
    fake.docs += [audit_doc(n, "pp-r-a", T0 + timedelta(seconds=n)) for n in range(6)]

    events = connector.search(query("pp-r-a"))

    assert len(server.seen) == 3  # 3 + 3 + an empty page
    assert len(events) == 6


def test_event_time_ingest_time_and_flattened_source(
    fake: FakeElasticsearch, connector: ElasticsearchConnector
) -> None:
    ingested = (T0 + timedelta(seconds=4)).isoformat()
    fake.docs.append(audit_doc(0, "pp-r-a", T0, event={"ingested": ingested}))

    (event,) = connector.search(query("pp-r-a"))

    assert event.time == T0
    assert event.ingested_at == T0 + timedelta(seconds=4)
    assert event.fields["request.headers.x-correlation-id"] == "pp-r-a"
    assert event.fields["type"] == "request"


def test_whole_ids_only(fake: FakeElasticsearch, connector: ElasticsearchConnector) -> None:
    fake.docs.append(audit_doc(0, "pp-r-a-2", T0))
    assert connector.search(query("pp-r-a")) == []


def test_basic_credentials(
    server: SiemServer, fake: FakeElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.auth = basic_credentials("parityprobe", PASSWORD)
    fake.docs.append(audit_doc(0, "pp-r-a", T0))
    model = settings(
        server.url, tmp_path, monkeypatch, username="parityprobe", password={"env": "PP_TEST_ES_PASSWORD"}
    )
    conn = model.connect()

    assert len(conn.search(query("pp-r-a"))) == 1
    conn.close()
    assert PASSWORD not in repr(model)


def test_shard_failures_are_no_answer(server: SiemServer, connector: ElasticsearchConnector) -> None:
    partial = {
        "took": 1,
        "timed_out": False,
        "_shards": {"total": 2, "successful": 1, "skipped": 0, "failed": 1},
        "hits": {"hits": []},
    }
    server.behaviour = lambda seen: Reply.json(partial)
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert "partial" in caught.value.reason


def test_429_with_retry_after_is_throttled(server: SiemServer, connector: ElasticsearchConnector) -> None:
    error = {"error": {"type": "es_rejected_execution_exception", "reason": "rejected"}, "status": 429}
    server.behaviour = lambda seen: Reply.json(error, 429, **{"Retry-After": "30"})
    with pytest.raises(SiemThrottled) as caught:
        connector.search(query("pp-r-a"))
    assert caught.value.retry_after == 30


def test_429_without_retry_after_is_throttled_without_a_delay(
    server: SiemServer, connector: ElasticsearchConnector
) -> None:
    server.behaviour = lambda seen: Reply.json({"status": 429}, 429)
    with pytest.raises(SiemThrottled) as caught:
        connector.search(query("pp-r-a"))
    assert caught.value.retry_after is None


def test_refused_credentials_are_unavailable(
    server: SiemServer, fake: FakeElasticsearch, connector: ElasticsearchConnector
) -> None:
    fake.auth = "ApiKey another"
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert not isinstance(caught.value, SiemThrottled)
    assert "401" in caught.value.reason
    assert API_KEY not in caught.value.reason


@pytest.mark.parametrize("status", [403, 500, 503])
def test_refusals_and_server_errors_are_unavailable(
    server: SiemServer, connector: ElasticsearchConnector, status: int
) -> None:
    server.behaviour = lambda seen: Reply.json(
        {"error": {"reason": f"echo {API_KEY}"}, "status": status}, status
    )
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert not isinstance(caught.value, SiemThrottled)
    assert str(status) in caught.value.reason
    assert API_KEY not in caught.value.reason


@pytest.mark.parametrize(
    "body",
    [b"<html>gateway</html>", b"[]", b'{"hits": {}}', b'{"hits": {"hits": [{"_id": "x", "sort": [1]}]}}'],
    ids=["html", "list", "no-hits-list", "no-source"],
)
def test_malformed_body_is_unavailable(
    server: SiemServer, connector: ElasticsearchConnector, body: bytes
) -> None:
    server.behaviour = lambda seen: Reply(200, body, {"Content-Type": "application/json"})
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert "malformed" in caught.value.reason


def test_a_full_page_without_sort_values_is_malformed(
    server: SiemServer, connector: ElasticsearchConnector
) -> None:
    hit = {"_index": "i", "_source": {"note": "pp-r-a"}}
    page = {"hits": {"hits": [{**hit, "_id": str(n)} for n in range(3)]}}
    server.behaviour = lambda seen: Reply.json(page)
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert "malformed" in caught.value.reason


def test_no_answer_within_the_timeout_is_a_timeout(
    server: SiemServer, connector: ElasticsearchConnector
) -> None:
    server.behaviour = lambda seen: Reply(hang=True)
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query("pp-r-a"))
    assert caught.value.kind is ErrorKind.TIMEOUT


def test_settings_never_show_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = settings("https://es:9200", tmp_path, monkeypatch)
    assert API_KEY not in repr(model)
    assert API_KEY not in model.model_dump_json()


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "es:9200"},
        {"unknown": 1},
        {"api_key": "literal"},
        {"username": "u"},
        {"username": "u", "password": {"env": "P"}, "api_key": {"env": "K"}},
        {"index": "logs/_delete_by_query?x"},
        {"page_size": 0},
        {"page_size": 10_001},
    ],
    ids=[
        "base-url",
        "unknown",
        "literal-key",
        "user-without-password",
        "both-credentials",
        "index",
        "page-0",
        "page-big",
    ],
)
def test_bad_settings_are_refused(change: dict[str, object]) -> None:
    data = {"type": "elasticsearch", "base_url": "https://es:9200", "index": INDEX}
    with pytest.raises(ValidationError):
        ElasticsearchSettings.model_validate({**data, **change})


def test_registered_as_a_connector_type() -> None:
    section = SiemSettings.model_validate(
        {"connectors": {"es": {"type": "elasticsearch", "base_url": "http://es:9200", "index": INDEX}}}
    )
    assert isinstance(section.settings_of("es"), ElasticsearchSettings)
