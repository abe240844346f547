"""``aws.assume_role_with_web_identity`` and the environment's ``web_identity`` credentials against moto.

The module owns two moto servers. With IAM enforcement on (as the lab runs moto), moto answers every
AssumeRoleWithWebIdentity with HTTP 500, because it looks for a signature this unsigned request does not
carry: that must be an ERROR, never a verdict. The allowed path runs against the second server, with
enforcement off, where moto validates nothing in web identity (any token, any subject, even a role that does
not exist is accepted; no Provider or Audience in the reply). So these tests prove what parityprobe does
(the request it sends, the session name, the token read from its file when the step runs, the TTL and the
grant), not that a token is checked: refusals are for real AWS.

The requests the probe sends are watched through botocore's own ``before-send`` event on the environment's
cached unsigned STS client (the request as it leaves, after our handlers have tagged it).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import ClientCache, Failure, ProbeContext, ProbeResult
from parityprobe.probes.aws.client import step_client, unsigned_sts_client, web_identity_fetcher
from parityprobe.probes.aws.identity import AssumeRole, CallerIdentity, session_name
from parityprobe.probes.aws.settings import AwsSettings, AwsWebIdentityCredentials
from parityprobe.probes.aws.web_identity import AssumeRoleWithWebIdentity
from parityprobe.secret import Secret
from tests.aws_support import (
    ACCOUNT,
    BOOTSTRAP,
    REGION,
    bootstrap_client,
    enforce,
    key_client,
    moto_server,
    static_credentials,
)
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(6)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"
PROVIDER = "token.actions.example.com"
WEB_IDENTITY = AssumeRoleWithWebIdentity()


@dataclass(frozen=True)
class Servers:
    enforced: ServerProcess
    open: ServerProcess


def _seed(url: str) -> None:
    iam = bootstrap_client(url, "iam")
    provider = iam.create_open_id_connect_provider(
        Url=f"https://{PROVIDER}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
    )["OpenIDConnectProviderArn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:AssumeRole", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {f"{PROVIDER}:aud": "sts.amazonaws.com"}},
            }
        ],
    }
    iam.create_role(RoleName="ci-deployer", AssumeRolePolicyDocument=json.dumps(trust))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with (
        moto_server(tmp_path_factory.mktemp("webid-enforced")) as enforced,
        moto_server(tmp_path_factory.mktemp("webid-open")) as unenforced,
    ):
        _seed(enforced.url)
        _seed(unenforced.url)
        enforce(enforced.url)
        yield Servers(enforced, unenforced)


def _env(url: str, tmp_path: Path, credentials: dict[str, Any] | None = None) -> Environment:
    env = environment(
        {
            "name": "staging",
            "aws": {
                "region": REGION,
                "endpoint_url": url,
                "credentials": credentials or static_credentials(tmp_path, BOOTSTRAP, "key"),
            },
        }
    )
    settings = env.section("aws", AwsSettings)
    assert settings is not None
    settings.resolve_paths(tmp_path)
    static = settings.credentials
    if not isinstance(static, AwsWebIdentityCredentials) and hasattr(static, "access_key_id"):
        static.access_key_id.resolve(tmp_path, "aws access key id")
        static.secret_access_key.resolve(tmp_path, "aws secret access key")
    return env


def _ctx(env: Environment, step: str, clients: ClientCache | None = None) -> ProbeContext:
    return probe_context(env, step, clients, run=RUN)


def _token(tmp_path: Path, name: str = "token") -> tuple[Path, str]:
    value = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24) + ".sig"
    path = tmp_path / name
    path.write_text(value + "\n")
    return path, value


class _Sent:
    """The form fields of every STS request a client sends, watched on botocore's ``before-send``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: Any, **_: Any) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        self.requests.append(dict(urllib.parse.parse_qsl(body)))
        self.headers.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )


def _watch_unsigned(env: Environment, clients: ClientCache) -> _Sent:
    sent = _Sent()
    with unsigned_sts_client(_ctx(env, "prepare", clients)) as sts:
        sts.meta.events.register_last("before-send.sts", sent)
    return sent


# --- under IAM enforcement: moto's 500 is an error, never a verdict ----------------------------------------


def test_moto_s_500_under_enforcement_is_an_error(servers: Servers, tmp_path: Path) -> None:
    path, value = _token(tmp_path)
    ctx = _ctx(_env(servers.enforced.url, tmp_path), "webid-enforced")
    result = observe(WEB_IDENTITY, {"role_arn": ROLE, "token_file": str(path)}, ctx)
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.TARGET_ERROR)
    assert not result.outcome.is_verdict
    assert value not in repr(result)


# --- without enforcement: the request, the grant, the token read at step time -----------------------------


def test_the_role_is_assumed_with_the_step_s_session_name_and_its_grant(
    servers: Servers, tmp_path: Path
) -> None:
    path, value = _token(tmp_path)
    env = _env(servers.open.url, tmp_path)
    clients = ClientCache()
    sent = _watch_unsigned(env, clients)
    ctx = _ctx(env, "webid", clients)
    params = {"role_arn": ROLE, "token_file": str(path), "duration_seconds": 900}
    result = observe(WEB_IDENTITY, params, ctx)
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    grant = result.grant
    assert grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/<correlation-id>"
    assert grant.ttl_seconds is not None and 0 < grant.ttl_seconds <= 900
    assert grant.expires_at is not None and grant.expires_at.utcoffset() == timedelta(0)
    assert dict(grant.attributes) == {}  # moto sends no Provider or Audience
    [request] = sent.requests
    assert request["Action"] == "AssumeRoleWithWebIdentity"
    assert request["RoleSessionName"] == session_name(ctx.correlation_id)
    assert request["WebIdentityToken"] == value and request["DurationSeconds"] == "900"
    assert "Authorization" not in sent.headers[0]  # unsigned
    assert sent.headers[0]["User-Agent"].endswith(f"pp-cid/{ctx.correlation_id}")
    # Three secret outputs, and the session they hold is the step's.
    outputs = result.outputs
    assert set(outputs) == set(WEB_IDENTITY.secret_outputs) and all(
        isinstance(v, Secret) for v in outputs.values()
    )
    creds = {k: v.reveal() for k, v in outputs.items() if isinstance(v, Secret)}
    issued = (creds["access_key_id"], creds["secret_access_key"])
    sts = key_client(servers.open.url, issued, "sts", session_token=creds["session_token"])
    assert sts.get_caller_identity()["Arn"].endswith(f"/ci-deployer/{session_name(ctx.correlation_id)}")
    text = repr(result) + (result.reason or "")
    assert value not in text and creds["secret_access_key"] not in text and creds["session_token"] not in text
    assert value not in ctx.redactor.redact(f"token {value}")


def test_the_token_file_is_read_when_each_step_runs(servers: Servers, tmp_path: Path) -> None:
    path, first = _token(tmp_path)
    env = _env(servers.open.url, tmp_path)
    clients = ClientCache()
    sent = _watch_unsigned(env, clients)
    params = {"role_arn": ROLE, "token_file": str(path)}
    assert observe(WEB_IDENTITY, params, _ctx(env, "webid-1", clients)).outcome is Outcome.ALLOWED
    _, second = _token(tmp_path)  # the platform rotates the token in place
    assert observe(WEB_IDENTITY, params, _ctx(env, "webid-2", clients)).outcome is Outcome.ALLOWED
    path.unlink()
    missing = observe(WEB_IDENTITY, params, _ctx(env, "webid-3", clients))
    assert isinstance(missing, Failure)
    assert (missing.outcome, missing.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert str(path) in missing.reason
    path.write_text("")
    empty = observe(WEB_IDENTITY, params, _ctx(env, "webid-4", clients))
    assert (
        isinstance(empty, Failure)
        and empty.error_kind is ErrorKind.HARNESS_ERROR
        and str(path) in empty.reason
    )
    assert [r["WebIdentityToken"] for r in sent.requests] == [first, second]  # no request without a token


def test_a_token_from_an_earlier_step_s_output(servers: Servers, tmp_path: Path) -> None:
    env = _env(servers.open.url, tmp_path)
    clients = ClientCache()
    sent = _watch_unsigned(env, clients)
    token = Secret("eyJ." + secrets.token_urlsafe(16), "workload token")
    result = observe(WEB_IDENTITY, {"role_arn": ROLE, "token": token}, _ctx(env, "webid-output", clients))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert [r["WebIdentityToken"] for r in sent.requests] == [token.reveal()]


@pytest.mark.parametrize(
    "params",
    [
        {"role_arn": ROLE},
        {"role_arn": ROLE, "token_file": "t", "token": Secret("x")},
        {"role_arn": "arn:aws:iam::123:role/short-account", "token_file": "t"},
    ],
)
def test_parameters_need_exactly_one_token_and_a_role_arn(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AssumeRoleWithWebIdentity.Params.model_validate(params)


def test_assume_role_sends_the_session_name_as_source_identity_when_asked(
    servers: Servers, tmp_path: Path
) -> None:
    env = _env(servers.open.url, tmp_path)
    clients = ClientCache()
    sent = _Sent()
    with step_client(_ctx(env, "prepare", clients), "sts") as sts:
        sts.meta.events.register_last("before-send.sts", sent)
    for step, source_identity in (("plain", False), ("sourced", True)):
        ctx = _ctx(env, step, clients)
        result = observe(AssumeRole(), {"role_arn": ROLE, "source_identity": source_identity}, ctx)
        assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    plain, sourced = sent.requests
    assert "SourceIdentity" not in plain
    assert sourced["SourceIdentity"] == sourced["RoleSessionName"] == session_name(f"pp-{RUN}-sourced")


# --- the environment's own web_identity credentials (EKS/IRSA style) ----------------------------------------


def _web_identity_env(servers: Servers, tmp_path: Path) -> Environment:
    # Relative to the environments file's directory, as a user would write it.
    return _env(
        servers.open.url, tmp_path, {"method": "web_identity", "role_arn": ROLE, "token_file": "irsa-token"}
    )


def test_the_environment_acts_as_the_role_its_web_identity_token_file_assumes(
    servers: Servers, tmp_path: Path
) -> None:
    _token(tmp_path, "irsa-token")
    env = _web_identity_env(servers, tmp_path)
    settings = env.section("aws", AwsSettings)
    assert settings is not None and isinstance(settings.credentials, AwsWebIdentityCredentials)
    assert settings.credentials.token_file == str(tmp_path / "irsa-token")
    result = observe(CallerIdentity(), {}, _ctx(env, "whoami"))
    assert isinstance(result, ProbeResult)
    assert result.grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/parityprobe"


def test_the_environment_s_token_file_is_read_again_at_each_refresh(servers: Servers, tmp_path: Path) -> None:
    path, first = _token(tmp_path, "irsa-token")
    env = _web_identity_env(servers, tmp_path)
    settings = env.section("aws", AwsSettings)
    assert settings is not None
    clients = ClientCache()
    sent = _watch_unsigned(env, clients)
    with unsigned_sts_client(_ctx(env, "refresh", clients)) as sts:
        fetch = web_identity_fetcher(settings, sts)
        issued = fetch()
        _, second = _token(tmp_path, "irsa-token")
        fetch()
    assert [r["WebIdentityToken"] for r in sent.requests] == [first, second]
    assert {r["RoleSessionName"] for r in sent.requests} == {"parityprobe"}
    assert set(issued) == {"access_key", "secret_key", "token", "expiry_time"}
    path.unlink()
    result = observe(CallerIdentity(), {}, _ctx(env, "whoami-no-token"))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert str(path) in result.reason


def test_the_environment_s_web_identity_under_enforcement_is_the_target_s_fault(
    servers: Servers, tmp_path: Path
) -> None:
    _token(tmp_path, "irsa-token")
    credentials = {"method": "web_identity", "role_arn": ROLE, "token_file": "irsa-token"}
    env = _env(servers.enforced.url, tmp_path, credentials)
    result = observe(CallerIdentity(), {}, _ctx(env, "whoami-enforced"))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.TARGET_ERROR)


def test_a_web_identity_session_s_ttl_is_by_the_runner_s_clock(servers: Servers, tmp_path: Path) -> None:
    path, _ = _token(tmp_path)
    env = _env(servers.open.url, tmp_path)
    ctx = _ctx(env, "webid-clock")
    later = dataclasses.replace(ctx, clock=lambda: ctx.now() + timedelta(seconds=600))
    result = observe(
        WEB_IDENTITY, {"role_arn": ROLE, "token_file": str(path), "duration_seconds": 3600}, later
    )
    assert isinstance(result, ProbeResult)
    assert result.grant.ttl_seconds is not None and 2900 <= result.grant.ttl_seconds <= 3000
