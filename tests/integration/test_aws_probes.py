"""The AWS probes against a real moto server with IAM enforcement on.

The module owns its moto server: the enforcement switch is per server process and these tests turn it on.
The server records every request it receives (moto's recorder), which
is how the tests see the User-Agent that actually reached it.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess, free_port, start_moto
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import ClientCache, Failure, ProbeContext, ProbeResult
from parityprobe.probes.aws.client import step_client
from parityprobe.probes.aws.errors import error_code
from parityprobe.probes.aws.identity import AssumeRole, CallerIdentity
from parityprobe.probes.aws.s3 import S3GetObject
from parityprobe.probes.aws.secrets import SecretRead
from parityprobe.probes.aws.settings import AwsAssumeRoleCredentials, AwsStaticCredentials
from parityprobe.secret import Secret
from tests.aws_support import (
    ACCOUNT,
    ALLOW_ALL,
    REGION,
    Key,
    bootstrap_client,
    enforce,
    key_client,
    static_credentials,
)
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

BUCKET = "pp-lab-objects"
SECRET_NAME = "payments/db"
PAYMENTS_BODY = b"invoice-id,amount\n1,100\n"
RUN = secrets.token_hex(6)
EXTERNAL_ID = "vendor-" + secrets.token_hex(8)


def context(
    env: Environment, step: str, clients: ClientCache | None = None, seconds: float = 30
) -> ProbeContext:
    return probe_context(env, step, clients, seconds, run=RUN)


@dataclass(frozen=True)
class Lab:
    server: ServerProcess
    workload: Key
    outsider: Key
    deleted: Key
    secret_value: str
    recording: Path


def _trust(principal_arn: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal_arn}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _user_with_key(iam: Any, name: str) -> tuple[str, Key]:
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, (key["AccessKeyId"], key["SecretAccessKey"])


def _seed(url: str) -> tuple[Key, Key, Key, str]:
    iam = bootstrap_client(url, "iam")
    admin_arn, _ = _user_with_key(iam, "lab-admin")
    admin_policy = {"Version": "2012-10-17", "Statement": ALLOW_ALL}
    iam.put_user_policy(UserName="lab-admin", PolicyName="all", PolicyDocument=json.dumps(admin_policy))
    workload_arn, workload = _user_with_key(iam, "payments-app")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/payments/*"},
            # moto evaluates Secrets Manager against resource "*": a secret ARN here would deny everything.
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName="payments-app", PolicyName="workload", PolicyDocument=json.dumps(policy))
    # A second key of the workload, deleted: its id and secret are well-formed but no longer valid.
    gone = iam.create_access_key(UserName="payments-app")["AccessKey"]
    iam.delete_access_key(UserName="payments-app", AccessKeyId=gone["AccessKeyId"])
    _, outsider = _user_with_key(iam, "no-policy")
    iam.create_role(RoleName="app-reader", AssumeRolePolicyDocument=_trust(workload_arn))
    iam.create_role(RoleName="break-glass", AssumeRolePolicyDocument=_trust(admin_arn))
    vendor = json.loads(_trust(workload_arn))
    vendor["Statement"][0]["Condition"] = {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    iam.create_role(RoleName="vendor-audit", AssumeRolePolicyDocument=json.dumps(vendor))
    s3 = bootstrap_client(url, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="payments/invoices.csv", Body=PAYMENTS_BODY)
    s3.put_object(Bucket=BUCKET, Key="billing/ledger.csv", Body=b"ledger")
    value = secrets.token_urlsafe(24)
    bootstrap_client(url, "secretsmanager").create_secret(Name=SECRET_NAME, SecretString=value)
    return workload, outsider, (gone["AccessKeyId"], gone["SecretAccessKey"]), value


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("aws-probes")
    recording = workdir / "recording.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        # Read by the server process at start; without it the recording lands in the current directory.
        patch.setenv("MOTO_RECORDER_FILEPATH", str(recording))
        server = start_moto(workdir, ACCOUNT)
    try:
        workload, outsider, deleted, value = _seed(server.url)
        enforce(server.url)
        httpx.post(f"{server.url}/moto-api/recorder/start-recording").raise_for_status()
        yield Lab(server, workload, outsider, deleted, value, recording)
    finally:
        server.stop()


def _environment(tmp_path: Path, endpoint: str, key: Key, **aws: Any) -> Environment:
    """A staging environment with static credentials given as ``{file: …}`` references, resolved."""
    static = static_credentials(tmp_path, key, "key")
    credentials = aws.pop("credentials", static)
    env = environment(
        {
            "name": "staging",
            "aws": {"region": REGION, "endpoint_url": endpoint, "credentials": credentials, **aws},
        }
    )
    assert env.aws is not None
    creds = env.aws.credentials
    base = creds.source if isinstance(creds, AwsAssumeRoleCredentials) else creds
    assert isinstance(base, AwsStaticCredentials)
    base.access_key_id.resolve(tmp_path, "aws access key id")
    base.secret_access_key.resolve(tmp_path, "aws secret access key")
    return env


@pytest.fixture
def workload_env(lab: Lab, tmp_path: Path) -> Environment:
    return _environment(tmp_path, lab.server.url, lab.workload)


def test_caller_identity(workload_env: Environment) -> None:
    ctx = context(workload_env, "whoami")
    result = observe(CallerIdentity(), {}, ctx)
    assert isinstance(result, ProbeResult)
    assert result.outcome is Outcome.ALLOWED
    assert result.grant.identity == f"arn:aws:iam::{ACCOUNT}:user/payments-app"
    assert result.outputs == {"account_id": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/payments-app"}
    assert ctx.timer.used


def test_assume_allowed_role(workload_env: Environment, lab: Lab) -> None:
    ctx = context(workload_env, "assume-app-reader")
    result = observe(AssumeRole(), {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/app-reader"}, ctx)
    assert isinstance(result, ProbeResult)
    assert result.grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-reader/<correlation-id>"
    assert result.grant.ttl_seconds is not None and 3500 <= result.grant.ttl_seconds <= 3600
    outputs = result.outputs
    assert set(outputs) == AssumeRole.outputs
    assert all(isinstance(value, Secret) for value in outputs.values())
    for value in outputs.values():
        assert isinstance(value, Secret) and value.reveal() not in repr(result)
    # The session really is named after the step: the credentials say so when used.
    issued = {name: value.reveal() for name, value in outputs.items() if isinstance(value, Secret)}
    key = (issued["access_key_id"], issued["secret_access_key"])
    who = key_client(lab.server.url, key, "sts", session_token=issued["session_token"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-reader/{ctx.correlation_id}"


def test_assume_with_duration(workload_env: Environment) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/app-reader"
    result = observe(
        AssumeRole(), {"role_arn": role, "duration_seconds": 900}, context(workload_env, "short")
    )
    assert isinstance(result, ProbeResult)
    assert result.grant.ttl_seconds is not None and 800 <= result.grant.ttl_seconds <= 900


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_assume_role_ttl_is_right_on_a_machine_in_any_time_zone(
    workload_env: Environment, zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's STS Expiration carries no zone; read as local time it would be off by the machine's offset."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        role = f"arn:aws:iam::{ACCOUNT}:role/app-reader"
        result = observe(
            AssumeRole(), {"role_arn": role, "duration_seconds": 900}, context(workload_env, "zoned")
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert isinstance(result, ProbeResult)
    assert result.grant.ttl_seconds is not None and 800 <= result.grant.ttl_seconds <= 900
    assert result.grant.expires_at is not None and result.grant.expires_at.utcoffset() == timedelta(0)


def test_assume_break_glass_is_denied(workload_env: Environment) -> None:
    ctx = context(workload_env, "assume-break-glass")
    result = observe(AssumeRole(), {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/break-glass"}, ctx)
    assert result == Failure(Outcome.DENIED, "AccessDenied")


def test_long_correlation_id_still_names_the_session(workload_env: Environment) -> None:
    ctx = context(workload_env, "assume-" + "very-long-step-name-" * 4)
    assert len(ctx.correlation_id) > 64
    result = observe(AssumeRole(), {"role_arn": f"arn:aws:iam::{ACCOUNT}:role/app-reader"}, ctx)
    assert isinstance(result, ProbeResult)
    assert result.grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-reader/<correlation-id>"


@pytest.mark.parametrize(
    ("external_id", "expected"),
    [(EXTERNAL_ID, Outcome.ALLOWED), ("wrong-" + secrets.token_hex(4), Outcome.DENIED)],
    ids=["right", "wrong"],
)
def test_assume_with_external_id(workload_env: Environment, external_id: str, expected: Outcome) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/vendor-audit"
    params = AssumeRole.Params.model_validate({"role_arn": role, "external_id": external_id})
    assert isinstance(getattr(params, "external_id", None), Secret)  # wrapped as soon as it is bound
    result = observe(
        AssumeRole(), {"role_arn": role, "external_id": external_id}, context(workload_env, "vendor")
    )
    assert result.outcome is expected


def test_secret_read_allowed(workload_env: Environment, lab: Lab) -> None:
    result = observe(SecretRead(), {"secret_id": SECRET_NAME}, context(workload_env, "read-secret"))
    assert isinstance(result, ProbeResult)
    value = result.outputs["value"]
    assert isinstance(value, Secret) and value == Secret(lab.secret_value)
    assert lab.secret_value not in repr(result)
    assert isinstance(result.outputs["version_id"], str) and result.outputs["version_id"]
    assert result.grant.stages == frozenset({"AWSCURRENT"})


def test_secret_read_without_policy_is_denied_from_motos_403(lab: Lab, tmp_path: Path) -> None:
    ctx = context(_environment(tmp_path, lab.server.url, lab.outsider), "read-secret-outsider")
    probe = SecretRead()
    with pytest.raises(ClientError) as raised:
        probe.run(SecretRead.Params(secret_id=SECRET_NAME), ctx)
    assert raised.value.response["Error"]["Code"] == "403"  # the shape being normalised
    assert error_code(raised.value) == "AccessDenied"
    assert probe.translate(raised.value) == Failure(Outcome.DENIED, "AccessDenied")


def test_s3_own_prefix_is_allowed(workload_env: Environment) -> None:
    ctx = context(workload_env, "read-own-object")
    result = observe(S3GetObject(), {"bucket": BUCKET, "key": "payments/invoices.csv"}, ctx)
    assert isinstance(result, ProbeResult)
    assert result.outputs["content_length"] == str(len(PAYMENTS_BODY))
    assert str(result.outputs["etag"]).strip('"')
    assert ctx.timer.used


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("billing/ledger.csv", Failure(Outcome.DENIED, "AccessDenied")),
        ("payments/missing.csv", Failure(Outcome.NOT_FOUND, "NoSuchKey")),
    ],
)
def test_s3_other_prefix_denied_and_missing_key_not_found(
    workload_env: Environment, key: str, expected: Failure
) -> None:
    assert (
        observe(S3GetObject(), {"bucket": BUCKET, "key": key}, context(workload_env, "read-object"))
        == expected
    )


@pytest.mark.parametrize("which", ["deleted", "garbage"])
def test_invalid_access_key_is_denied_as_invalid_credentials(lab: Lab, tmp_path: Path, which: str) -> None:
    key = (
        lab.deleted if which == "deleted" else ("AKIA" + secrets.token_hex(8).upper(), secrets.token_hex(20))
    )
    ctx = context(_environment(tmp_path, lab.server.url, key), "whoami-bad-key")
    assert observe(CallerIdentity(), {}, ctx) == Failure(Outcome.DENIED, "invalid credentials")


def test_unreachable_endpoint(lab: Lab, tmp_path: Path) -> None:
    env = _environment(tmp_path, f"http://127.0.0.1:{free_port()}", lab.workload)
    result = observe(CallerIdentity(), {}, context(env, "whoami-nowhere"))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.UNREACHABLE)


def test_silent_endpoint_times_out(lab: Lab, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = _environment(tmp_path, endpoint, lab.workload, timeout_seconds=0.3)
        result = observe(CallerIdentity(), {}, context(env, "whoami-silent"))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.TIMEOUT)


def test_environment_assume_role_credentials(lab: Lab, tmp_path: Path) -> None:
    static = {
        "method": "static",
        "access_key_id": {"file": "key-id"},
        "secret_access_key": {"file": "key-secret"},
    }

    def assumed(role: str) -> dict[str, Any]:
        return {"method": "assume_role", "role_arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "source": static}

    env = _environment(tmp_path, lab.server.url, lab.workload, credentials=assumed("app-reader"))
    result = observe(CallerIdentity(), {}, context(env, "whoami-as-role"))
    assert isinstance(result, ProbeResult)
    assert result.grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-reader/parityprobe"
    # The environment's own identity failing is no verdict on the step: a harness error, not a denial.
    env = _environment(tmp_path, lab.server.url, lab.workload, credentials=assumed("break-glass"))
    failure = observe(CallerIdentity(), {}, context(env, "whoami-as-break-glass"))
    assert isinstance(failure, Failure)
    assert (failure.outcome, failure.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert "AccessDenied" in failure.reason


def _agents_received(lab: Lab) -> list[str]:
    httpx.get(f"{lab.server.url}/moto-api/recorder/download-recording").raise_for_status()
    lines = lab.recording.read_text().splitlines()
    return [json.loads(line)["headers"].get("User-Agent", "") for line in lines if line.strip()]


def test_user_agent_carries_the_current_step(workload_env: Environment, lab: Lab) -> None:
    shared = ClientCache()
    first, second = context(workload_env, "ua-first", shared), context(workload_env, "ua-second", shared)
    with step_client(first, "sts") as one, step_client(second, "sts") as other:
        assert one is other  # one cached client for both steps
    for ctx in (first, second):
        result = observe(CallerIdentity(), {}, ctx)
        assert isinstance(result, ProbeResult)  # the signature still verifies with the header changed
    agents = _agents_received(lab)
    with_first = [agent for agent in agents if agent.endswith(f" pp-cid/{first.correlation_id}")]
    with_second = [agent for agent in agents if agent.endswith(f" pp-cid/{second.correlation_id}")]
    assert len(with_first) == 1 and len(with_second) == 1
    assert "parityprobe/" in with_first[0]
    assert with_second[0].count("pp-cid/") == 1


def test_concurrent_steps_each_send_their_own_correlation_id(workload_env: Environment, lab: Lab) -> None:
    shared = ClientCache()
    steps = [context(workload_env, f"ua-concurrent-{i}", shared) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda ctx: observe(CallerIdentity(), {}, ctx), steps))
    assert all(isinstance(result, ProbeResult) for result in results)
    agents = _agents_received(lab)
    for ctx in steps:
        assert sum(agent.endswith(f" pp-cid/{ctx.correlation_id}") for agent in agents) == 1
    assert all(agent.count("pp-cid/") <= 1 for agent in agents)
