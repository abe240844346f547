"""The ``cloudwatch_logs`` connector against a moto server with IAM enforcement on, and against faulty
loopback endpoints (a throttling reply, a proxy's pages, a socket that never answers, a stopped server).

Every search's FilterLogEvents requests are counted with a botocore ``before-call`` hook on the connector's
own client: one query per search, one request per page, every page followed.
"""

from __future__ import annotations

import inspect
import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from botocore.parsers import ResponseParserError

from parityprobe.model import ErrorKind
from parityprobe.probes.aws.settings import AwsAssumeRoleCredentials, AwsStaticCredentials
from parityprobe.siem._cloudwatch import CloudWatchLogsConnector, filter_pattern, known_classes, translate
from parityprobe.siem.cloudwatch_logs import CloudWatchLogsSettings
from parityprobe.siem.connector import SiemEvent, SiemQuery, SiemThrottled, SiemUnavailable
from parityprobe.siem.settings import SiemSettings
from tests.aws_support import (
    ACCOUNT,
    ALLOW_ALL,
    REGION,
    Key,
    bootstrap_client,
    enforce,
    key_client,
    moto_server,
    seed_users,
    static_credentials,
)
from tests.fault_server import Reply, fault_server, silent_endpoint

pytestmark = pytest.mark.lab

GROUP = "/pp/audit"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/siem-reader"
NOW = datetime.now(UTC).replace(microsecond=0)
SINCE, UNTIL = NOW - timedelta(minutes=10), NOW + timedelta(minutes=1)
ASKED = frozenset({"pp-r1-login", "pp-r1-read", "pp-r1-denied"})
PAGE_SIZE = 3
FILTER_LOGS = [{"Effect": "Allow", "Action": "logs:FilterLogEvents", "Resource": "*"}]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _record(n: int, cid: str, *, time: datetime | None = None) -> str:
    record: dict[str, Any] = {"n": n, "request": {"id": f"req-{n}", "headers": {"x-correlation-id": [cid]}}}
    if time is not None:
        record["time"] = time.isoformat().replace("+00:00", "Z")
    return json.dumps(record)


# (stream, CloudWatch timestamp, message): every id asked for, more than one page of them, and around them
# what must not come back: ids not asked for (one a longer id starting with an asked one), another run's id,
# an asked id before the window.
EVENTS: list[tuple[str, datetime, str]] = [
    (
        "vault",
        NOW - timedelta(minutes=5, seconds=n),
        _record(n, cid, time=NOW - timedelta(minutes=6, seconds=n)),
    )
    for n, cid in enumerate(["pp-r1-login", "pp-r1-read", "pp-r1-denied", "pp-r1-login", "pp-r1-read"])
] + [
    ("vault", NOW - timedelta(minutes=4), _record(10, "pp-r1-denied")),  # no time field: the event's
    ("vault", NOW - timedelta(minutes=4), _record(11, "pp-r1-other")),
    ("vault", NOW - timedelta(minutes=4), _record(12, "pp-r1-login-2")),
    ("vault", NOW - timedelta(minutes=4), _record(13, "pp-r2-login")),
    ("vault", NOW - timedelta(minutes=30), _record(14, "pp-r1-login")),  # before the window
    ("app", NOW - timedelta(minutes=3), "WARN access denied for pp-r1-denied on billing/db"),
    ("app", NOW - timedelta(minutes=3), _record(15, "pp-r1-read")),
    ("app", NOW - timedelta(minutes=3), "nothing to see"),
]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Key]]]:
    """A moto server with the log group seeded, users ``reader`` (logs:FilterLogEvents), ``outsider``
    (none of it), ``assumer`` (may assume role ``siem-reader``, which may search), then enforcement on."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        keys = seed_users(
            server.url,
            {
                "admin": ALLOW_ALL,
                "reader": FILTER_LOGS,
                "outsider": [{"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"}],
                "assumer": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE}],
            },
        )
        iam = bootstrap_client(server.url, "iam")
        trust = {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/assumer"},
            "Action": "sts:AssumeRole",
        }
        iam.create_role(
            RoleName="siem-reader",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
        )
        iam.put_role_policy(
            RoleName="siem-reader",
            PolicyName="p",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": FILTER_LOGS}),
        )
        enforce(server.url)
        logs = key_client(server.url, keys["admin"], "logs")
        logs.create_log_group(logGroupName=GROUP)
        for stream in ("vault", "app"):
            logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
            batch = [{"timestamp": _ms(t), "message": m} for s, t, m in EVENTS if s == stream]
            logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=sorted(batch, key=_stamp))
        yield server.url, keys


def _stamp(event: dict[str, Any]) -> int:
    return int(event["timestamp"])


def _settings(folder: Path, url: str, key: Key, **fields: Any) -> CloudWatchLogsSettings:
    """Settings reaching ``url`` as ``key`` (from files in ``folder``), their references resolved."""
    data: dict[str, Any] = {
        "type": "cloudwatch_logs",
        "log_group": GROUP,
        "region": REGION,
        "endpoint_url": url,
        "credentials": static_credentials(folder, key, "key"),
        **fields,
    }
    settings = CloudWatchLogsSettings.model_validate(data)
    credentials = settings.credentials
    if isinstance(credentials, AwsAssumeRoleCredentials):
        credentials = credentials.source
    assert isinstance(credentials, AwsStaticCredentials)
    credentials.access_key_id.resolve(folder, "aws access key id")
    credentials.secret_access_key.resolve(folder, "aws secret access key")
    return settings


def _count_requests(connector: CloudWatchLogsConnector) -> list[dict[str, Any]]:
    """The parameters of every FilterLogEvents request the connector's client sends from now on (each call's
    parameters, checked to be one HTTP request each)."""
    calls: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def send(**_: Any) -> None:
        sent.append(calls[-1])

    events = connector.client().meta.events
    events.register("before-parameter-build.cloudwatch-logs.FilterLogEvents", record)
    events.register("before-send.cloudwatch-logs.FilterLogEvents", send)
    return sent


def _search(settings: CloudWatchLogsSettings, ids: frozenset[str] = ASKED) -> list[SiemEvent]:
    connector = settings.connect()
    try:
        return list(connector.search(SiemQuery(ids, SINCE, UNTIL)))
    finally:
        connector.close()


def _expected(ids: frozenset[str]) -> set[tuple[str, str]]:
    """(correlation id, the event's ``n`` or its text) of every seeded event in the window for ``ids``."""
    found = set()
    for _, moment, message in EVENTS:
        if not SINCE <= moment <= UNTIL:
            continue
        for cid in ids:
            if f'"{cid}"' in message or f" {cid} " in message:
                found.add((cid, str(json.loads(message)["n"]) if message.startswith("{") else message))
    return found


def _keys(events: list[SiemEvent]) -> set[tuple[str, str]]:
    return {(e.correlation_id, e.fields.get("n") or e.fields["message"]) for e in events}


def test_one_query_finds_every_asked_id_following_every_page(
    moto: tuple[str, dict[str, Key]], tmp_path: Path
) -> None:
    url, keys = moto
    connector = CloudWatchLogsConnector(_settings(tmp_path, url, keys["reader"], page_size=PAGE_SIZE))
    sent = _count_requests(connector)
    try:
        events = list(connector.search(SiemQuery(ASKED, SINCE, UNTIL)))
    finally:
        connector.close()

    assert _keys(events) == _expected(ASKED)
    assert {e.correlation_id for e in events} == ASKED
    # One query: every request has the same pattern and window; each next one continues the page before.
    in_window_with_prefix = sum(1 for _, t, m in EVENTS if SINCE <= t <= UNTIL and "pp-r1-" in m)
    assert len(sent) == math.ceil(in_window_with_prefix / PAGE_SIZE) >= 2
    assert {(r["filterPattern"], r["startTime"], r["endTime"], r["limit"]) for r in sent} == {
        ('"pp-r1-"', _ms(SINCE), _ms(UNTIL), PAGE_SIZE)
    }
    assert "nextToken" not in sent[0] and all("nextToken" in r for r in sent[1:])
    assert len({r["nextToken"] for r in sent[1:]}) == len(sent) - 1


def test_event_times_are_the_records_own_else_the_log_events(
    moto: tuple[str, dict[str, Key]], tmp_path: Path
) -> None:
    url, keys = moto
    events = {e.fields.get("n"): e for e in _search(_settings(tmp_path, url, keys["reader"]))}
    # n=0 carries its own time, a minute before CloudWatch's timestamp; n=10 carries none.
    assert events["0"].time == NOW - timedelta(minutes=6)
    assert events["10"].time == NOW - timedelta(minutes=4)
    assert events["0"].fields["request.headers.x-correlation-id"] == "pp-r1-login"
    assert all(
        e.ingested_at is not None and e.ingested_at >= NOW - timedelta(minutes=1) for e in events.values()
    )


def test_ids_not_asked_for_never_come_back(moto: tuple[str, dict[str, Key]], tmp_path: Path) -> None:
    url, keys = moto
    events = _search(_settings(tmp_path, url, keys["reader"]), frozenset({"pp-r1-login"}))
    # Not pp-r1-login-2 (a longer id), not another run's pp-r2-login, not the one before the window.
    assert _keys(events) == {("pp-r1-login", "0"), ("pp-r1-login", "3")}


def test_ids_without_a_common_prefix_are_one_query_too(
    moto: tuple[str, dict[str, Key]], tmp_path: Path
) -> None:
    url, keys = moto
    ids = frozenset({"pp-r1-read", "pp-r2-login"})
    connector = CloudWatchLogsConnector(_settings(tmp_path, url, keys["reader"]))
    sent = _count_requests(connector)
    try:
        events = list(connector.search(SiemQuery(ids, SINCE, UNTIL)))
    finally:
        connector.close()
    assert _keys(events) == _expected(ids)
    assert [r["filterPattern"] for r in sent] == ['"pp-r"']


def test_an_assumed_role_searches(moto: tuple[str, dict[str, Key]], tmp_path: Path) -> None:
    url, keys = moto
    source = static_credentials(tmp_path, keys["assumer"], "key")
    settings = _settings(
        tmp_path,
        url,
        keys["assumer"],
        credentials={"method": "assume_role", "role_arn": ROLE, "source": source},
    )
    assert _keys(_search(settings)) == _expected(ASKED)


def test_a_role_that_cannot_be_assumed_is_no_answer(moto: tuple[str, dict[str, Key]], tmp_path: Path) -> None:
    url, keys = moto
    source = static_credentials(tmp_path, keys["outsider"], "key")
    settings = _settings(
        tmp_path,
        url,
        keys["outsider"],
        credentials={"method": "assume_role", "role_arn": ROLE, "source": source},
    )
    with pytest.raises(SiemUnavailable) as raised:
        _search(settings)
    assert raised.value.kind is ErrorKind.TARGET_ERROR
    assert raised.value.reason == f"AssumeRole {ROLE}: AccessDenied"


def test_a_user_without_filter_log_events_is_no_answer(
    moto: tuple[str, dict[str, Key]], tmp_path: Path
) -> None:
    url, keys = moto
    with pytest.raises(SiemUnavailable) as raised:
        _search(_settings(tmp_path, url, keys["outsider"]))
    assert not isinstance(raised.value, SiemThrottled)
    assert raised.value.kind is ErrorKind.TARGET_ERROR
    assert raised.value.reason == f"FilterLogEvents on log group {GROUP}: AccessDenied"
    assert keys["outsider"][1] not in raised.value.reason


def test_a_missing_log_group_is_no_answer_not_an_absence(
    moto: tuple[str, dict[str, Key]], tmp_path: Path
) -> None:
    url, keys = moto
    with pytest.raises(SiemUnavailable) as raised:
        _search(_settings(tmp_path, url, keys["reader"], log_group="/pp/missing"))
    assert raised.value.kind is ErrorKind.TARGET_ERROR
    assert "ResourceNotFoundException" in raised.value.reason


def test_a_stopped_server_is_unreachable(tmp_path: Path) -> None:
    with moto_server(tmp_path / "moto") as server:
        url = server.url
    with pytest.raises(SiemUnavailable) as raised:
        _search(_settings(tmp_path, url, ("AKIAEXAMPLE", "secret-never-shown")))
    assert raised.value.kind is ErrorKind.UNREACHABLE
    assert "secret-never-shown" not in raised.value.reason


def test_an_endpoint_that_never_answers_times_out(tmp_path: Path) -> None:
    with silent_endpoint() as url:
        settings = _settings(tmp_path, url, ("AKIAEXAMPLE", "secret"), timeout_seconds=0.5)
        with pytest.raises(SiemUnavailable) as raised:
            _search(settings)
    assert raised.value.kind is ErrorKind.TIMEOUT


ECHO = b"secret-echoed-by-the-proxy"
THROTTLED = Reply(
    400,
    "application/x-amz-json-1.1",
    b'{"__type":"ThrottlingException","message":"Rate exceeded ' + ECHO + b'"}',
)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (THROTTLED, ErrorKind.THROTTLED),
        (
            Reply(502, "text/html", b"<html><h1>502 Bad Gateway</h1>" + ECHO + b"</html>"),
            ErrorKind.TARGET_ERROR,
        ),
        (Reply(403, "text/html", b"<html>WAF " + ECHO + b"</html>"), ErrorKind.TARGET_ERROR),
        # A captive proxy's page with status 200: botocore reads it as an empty reply; it is no answer.
        (Reply(200, "text/html", b"<html>" + ECHO + b"</html>"), ErrorKind.TARGET_ERROR),
        (Reply(200, "application/x-amz-json-1.1", b"{}"), ErrorKind.TARGET_ERROR),
    ],
)
def test_a_faulty_reply_is_no_answer(tmp_path: Path, reply: Reply, kind: ErrorKind) -> None:
    with fault_server() as server:
        server.reply = reply
        with pytest.raises(SiemUnavailable) as raised:
            _search(_settings(tmp_path, server.url, ("AKIAEXAMPLE", "key-secret")))
    assert raised.value.kind is kind
    assert ECHO.decode() not in raised.value.reason and "key-secret" not in raised.value.reason


class _Throttling(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(429)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_429_with_retry_after_is_throttled_for_that_long(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(SiemThrottled) as raised:
            _search(_settings(tmp_path, url, ("AKIAEXAMPLE", "key-secret")))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert raised.value.retry_after == 7.0


def test_every_botocore_exception_is_translated() -> None:
    known = known_classes()
    classes = [
        cls
        for _, cls in inspect.getmembers(botocore.exceptions, inspect.isclass)
        if issubclass(cls, Exception) and not issubclass(cls, Warning)
    ]
    unmapped = [cls.__name__ for cls in (*classes, ResponseParserError) if not issubclass(cls, known)]
    # Not raised by a call: a model attribute a client never reads from a reply.
    assert unmapped == ["MissingServiceIdError", "UndefinedModelAttributeError"]
    timeout = botocore.exceptions.ReadTimeoutError(endpoint_url="http://x")
    refused = botocore.exceptions.EndpointConnectionError(endpoint_url="http://x")
    connect = botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x")
    assert translate(timeout, "op").kind is ErrorKind.TIMEOUT
    assert translate(connect, "op").kind is ErrorKind.TIMEOUT
    assert translate(refused, "op").kind is ErrorKind.UNREACHABLE
    assert (
        translate(botocore.exceptions.NoCredentialsError(), "op").reason
        == "op: no credentials (NoCredentialsError)"
    )


def test_the_filter_pattern_is_the_ids_quoted_common_prefix() -> None:
    assert filter_pattern(["pp-abc-login", "pp-abc-read"]) == '"pp-abc-"'
    assert filter_pattern(["pp-abc-login"]) == '"pp-abc-login"'
    assert filter_pattern(['pp-a"b-1', 'pp-a"b-2']) == '"pp-a"'  # never a quote inside the quotes
    assert filter_pattern(["a-1", "b-1"]) is None


def test_settings_load_as_an_environments_siem_connector() -> None:
    siem = SiemSettings.model_validate(
        {"connectors": {"logs": {"type": "cloudwatch_logs", "log_group": GROUP, "region": REGION}}}
    )
    settings = siem.settings_of(None)
    assert isinstance(settings, CloudWatchLogsSettings)
    assert settings.page_size == 1000 and settings.credentials.method == "default"
    for bad in ({"log_group": "no spaces"}, {"endpoint_url": "ftp://x"}, {"page_size": 0}, {"region": ""}):
        with pytest.raises(ValueError):
            CloudWatchLogsSettings.model_validate(
                {"type": "cloudwatch_logs", "log_group": GROUP, "region": REGION, **bad}
            )
