"""``aws.break_glass_assume_role`` against a real moto server with IAM enforcement on: the drill opens the
break-glass role with the approver's external id, refuses a wrong one, and is never run (no file read, no
request) where the environment's safety or the run's ``--allow-break-glass`` does not allow it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from parityprobe.compare.comparator import compare
from parityprobe.config.environments import Environment
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import build_plan
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import NEEDS_BREAK_GLASS, NOT_ALLOWED_HERE, Effect, ErrorKind, Outcome, Run
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.aws.break_glass import DRILL, BreakGlassAssumeRole
from parityprobe.probes.aws.identity import CORRELATION_PLACEHOLDER, AssumeRole
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner
from parityprobe.secret import Secret
from tests.aws_support import (
    ACCOUNT,
    REGION,
    Key,
    bootstrap_client,
    enforce,
    key_client,
    key_environment,
    moto_server,
    static_credentials,
)
from tests.probe_support import observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
ROLE = f"break-glass-{RUN}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
APPROVAL = f"approval-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Lab:
    server: ServerProcess
    key: Key  # the workload's access key

    def requests_seen(self) -> int:
        """How many AWS requests moto has answered: its log has a line per request, written before the reply
        is sent (coloured for error statuses)."""
        return sum(1 for line in self.server.log_path.read_text().splitlines() if "POST / HTTP" in line)


def _seed(url: str) -> Key:
    iam = bootstrap_client(url, "iam")
    user = iam.create_user(UserName="workload")["User"]["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": user},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": APPROVAL}},
            }
        ],
    }
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}],
    }
    iam.put_user_policy(UserName="workload", PolicyName="assume", PolicyDocument=json.dumps(allow))
    key = iam.create_access_key(UserName="workload")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with moto_server(tmp_path_factory.mktemp("aws-break-glass")) as server:
        key = _seed(server.url)
        enforce(server.url)
        yield Lab(server, key)


def _env(lab: Lab, folder: Path) -> Environment:
    safety = {"allow_effects": ["read", "privileged"]}
    return key_environment(folder, lab.server.url, lab.key, name="production", safety=safety)


def _hand_over(folder: Path, text: str) -> Path:
    path = folder / "external-id"
    path.write_text(text + "\n")
    return path


def _runs(lab: Lab, folder: Path, external_id_file: str, *, allow: bool) -> list[Run]:
    credentials = static_credentials(folder, lab.key, "key")
    aws = {"region": REGION, "endpoint_url": lab.server.url, "credentials": credentials}
    envs = {
        "staging": {"tier": "staging", "aws": aws},  # read only: the drill never runs here
        "production": {"tier": "production", "safety": {"allow_effects": ["read", "privileged"]}, "aws": aws},
    }
    (folder / "environments.yaml").write_text(yaml.safe_dump({"environments": envs}, sort_keys=False))
    (folder / "scenarios").mkdir(exist_ok=True)
    scenario = {
        "id": "aws-break-glass-drill",
        "steps": [
            {
                "id": "drill",
                "probe": "aws.break_glass_assume_role",
                "with": {"role_arn": ROLE_ARN, "external_id_file": external_id_file},
                "expect": {"outcome": "allowed"},
            }
        ],
    }
    (folder / "scenarios" / "drill.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    registry = ProbeRegistry()
    plan = build_plan(
        load_environments(folder / "environments.yaml", Redactor()),
        load_scenarios([folder / "scenarios"]),
        registry,
    )
    (result,) = Runner(registry, Redactor(), step_timeout=15, allow_break_glass=allow).run(plan)
    return list(result.runs)


def test_the_drill_is_privileged() -> None:
    assert BreakGlassAssumeRole.effect is Effect.PRIVILEGED
    assert BreakGlassAssumeRole.secret_outputs == {"access_key_id", "secret_access_key", "session_token"}


def test_with_the_approvers_external_id_the_role_opens_where_the_gate_is_open(
    lab: Lab, tmp_path: Path
) -> None:
    hand_over = _hand_over(tmp_path, APPROVAL)
    staging, production = _runs(lab, tmp_path, str(hand_over), allow=True)
    (skipped,) = staging.observations
    assert (skipped.outcome, skipped.reason) == (
        Outcome.SKIPPED,
        NOT_ALLOWED_HERE.format(effect="privileged"),
    )
    (drill,) = production.observations
    assert (drill.outcome, drill.reason) == (Outcome.ALLOWED, DRILL)
    # The audit trail names the drill: the session is the step's correlation id.
    assert drill.grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{CORRELATION_PLACEHOLDER}"
    assert drill.grant.ttl_seconds is not None and 0 < drill.grant.ttl_seconds <= 900
    assert compare(production.spec, [staging, production]).findings == ()
    revealed = [v.reveal() for v in drill.outputs.values() if isinstance(v, Secret)]
    assert len(revealed) == 3
    for text in [*revealed, APPROVAL]:
        assert text not in repr(drill) and text not in repr(production)


def test_the_drills_credentials_act_as_the_break_glass_role(lab: Lab, tmp_path: Path) -> None:
    hand_over = _hand_over(tmp_path, APPROVAL)
    result = observe(
        BreakGlassAssumeRole(),
        {"role_arn": ROLE_ARN, "external_id_file": str(hand_over)},
        _ctx(lab, tmp_path),
    )
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    keys = {name: value.reveal() for name, value in result.outputs.items() if isinstance(value, Secret)}
    issued = (keys["access_key_id"], keys["secret_access_key"])
    sts = key_client(lab.server.url, issued, "sts", session_token=keys["session_token"])
    arn = sts.get_caller_identity()["Arn"]
    assert arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/pp-{RUN}-drill"
    for text in [*keys.values(), APPROVAL]:
        assert text not in repr(result) and text not in (result.reason or "")


def _ctx(lab: Lab, folder: Path) -> Any:
    return probe_context(_env(lab, folder), "drill", run=RUN)


def test_a_wrong_external_id_is_denied(lab: Lab, tmp_path: Path) -> None:
    hand_over = _hand_over(tmp_path, "not-the-approval")
    result = observe(
        BreakGlassAssumeRole(),
        {"role_arn": ROLE_ARN, "external_id_file": str(hand_over)},
        _ctx(lab, tmp_path),
    )
    assert result == Failure(Outcome.DENIED, "AccessDenied")
    assert "not-the-approval" not in repr(result)


def test_a_wrong_external_id_fails_the_drills_expectation_through_the_runner(
    lab: Lab, tmp_path: Path
) -> None:
    hand_over = _hand_over(tmp_path, "forged")
    _, production = _runs(lab, tmp_path, str(hand_over), allow=True)
    assert production.observations[0].outcome is Outcome.DENIED
    findings = compare(production.spec, [production]).findings
    assert [f.category.value for f in findings] == ["expectation_violation"]


def test_without_the_flag_the_drill_reads_no_file_and_sends_no_request(lab: Lab, tmp_path: Path) -> None:
    missing = tmp_path / "never-handed-over"  # were it read, the step would be a harness error
    before = lab.requests_seen()
    assert before > 0  # the seeding's requests: the count sees requests
    staging, production = _runs(lab, tmp_path, str(missing), allow=False)
    assert (production.observations[0].outcome, production.observations[0].reason) == (
        Outcome.SKIPPED,
        NEEDS_BREAK_GLASS,
    )
    assert all(o.skipped_by_choice for o in (*staging.observations, *production.observations))
    assert lab.requests_seen() == before
    assert compare(production.spec, [staging, production]).findings == ()


def test_an_unreadable_hand_over_is_a_harness_error_naming_the_file(lab: Lab, tmp_path: Path) -> None:
    missing = tmp_path / "absent-file"
    result = observe(
        BreakGlassAssumeRole(), {"role_arn": ROLE_ARN, "external_id_file": str(missing)}, _ctx(lab, tmp_path)
    )
    assert isinstance(result, Failure) and result.error_kind is ErrorKind.HARNESS_ERROR
    assert "break-glass external id" in result.reason and "absent-file" in result.reason


def test_moto_lets_an_omitted_external_id_through_where_aws_refuses_it(lab: Lab, tmp_path: Path) -> None:
    """A gap of the lab, recorded so it is not mistaken for the drill's: moto's trust-condition check passes
    when ``sts:ExternalId`` is absent from the request; AWS denies it. The everyday check (assume the role
    without the approval: must be DENIED) therefore only proves anything against real AWS."""
    result = observe(AssumeRole(), {"role_arn": ROLE_ARN}, _ctx(lab, tmp_path))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
