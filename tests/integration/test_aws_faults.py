"""The AWS probes against faulty targets: load balancer and proxy error pages, endpoints that never answer.

Each faulty target is a loopback server of the test's own: an HTTP server answering like a broken load
balancer, proxy or WAF, or a listening socket that never answers. botocore and the probes are the real ones.
Timing is never asserted, only that a call was abandoned long before botocore's configured 30 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from parityprobe.config.environments import Environment
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import ClientCache, Failure, Probe, ProbeContext, ProbeResult
from parityprobe.probes.aws.client import build_session, step_client
from parityprobe.probes.aws.errors import translate
from parityprobe.probes.aws.identity import AssumeRole, CallerIdentity
from parityprobe.probes.aws.s3 import S3GetObject
from parityprobe.probes.aws.secrets import SecretRead
from parityprobe.probes.aws.settings import AwsAssumeRoleCredentials, AwsStaticCredentials
from tests.fault_server import ECHO, FaultServer, Reply, fault_server, silent_endpoint, unconnectable_endpoint
from tests.probe_support import environment, observe, probe_context

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/app-reader"
# botocore's own timeout, configured far beyond the steps' deadlines: a call ending early was bounded by us.
BOTOCORE_TIMEOUT = 30.0
DEADLINE = 1.0
WORKER_BOUND = 10.0
STATIC = {
    "method": "static",
    "access_key_id": {"file": "key-id"},
    "secret_access_key": {"file": "secret-key"},
}
ASSUMED = {"method": "assume_role", "role_arn": ROLE, "source": STATIC}

# What faulty middleboxes send. Their bodies echo a request parameter, which must never reach a reason.
REPLIES = {
    "html-502": Reply(
        502,
        "text/html",
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1>"
        b"</center><hr><center>" + ECHO + b"</center></body>\r\n</html>\r\n",
    ),
    "json-503": Reply(
        503, "application/json", b'{"message": "upstream connect error", "request": "' + ECHO + b'"}'
    ),
    "empty-429": Reply(429, None, b""),
    "html-403": Reply(
        403, "text/html", b"<html><body><h1>403 Forbidden</h1><p>WAF: " + ECHO + b"</p></body></html>"
    ),
    "plain-500": Reply(500, "text/plain", b"Internal Server Error " + ECHO),
}
# Whatever the protocol, a reply without a readable code is classified by its status alone.
CLASSIFIED = {
    "html-502": Failure.error(ErrorKind.TARGET_ERROR, "502"),
    "json-503": Failure.error(ErrorKind.TARGET_ERROR, "503"),
    "empty-429": Failure.error(ErrorKind.THROTTLED, "429"),
    "html-403": Failure.error(ErrorKind.TARGET_ERROR, "403"),  # a WAF's page is not the service's deny
    "plain-500": Failure.error(ErrorKind.TARGET_ERROR, "500"),
}
# What botocore itself makes of each reply, per protocol: the exception and its Error.Code (None: no Error).
BOTOCORE: dict[str, dict[str, tuple[type[Exception], str | None]]] = {
    "query": {
        "html-502": (ClientError, "502"),  # an <html> 5xx page: botocore's generic error
        "json-503": (ResponseParserError, None),  # no status, and the body in its message
        "empty-429": (ResponseParserError, None),
        "html-403": (ClientError, None),  # the page parses as XML: an error without any Error
        "plain-500": (ResponseParserError, None),
    },
    "json": {name: (ClientError, str(reply.status)) for name, reply in REPLIES.items()},
    "rest-xml": {
        "html-502": (ClientError, "502"),
        "json-503": (ClientError, "503"),
        "empty-429": (ClientError, "429"),
        "html-403": (ClientError, ""),
        "plain-500": (ClientError, "500"),
    },
}
CALLS: dict[str, tuple[str, str, Any]] = {
    "sts": ("query", "sts", lambda c: c.get_caller_identity()),
    "iam": ("query", "iam", lambda c: c.list_users()),
    "secretsmanager": ("json", "secretsmanager", lambda c: c.get_secret_value(SecretId="payments/db")),
    "s3": ("rest-xml", "s3", lambda c: c.get_object(Bucket="pp-lab-objects", Key="payments/a.csv")),
}
PROBES: dict[str, tuple[Probe, dict[str, object]]] = {
    "caller_identity": (CallerIdentity(), {}),
    "assume_role": (AssumeRole(), {"role_arn": ROLE}),
    "secret_read": (SecretRead(), {"secret_id": "payments/db"}),
    "s3_get_object": (S3GetObject(), {"bucket": "pp-lab-objects", "key": "payments/a.csv"}),
}
# A deny the service itself wrote, per protocol: the body says so, so it stays a deny.
DENIALS = {
    "caller_identity": Reply(
        403,
        "text/xml",
        b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
    ),
    "secret_read": Reply(
        400, "application/x-amz-json-1.1", b'{"__type": "AccessDeniedException", "message": "no"}'
    ),
    "s3_get_object": Reply(
        403, "application/xml", b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    ),
}


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


def _environment(tmp_path: Path, endpoint: str, **aws: Any) -> Environment:
    (tmp_path / "key-id").write_text("AKIAFAULTTEST0000001")
    (tmp_path / "secret-key").write_text("fault-test-secret-key")
    settings = {"region": REGION, "endpoint_url": endpoint, "timeout_seconds": BOTOCORE_TIMEOUT, **aws}
    settings.setdefault("credentials", STATIC)
    env = environment({"name": "staging", "aws": settings})
    assert env.aws is not None
    creds = env.aws.credentials
    base = creds.source if isinstance(creds, AwsAssumeRoleCredentials) else creds
    assert isinstance(base, AwsStaticCredentials)
    base.access_key_id.resolve(tmp_path, "aws access key id")
    base.secret_access_key.resolve(tmp_path, "aws secret access key")
    return env


def _raised(probe: Probe, params: dict[str, object], ctx: ProbeContext) -> Exception:
    with pytest.raises(Exception) as raised:
        probe.run(probe.Params.model_validate(params), ctx)
    assert isinstance(raised.value, Exception)
    return raised.value


@pytest.mark.parametrize("reply", REPLIES)
@pytest.mark.parametrize("service", CALLS)
def test_what_botocore_raises_for_an_unreadable_body(fault: FaultServer, service: str, reply: str) -> None:
    protocol, name, call = CALLS[service]
    fault.reply = REPLIES[reply]
    plain = boto3.client(
        name,  # type: ignore[call-overload]  # botocore alone, as any caller gets it
        region_name=REGION,
        endpoint_url=fault.url,
        aws_access_key_id="AKIAFAULTTEST0000001",
        aws_secret_access_key="fault-test-secret-key",
        config=Config(retries={"total_max_attempts": 1}),
    )
    kind, code = BOTOCORE[protocol][reply]
    with pytest.raises(kind) as raised:
        call(plain)
    if isinstance(raised.value, ClientError):
        assert raised.value.response.get("Error", {}).get("Code") == code


@pytest.mark.parametrize("reply", REPLIES)
@pytest.mark.parametrize("probe", PROBES)
def test_an_unreadable_reply_is_classified_by_status(
    fault: FaultServer, tmp_path: Path, probe: str, reply: str
) -> None:
    fault.reply = REPLIES[reply]
    action, params = PROBES[probe]
    raised = _raised(action, params, probe_context(_environment(tmp_path, fault.url), probe))
    failure = action.translate(raised)
    assert failure == CLASSIFIED[reply]
    # Neither the reason nor the exception's text (the step's detail) repeats the body.
    assert ECHO.decode() not in failure.reason and ECHO.decode() not in str(raised)


@pytest.mark.parametrize("reply", REPLIES)
def test_the_environment_session_reads_iam_the_same_way(
    fault: FaultServer, tmp_path: Path, reply: str
) -> None:
    env = _environment(tmp_path, fault.url)
    assert env.aws is not None
    fault.reply = REPLIES[reply]
    iam = build_session(env.aws).client(
        "iam", endpoint_url=fault.url, config=Config(retries={"total_max_attempts": 1})
    )
    with pytest.raises(ClientError) as raised:
        iam.list_users()
    assert translate(raised.value) == CLASSIFIED[reply]


@pytest.mark.parametrize("probe", DENIALS)
def test_a_deny_the_body_states_stays_a_deny(fault: FaultServer, tmp_path: Path, probe: str) -> None:
    fault.reply = DENIALS[probe]
    action, params = PROBES[probe]
    ctx = probe_context(_environment(tmp_path, fault.url), probe)
    assert observe(action, params, ctx) == Failure(Outcome.DENIED, "AccessDenied")


def test_a_success_reply_of_the_wrong_shape_is_a_target_error(fault: FaultServer, tmp_path: Path) -> None:
    fault.reply = Reply(200, "text/html", b"<html><body>Sign in to continue</body></html>")
    ctx = probe_context(_environment(tmp_path, fault.url), "captive-portal")
    assert observe(CallerIdentity(), {}, ctx) == Failure.error(ErrorKind.TARGET_ERROR, "unreadable reply")


def _as_the_runner_does(probe: Probe, params: dict[str, object], ctx: ProbeContext) -> ProbeResult | Failure:
    """Run on a worker thread, give up at the deadline as the runner does, then wait for the thread itself."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="pp-test-probe")
    try:
        future = pool.submit(observe, probe, params, ctx)
        try:
            return future.result(timeout=DEADLINE)
        except FutureTimeout:
            pass  # the runner reports a timeout here; what matters is that the thread ends too
        return future.result(timeout=WORKER_BOUND)  # long before botocore's own 30 s
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.mark.parametrize("probe", PROBES)
def test_a_silent_endpoint_is_abandoned_at_the_step_deadline(tmp_path: Path, probe: str) -> None:
    action, params = PROBES[probe]
    with silent_endpoint() as url:
        ctx = probe_context(_environment(tmp_path, url), probe, seconds=DEADLINE)
        assert _as_the_runner_does(action, params, ctx) == Failure.error(ErrorKind.TIMEOUT, "read timeout")


def test_a_black_holed_connection_is_abandoned_at_the_step_deadline(tmp_path: Path) -> None:
    with unconnectable_endpoint() as url:
        ctx = probe_context(_environment(tmp_path, url), "whoami", seconds=DEADLINE)
        result = _as_the_runner_does(CallerIdentity(), {}, ctx)
    assert result == Failure.error(ErrorKind.TIMEOUT, "connect timeout")


def test_the_environment_role_is_fetched_within_the_step_deadline(tmp_path: Path) -> None:
    with silent_endpoint() as url:
        ctx = probe_context(_environment(tmp_path, url, credentials=ASSUMED), "whoami", seconds=DEADLINE)
        assert _as_the_runner_does(CallerIdentity(), {}, ctx) == Failure.error(
            ErrorKind.TIMEOUT, "read timeout"
        )


@pytest.mark.parametrize("reply", ["json-503", "empty-429"])
def test_the_environment_role_failing_is_the_targets_fault(
    fault: FaultServer, tmp_path: Path, reply: str
) -> None:
    # A refused environment role is a harness error (test_aws_probes); a failing or throttling STS is not.
    fault.reply = REPLIES[reply]
    ctx = probe_context(_environment(tmp_path, fault.url, credentials=ASSUMED), "whoami")
    assert observe(CallerIdentity(), {}, ctx) == CLASSIFIED[reply]


def test_an_object_still_arriving_at_the_deadline_is_a_timeout(fault: FaultServer, tmp_path: Path) -> None:
    # 2 MiB in 16 KiB pieces every 0.2 s: 25 s to arrive, each read well within the socket timeout.
    fault.reply = Reply(200, "binary/octet-stream", bytes(2 * 1024 * 1024), trickle=0.2)
    action, params = PROBES["s3_get_object"]
    ctx = probe_context(_environment(tmp_path, fault.url), "read-slow-object", seconds=DEADLINE)
    assert _as_the_runner_does(action, params, ctx) == Failure.error(ErrorKind.TIMEOUT, "read timeout")


def test_concurrent_steps_each_get_their_own_deadline(tmp_path: Path) -> None:
    shared = ClientCache()
    pool = ThreadPoolExecutor(2, thread_name_prefix="pp-test-probe")
    try:
        with silent_endpoint() as url:
            env = _environment(tmp_path, url)
            short = pool.submit(observe, CallerIdentity(), {}, probe_context(env, "short", shared, DEADLINE))
            long = pool.submit(
                observe, CallerIdentity(), {}, probe_context(env, "long", shared, BOTOCORE_TIMEOUT)
            )
            assert short.result(timeout=WORKER_BOUND) == Failure.error(ErrorKind.TIMEOUT, "read timeout")
            # The same cached client, still waiting on the other thread: that step's deadline is its own.
            assert not long.done()
        # Closing the endpoint reset the long step's connection: it ends as a fault, never a decision.
        result = long.result(timeout=WORKER_BOUND)
        assert isinstance(result, Failure) and result.error_kind is ErrorKind.UNREACHABLE
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_a_step_leaves_nothing_on_its_worker_thread(fault: FaultServer, tmp_path: Path) -> None:
    fault.reply = REPLIES["html-502"]
    ctx = probe_context(_environment(tmp_path, fault.url), "first")
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(observe, CallerIdentity(), {}, ctx).result() == CLASSIFIED["html-502"]
        with step_client(ctx, "sts") as sts:
            pass
        # The same thread, the same cached client, no step: the request is refused before it leaves.
        with pytest.raises(RuntimeError, match="outside step_client"):
            pool.submit(sts.get_caller_identity).result()
