"""``crosscheck: simulator`` against IAM's documented reply shapes, over real HTTP on loopback.

moto does not implement ``iam:SimulatePrincipalPolicy``, so this contract test serves the documented query-
protocol replies itself (IAM API reference: ``SimulatePrincipalPolicy``, ``EvaluationResult``; STS
``GetCallerIdentity``; the ``ErrorResponse`` document): a small HTTP server per environment, pointed at by
the environment's ``endpoint_url``, answering the live action (``iam:GetUser``) and the simulator as each
test sets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from parityprobe.compare.comparator import compare
from parityprobe.config.environments import Environment
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import build_plan
from parityprobe.model import Category, ErrorKind, Outcome, Severity
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.aws.call import AwsCall
from parityprobe.probes.aws.iam import IamCreateAccessKey
from parityprobe.probes.aws.settings import AwsSettings, AwsStaticCredentials
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner
from tests.probe_support import environment, probe_context

pytestmark = pytest.mark.lab

ACCOUNT = "123456789012"
ROLE = "payments-workload"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/parityprobe"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass
class Answers:
    """What one fake target answers: the live GetUser (allowed or denied) and the simulator's reply."""

    live: str = "allowed"
    # An EvalDecision (allowed | explicitDeny | implicitDeny), or "html500" (moto's page), "AccessDenied",
    # "Throttling", "NoSuchEntity".
    simulator: str = "allowed"
    asked: list[dict[str, list[str]]] = field(default_factory=list)


def _error(code: str, status: int) -> tuple[int, str, bytes]:
    body = (
        f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>User: {CALLER} is not authorized</Message></Error>"
        "<RequestId>r-1</RequestId></ErrorResponse>"
    )
    return status, "text/xml", body.encode()


def _simulated(decision: str, params: dict[str, list[str]]) -> tuple[int, str, bytes]:
    action = params["ActionNames.member.1"][0]
    resource = params.get("ResourceArns.member.1", ["*"])[0]
    body = f"""<SimulatePrincipalPolicyResponse xmlns="{IAM_NS}">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>
      <member>
        <MatchedStatements>
          <member>
            <SourcePolicyId>workload</SourcePolicyId>
            <SourcePolicyType>IAM Policy</SourcePolicyType>
            <StartPosition><Line>1</Line><Column>39</Column></StartPosition>
            <EndPosition><Line>1</Line><Column>120</Column></EndPosition>
          </member>
        </MatchedStatements>
        <MissingContextValues/>
        <EvalResourceName>{resource}</EvalResourceName>
        <EvalDecision>{decision}</EvalDecision>
        <EvalDecisionDetails/>
        <EvalActionName>{action}</EvalActionName>
      </member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>
</SimulatePrincipalPolicyResponse>"""
    return 200, "text/xml", body.encode()


def _answer(answers: Answers, params: dict[str, list[str]]) -> tuple[int, str, bytes]:
    action = params.get("Action", [""])[0]
    if action == "GetCallerIdentity":
        body = (
            f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult><Arn>{CALLER}</Arn>'
            f"<UserId>AROAEXAMPLE:parityprobe</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
            "<ResponseMetadata><RequestId>r-0</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )
        return 200, "text/xml", body.encode()
    if action == "GetUser":
        if answers.live != "allowed":
            return _error("AccessDenied", 403)
        user = params["UserName"][0]
        body = (
            f'<GetUserResponse xmlns="{IAM_NS}"><GetUserResult><User><Path>/</Path>'
            f"<UserName>{user}</UserName>"
            f"<UserId>AIDAEXAMPLE</UserId><Arn>arn:aws:iam::{ACCOUNT}:user/{user}</Arn>"
            "<CreateDate>2024-01-01T00:00:00Z</CreateDate></User></GetUserResult>"
            "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetUserResponse>"
        )
        return 200, "text/xml", body.encode()
    if action == "SimulatePrincipalPolicy":
        answers.asked.append(params)
        reply = answers.simulator
        if reply == "html500":  # what moto 5.2 sends: Werkzeug's page, no AWS error document
            page = b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
            return 500, "text/html; charset=utf-8", page
        if reply == "AccessDenied":
            return _error("AccessDenied", 403)
        if reply == "Throttling":
            return _error("Throttling", 400)
        if reply == "NoSuchEntity":
            return _error("NoSuchEntity", 404)
        return _simulated(reply, params)
    return _error("InvalidAction", 400)


class FakeAws(ThreadingHTTPServer):
    """IAM and STS query protocol, as much as the cross-check uses, on loopback."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = Answers()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeAws

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        params = parse_qs(self.rfile.read(length).decode())
        status, content_type, body = _answer(self.server.answers, params)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def servers() -> Iterator[dict[str, FakeAws]]:
    made = {name: FakeAws() for name in ("staging", "production")}
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in made.values()]
    for thread in threads:
        thread.start()
    try:
        yield made
    finally:
        for server in made.values():
            server.shutdown()
            server.server_close()


def _aws(server: FakeAws) -> dict[str, Any]:
    credentials = {
        "method": "static",
        "access_key_id": {"env": "PP_SIM_KEY"},
        "secret_access_key": {"env": "PP_SIM_SECRET"},
    }
    return {
        "region": "us-east-1",
        "endpoint_url": server.url,
        "credentials": credentials,
        "timeout_seconds": 5,
    }


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_SIM_KEY", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("PP_SIM_SECRET", "contract-secret-not-real")


def _env(server: FakeAws) -> Environment:
    env = environment({"name": "staging", "aws": _aws(server)})
    settings = env.section("aws", AwsSettings)
    assert settings is not None and isinstance(settings.credentials, AwsStaticCredentials)
    settings.credentials.access_key_id.resolve(Path.cwd(), "aws access key id")
    settings.credentials.secret_access_key.resolve(Path.cwd(), "aws secret access key")
    return env


def _declared(probe: Any, params: dict[str, Any], env: Environment) -> ProbeResult | Failure:
    bound = probe.Params.model_validate(params)
    try:
        result: ProbeResult = probe.declared(bound, probe_context(env, "sim"))
        return result
    except Exception as exc:
        failure: Failure | None = probe.translate(exc)
        assert failure is not None, f"untranslated {exc!r}"
        return failure


@pytest.mark.parametrize(
    ("decision", "outcome", "reason"),
    [
        ("allowed", Outcome.ALLOWED, None),
        ("explicitDeny", Outcome.DENIED, "explicitDeny"),
        ("implicitDeny", Outcome.DENIED, "implicitDeny"),
    ],
)
def test_the_documented_decisions_map_and_the_question_names_the_role_action_and_resource(
    servers: dict[str, FakeAws], decision: str, outcome: Outcome, reason: str | None
) -> None:
    server = servers["staging"]
    server.answers.simulator = decision
    result = _declared(IamCreateAccessKey(), {"user_name": "victim"}, _env(server))
    assert isinstance(result, ProbeResult) and (result.outcome, result.reason) == (outcome, reason)
    (asked,) = server.answers.asked
    assert asked["PolicySourceArn"] == [f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"]  # the session's role
    assert asked["ActionNames.member.1"] == ["iam:CreateAccessKey"]
    assert asked["ResourceArns.member.1"] == [f"arn:aws:iam::{ACCOUNT}:user/victim"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("html500", "the target does not implement iam:SimulatePrincipalPolicy (HTTP 500)"),
        ("AccessDenied", "the caller may not call iam:SimulatePrincipalPolicy (AccessDenied)"),
        ("NoSuchEntity", f"IAM knows no principal arn:aws:iam::{ACCOUNT}:role/{ROLE}"),
    ],
)
def test_a_target_that_cannot_simulate_is_skipped_with_its_reason(
    servers: dict[str, FakeAws], reply: str, reason: str
) -> None:
    server = servers["staging"]
    server.answers.simulator = reply
    result = _declared(
        AwsCall(), {"service": "iam", "operation": "GetUser", "params": {"UserName": "x"}}, _env(server)
    )
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.SKIPPED
    assert result.reason is not None and result.reason.startswith(reason)


def test_a_throttled_simulator_is_a_fault_not_a_decision(servers: dict[str, FakeAws]) -> None:
    server = servers["staging"]
    server.answers.simulator = "Throttling"
    result = _declared(
        AwsCall(), {"service": "iam", "operation": "GetUser", "params": {"UserName": "x"}}, _env(server)
    )
    assert result == Failure.error(ErrorKind.THROTTLED, "Throttling")


SCENARIO = """\
id: simulated
steps:
  - id: get-victim
    probe: aws.call
    with: {service: iam, operation: GetUser, params: {UserName: victim}}
    crosscheck: simulator
"""


def _run(tmp_path: Path, servers: dict[str, FakeAws]) -> Any:
    envs = {name: {"tier": name, "aws": _aws(server)} for name, server in servers.items()}
    (tmp_path / "environments.yaml").write_text(yaml.safe_dump({"environments": envs}, sort_keys=False))
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.yaml").write_text(SCENARIO)
    registry = ProbeRegistry()
    plan = build_plan(
        load_environments(tmp_path / "environments.yaml", Redactor()),
        load_scenarios([tmp_path / "scenarios"]),
        registry,
    )
    (result,) = Runner(registry, Redactor(), step_timeout=10).run(plan)
    return result.runs


def test_a_live_decision_wider_than_the_simulated_one_is_a_declared_mismatch(
    tmp_path: Path, servers: dict[str, FakeAws]
) -> None:
    servers["staging"].answers.simulator = "implicitDeny"  # staging lets GetUser through; its policies do not
    staging, production = _run(tmp_path, servers)
    obs = staging.observations[0]
    assert (obs.outcome, obs.declared) == (Outcome.ALLOWED, Outcome.DENIED)
    assert obs.target == "iam:GetUser on arn:<partition>:iam::<account>:user/victim"
    assert production.observations[0].declared is Outcome.ALLOWED
    findings = compare(staging.spec, [staging, production]).findings
    assert [(f.category, f.severity) for f in findings] == [(Category.DECLARED_MISMATCH, Severity.MEDIUM)]
    assert findings[0].message == "staging: aws.call was allowed, but the target declares it denied"


def test_a_live_refusal_the_simulator_allows_is_a_low_mismatch(
    tmp_path: Path, servers: dict[str, FakeAws]
) -> None:
    servers["production"].answers.live = "denied"
    staging, production = _run(tmp_path, servers)
    assert production.observations[0].outcome is Outcome.DENIED
    findings = compare(staging.spec, [staging, production]).findings
    mismatch = [f for f in findings if f.category is Category.DECLARED_MISMATCH]
    assert [(f.severity, f.message.split(":")[0]) for f in mismatch] == [(Severity.LOW, "production")]


def test_a_skipped_simulator_beside_agreement_is_inconclusive(
    tmp_path: Path, servers: dict[str, FakeAws]
) -> None:
    servers["production"].answers.simulator = "html500"
    staging, production = _run(tmp_path, servers)
    skipped = production.observations[0]
    assert (skipped.outcome, skipped.declared) == (Outcome.ALLOWED, Outcome.SKIPPED)
    assert skipped.declared_reason.startswith(
        "simulator cross-check skipped: the target does not implement iam:SimulatePrincipalPolicy (HTTP 500)"
    )
    findings = compare(staging.spec, [staging, production]).findings
    assert [(f.category, f.severity) for f in findings] == [(Category.INCONCLUSIVE, Severity.LOW)]
