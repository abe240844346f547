"""The ``sentinel`` connector against a loopback server speaking the Azure Monitor Log Analytics query API
and the Microsoft identity platform's token endpoint.

The fake follows the documented contract (learn.microsoft.com, "Log Analytics API: Query - Execute",
"Azure Monitor Log Analytics API response format", "OAuth 2.0 client credentials flow"):

- ``POST /v1/workspaces/<id>/query`` with ``Authorization: Bearer <token>`` (401 without one, 403 with one
  it did not issue, 404 for another workspace; errors are OneAPI objects ``{"error": {"code", "message"}}``)
  and ``{"query": KQL, "timespan": "<start>/<end>"}``. It runs the one KQL shape the connector sends —
  ``T | where C between (datetime(a) .. datetime(b)) | where K in ('x', …) [| extend N = ingestion_time()]
  | order by C asc`` — with KQL's string-literal escapes, and refuses anything else (400
  ``BadArgumentError``).
  The reply is ``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[…]]}]}``,
  ``dynamic`` values as JSON text; past its row limit, the first rows and ``"error": {"code":
  "PartialError", …}``, as the API does when a result is cut short.
- ``POST /<tenant>/oauth2/v2.0/token``, form ``grant_type=client_credentials``, ``client_id``,
  ``client_secret``, ``scope``: ``{"token_type": "Bearer", "expires_in", "ext_expires_in",
  "access_token"}``, or 401 ``{"error": "invalid_client", "error_description": …}``.
"""

from __future__ import annotations

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
from parityprobe.siem.sentinel import SentinelSettings, kql_string
from parityprobe.siem.settings import SiemRegistry
from tests.siem_http_support import Reply, Seen, SiemServer, siem_server

pytestmark = pytest.mark.lab

WORKSPACE = "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a"
TOKEN = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
CLIENT_SECRET = "cs~" + secrets.token_urlsafe(24)
SCOPE = "https://api.loganalytics.io/.default"
SINCE = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 22, 9, 10, tzinfo=UTC)
COLUMNS = [
    ("TimeGenerated", "datetime"),
    ("CorrelationId_s", "string"),
    ("OperationName_s", "string"),
    ("Properties_d", "dynamic"),
    ("RawData", "string"),
]
_STRING = r"'(?:[^'\\]|\\.)*'"
_QUERY = re.compile(
    r"(?P<table>\w+) \| where (?P<time>\w+)"
    r" between \(datetime\((?P<since>[^)]+)\) \.\. datetime\((?P<until>[^)]+)\)\)"
    rf" \| where (?P<corr>\w+) in \((?P<ids>{_STRING}(?:, {_STRING})*)\)"
    r"(?P<extend> \| extend (?P<ingested>\w+) = ingestion_time\(\))?"
    r" \| order by (?P<order>\w+) asc"
)
_UNESCAPE = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", '"': '"'}


@dataclass
class Row:
    at: int  # seconds into the window
    correlation_id: str
    operation: str
    properties: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    ingested_after: int = 30


@dataclass
class FakeWorkspace:
    """One workspace's ``VaultAudit_CL`` table, the tokens it accepts, and an Entra ID tenant issuing them."""

    rows: list[Row] = field(default_factory=list)
    accepted: set[str] = field(default_factory=lambda: {TOKEN})
    row_limit: int = 500_000
    issued: int = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == f"/{TENANT}/oauth2/v2.0/token" and seen.method == "POST":
            return self._token(seen)
        if seen.method != "POST" or not seen.path.startswith("/v1/workspaces/"):
            return _error(404, "PathNotFoundError")
        auth = seen.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "AuthorizationRequiredError")
        if auth.removeprefix("Bearer ") not in self.accepted:
            return _error(403, "InvalidTokenError")
        if seen.path != f"/v1/workspaces/{WORKSPACE}/query":
            return _error(404, "WorkspaceNotFoundError")
        return self._query(seen.json())

    def _token(self, seen: Seen) -> Reply:
        form = {k: v[0] for k, v in seen.form().items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            # The description echoes what it was sent, as error pages may: never repeated by the connector.
            text = f"AADSTS7000215: Invalid client secret provided: {form.get('client_secret')}"
            return Reply.json({"error": "invalid_client", "error_description": text}, 401)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return Reply.json({"error": "invalid_request", "error_description": "AADSTS900144"}, 400)
        self.issued += 1
        token = f"issued-{self.issued}-" + secrets.token_urlsafe(16)
        self.accepted.add(token)
        reply = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        return Reply.json(reply)

    def _query(self, body: dict[str, Any]) -> Reply:
        found = _QUERY.fullmatch(body.get("query", ""))
        if found is None or found["table"] != "VaultAudit_CL" or found["time"] != found["order"]:
            return _error(400, "BadArgumentError")
        if body.get("timespan") != f"{found['since']}/{found['until']}":
            return _error(400, "BadArgumentError")
        since, until = _time(found["since"]), _time(found["until"])
        wanted = {_unquote(text) for text in re.findall(_STRING, found["ids"])}
        names = [name for name, _ in COLUMNS]
        if found["time"] not in names or found["corr"] not in names:
            return _error(400, "SemanticError")
        rows = sorted(
            (
                r
                for r in self.rows
                if since <= SINCE + timedelta(seconds=r.at) <= until and r.correlation_id in wanted
            ),
            key=lambda r: r.at,
        )
        columns = [{"name": name, "type": kind} for name, kind in COLUMNS]
        if found["extend"]:
            columns.append({"name": found["ingested"], "type": "datetime"})
        table = {
            "name": "PrimaryResult",
            "columns": columns,
            "rows": [self._cells(r, found["extend"]) for r in rows],
        }
        reply: dict[str, Any] = {"tables": [table]}
        if len(rows) > self.row_limit:
            table["rows"] = table["rows"][: self.row_limit]
            reply["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [
                    {"code": "EngineError", "message": "Query result set has exceeded the internal limit"}
                ],
            }
        return Reply.json(reply)

    @staticmethod
    def _cells(row: Row, with_ingestion: str | None) -> list[Any]:
        at = SINCE + timedelta(seconds=row.at)
        cells: list[Any] = [
            _stamp(at),
            row.correlation_id,
            row.operation,
            json.dumps(row.properties),
            row.raw,
        ]
        if with_ingestion:
            cells.append(_stamp(at + timedelta(seconds=row.ingested_after)))
        return cells


def _error(status: int, code: str) -> Reply:
    return Reply.json(
        {"error": {"code": code, "message": f"{code} for this request", "innererror": {}}}, status
    )


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE[m.group(1)], literal[1:-1])


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # the API's 7 fractional digits


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_LA_TOKEN", TOKEN)
    monkeypatch.setenv("PP_TEST_LA_SECRET", CLIENT_SECRET)


@pytest.fixture
def server() -> Iterator[SiemServer]:
    with siem_server() as running:
        yield running


def settings(url: str, **extra: Any) -> SentinelSettings:
    data: dict[str, Any] = {
        "type": "sentinel",
        "workspace_id": WORKSPACE,
        "base_url": url,
        "table": "VaultAudit_CL",
        "correlation_column": "CorrelationId_s",
        "token": {"env": "PP_TEST_LA_TOKEN"},
    }
    data.update(extra)
    result = SentinelSettings.model_validate({k: v for k, v in data.items() if v is not None})
    for ref in (result.token, result.client_secret):
        if ref is not None:
            ref.resolve(Path("."), "secret")
    return result


def client_credentials(url: str, **extra: Any) -> SentinelSettings:
    return settings(
        url,
        token=None,
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        client_secret={"env": "PP_TEST_LA_SECRET"},
        authority_url=url,
        **extra,
    )


def query(ids: set[str]) -> SiemQuery:
    return SiemQuery(frozenset(ids), SINCE, UNTIL)


def search(server: SiemServer, ids: set[str], **extra: Any) -> list[Any]:
    connector = settings(server.url, **extra).connect()
    try:
        connector.begin()
        return list(connector.search(query(ids)))
    finally:
        connector.close()


def failure(server: SiemServer, reply: Reply, **extra: Any) -> SiemUnavailable:
    server.behaviour = lambda seen: reply
    with pytest.raises(SiemUnavailable) as caught:
        search(server, {"pp-r1-login"}, **extra)
    assert_no_secret(str(caught.value), repr(caught.value))
    return caught.value


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and CLIENT_SECRET not in text and "issued-" not in text


AUDIT = {"type": "response", "request": {"path": "auth/approle/login", "operation": "update"}}


def test_one_query_for_every_id(server: SiemServer) -> None:
    fake = FakeWorkspace(
        [
            Row(10, "pp-r1-login", "login", {"policies": ["default", "payments"]}, json.dumps(AUDIT)),
            Row(20, "pp-r1-read", "read", {"error": "permission denied"}, ingested_after=95),
            Row(30, "pp-r2-login", "login"),
            Row(900, "pp-r1-login", "late"),
        ]
    )
    server.behaviour = fake
    events = search(server, {"pp-r1-read", "pp-r1-login"}, record_column="RawData")

    assert len(server.seen) == 1
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", f"/v1/workspaces/{WORKSPACE}/query")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    since, until = "2026-11-22T09:00:00.000000Z", "2026-11-22T09:10:00.000000Z"
    assert seen.json() == {
        "query": f"VaultAudit_CL | where TimeGenerated between (datetime({since}) .. datetime({until}))"
        " | where CorrelationId_s in ('pp-r1-login', 'pp-r1-read')"
        " | extend _ingested = ingestion_time() | order by TimeGenerated asc",
        "timespan": f"{since}/{until}",
    }
    assert [(e.correlation_id, e.time, e.ingested_at) for e in events] == [
        ("pp-r1-login", SINCE + timedelta(seconds=10), SINCE + timedelta(seconds=40)),
        ("pp-r1-read", SINCE + timedelta(seconds=20), SINCE + timedelta(seconds=115)),
    ]
    login, read = events
    assert login.fields["Properties_d.policies"] == "default,payments"
    assert login.fields["request.path"] == "auth/approle/login"  # the record column, at the top
    assert login.fields["OperationName_s"] == "login"
    assert "_ingested" not in login.fields
    assert read.fields["Properties_d.error"] == "permission denied"


def test_without_ingestion_time(server: SiemServer) -> None:
    server.behaviour = FakeWorkspace([Row(10, "pp-r1-login", "login")])
    events = search(server, {"pp-r1-login"}, ingestion_time=False)
    assert "ingestion_time" not in server.seen[0].json()["query"]
    assert [(e.correlation_id, e.ingested_at) for e in events] == [("pp-r1-login", None)]


def test_ids_are_escaped_kql_literals(server: SiemServer) -> None:
    odd = "pp-r1-o'brien\\x"
    server.behaviour = FakeWorkspace([Row(10, odd, "login"), Row(11, "pp-r1-o", "login")])
    events = search(server, {odd, "') | take 1 //"})
    assert "in ('\\') | take 1 //', 'pp-r1-o\\'brien\\\\x')" in server.seen[0].json()["query"]
    assert [e.correlation_id for e in events] == [odd]
    assert kql_string("a\tb\nc\rd") == "'a\\tb\\nc\\rd'"


def test_client_credentials_token_got_once_and_renewed_when_refused(server: SiemServer) -> None:
    fake = FakeWorkspace([Row(10, "pp-r1-login", "login")])
    server.behaviour = fake
    configured = client_credentials(server.url)
    connector = configured.connect()
    try:
        assert len(connector.search(query({"pp-r1-login"}))) == 1
        assert len(connector.search(query({"pp-r1-login"}))) == 1
        token_request, first, second = server.seen
        assert (token_request.method, token_request.path) == ("POST", f"/{TENANT}/oauth2/v2.0/token")
        assert token_request.form() == {
            "grant_type": ["client_credentials"],
            "client_id": [CLIENT_ID],
            "client_secret": [CLIENT_SECRET],
            "scope": [SCOPE],
        }
        issued = first.headers["authorization"]
        assert issued.startswith("Bearer issued-1-")
        assert second.headers["authorization"] == issued

        fake.accepted.clear()  # the token is revoked: the next search after the refusal gets a new one
        with pytest.raises(SiemUnavailable, match="HTTP 403"):
            connector.search(query({"pp-r1-login"}))
        assert len(connector.search(query({"pp-r1-login"}))) == 1
        assert server.seen[-2].path == f"/{TENANT}/oauth2/v2.0/token"
        assert server.seen[-1].headers["authorization"].startswith("Bearer issued-2-")
        assert_no_secret(repr(configured), repr(connector), str(configured))
    finally:
        connector.close()


def test_wrong_client_secret_is_no_answer(server: SiemServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.behaviour = FakeWorkspace()
    monkeypatch.setenv("PP_TEST_LA_SECRET", "wrong-" + CLIENT_SECRET)
    connector = client_credentials(server.url).connect()
    with pytest.raises(SiemUnavailable) as caught:
        connector.search(query({"pp-r1-login"}))
    connector.close()
    assert "HTTP 401" in caught.value.reason
    assert_no_secret(str(caught.value), repr(caught.value))
    assert [seen.path for seen in server.seen] == [f"/{TENANT}/oauth2/v2.0/token"]


def test_throttled_with_retry_after(server: SiemServer) -> None:
    exc = failure(server, Reply.json({"error": {"code": "ThrottledError"}}, 429, **{"Retry-After": "9"}))
    assert isinstance(exc, SiemThrottled)
    assert exc.retry_after == 9


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_no_answer(server: SiemServer, status: int) -> None:
    exc = failure(server, Reply.json({"error": {"code": "InvalidTokenError", "message": TOKEN}}, status))
    assert not isinstance(exc, SiemThrottled)
    assert f"HTTP {status}" in exc.reason


def test_the_fake_refuses_a_token_it_did_not_issue(
    server: SiemServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.behaviour = FakeWorkspace()
    monkeypatch.setenv("PP_TEST_LA_TOKEN", "some-other-token")
    with pytest.raises(SiemUnavailable, match="HTTP 403"):
        search(server, {"pp-r1-login"})


def test_server_error_is_no_answer(server: SiemServer) -> None:
    exc = failure(server, Reply.json({"error": {"code": "InternalServerError"}}, 500))
    assert exc.kind is ErrorKind.TARGET_ERROR


def test_partial_answer_is_no_answer(server: SiemServer) -> None:
    """A result cut at the row limit comes with its first rows: never taken for the whole answer."""
    server.behaviour = FakeWorkspace([Row(i, "pp-r1-login", "login") for i in range(3)], row_limit=2)
    with pytest.raises(SiemUnavailable) as caught:
        search(server, {"pp-r1-login"})
    assert "PartialError" in caught.value.reason


@pytest.mark.parametrize(
    "body",
    [
        {"tables": []},
        {
            "tables": [
                {"name": "PrimaryResult", "columns": [{"name": "CorrelationId_s"}], "rows": [["a", "b"]]}
            ]
        },
        {"tables": [{"name": "PrimaryResult", "columns": [{"name": "Other"}], "rows": []}]},
        {"tables": [{"name": "PrimaryResult", "columns": [{"type": "string"}], "rows": []}]},
        {"tables": [{"name": "PrimaryResult", "columns": "x", "rows": []}]},
        ["not", "an", "object"],
    ],
)
def test_malformed_reply_is_no_answer(server: SiemServer, body: Any) -> None:
    assert "malformed" in failure(server, Reply.json(body)).reason


def test_not_json_is_no_answer(server: SiemServer) -> None:
    exc = failure(server, Reply(200, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}))
    assert exc.kind is ErrorKind.TARGET_ERROR


def test_no_answer_within_the_timeout(server: SiemServer) -> None:
    exc = failure(server, Reply(hang=True), timeout_seconds=0.3)
    assert exc.kind is ErrorKind.TIMEOUT


def test_registered() -> None:
    assert SiemRegistry().load("sentinel") is SentinelSettings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"table": "VaultAudit_CL | take 1"}, "table"),
        ({"correlation_column": "Corr Id"}, "correlation_column"),
        ({"time_column": "1Time"}, "time_column"),
        ({"record_column": "Raw-Data"}, "record_column"),
        ({"workspace_id": "../other"}, "workspace_id"),
        ({"base_url": "api.loganalytics.io"}, "http://"),
        ({"token": TOKEN}, "never a literal"),
        ({"token": None}, "give token, or all of"),
        ({"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": {"env": "X"}}, "not both"),
        ({"token": None, "tenant_id": TENANT, "client_secret": {"env": "X"}}, "give token, or all of"),
        ({"token": None, "tenant_id": "a/b", "client_id": "c", "client_secret": {"env": "X"}}, "tenant_id"),
        ({"authority_url": "login.microsoftonline.com"}, "http://"),
        ({"row_limit": 10}, "row_limit"),
    ],
)
def test_settings_validation(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {
        "type": "sentinel",
        "workspace_id": WORKSPACE,
        "table": "VaultAudit_CL",
        "correlation_column": "CorrelationId_s",
        "token": {"env": "A"},
    }
    data.update(change)
    with pytest.raises(ValidationError) as caught:
        SentinelSettings.model_validate({k: v for k, v in data.items() if v is not None})
    assert message in str(caught.value)
