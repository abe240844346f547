"""``crosscheck: simulator``: the question each AWS probe asks IAM's policy simulator, how a cross-check the
target cannot answer is recorded (skipped, with its reason), and that it is never taken for agreement."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.errors import InputError
from parityprobe.model import Category, Effect, ExitCode, Outcome, Report, Run, Severity
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.probes.aws.call import AwsCall, AwsCallParams
from parityprobe.probes.aws.iam import IamCreateAccessKey
from parityprobe.probes.aws.identity import AssumeRole
from parityprobe.probes.aws.s3 import S3GetObject
from parityprobe.probes.aws.secrets import SecretRead
from parityprobe.probes.aws.simulator import Question, decision, iam_prefix, policy_source
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.report.verdict import verdict
from parityprobe.runner import Runner
from tests.plugins import PROBES

ENVS = """\
environments:
  staging: {tier: staging}
  production: {tier: production}
"""
MOTO_REASON = "the target does not implement iam:SimulatePrincipalPolicy (HTTP 500)"


class SimulateParams(ProbeParams):
    live: dict[str, str] = {}  # environment -> allowed | denied (default allowed)
    declared: dict[str, str] = {}  # environment -> allowed | denied | skipped (default allowed)


class Simulate:
    """A live decision and a simulated one, each as told per environment."""

    name: ClassVar[str] = "test.simulate"
    Params: ClassVar[type[ProbeParams]] = SimulateParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ
    declares: ClassVar[str] = "simulator"

    def run(self, params: SimulateParams, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult(Outcome(params.live.get(ctx.environment.name, "allowed")))

    def declared(self, params: SimulateParams, ctx: ProbeContext) -> ProbeResult:
        answer = params.declared.get(ctx.environment.name, "allowed")
        if answer == "skipped":
            return ProbeResult(Outcome.SKIPPED, reason=MOTO_REASON)
        return ProbeResult(Outcome(answer))

    def translate(self, exc: BaseException) -> Failure | None:
        return None


def plan(tmp_path: Path, scenario: str) -> Plan:
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    (folder / "s.yaml").write_text(scenario)
    (tmp_path / "environments.yaml").write_text(ENVS)
    registry = ProbeRegistry.of(*PROBES, Simulate)
    return build_plan(
        load_environments(tmp_path / "environments.yaml", Redactor()), load_scenarios([folder]), registry
    )


def runs(tmp_path: Path, live: str, declared: str) -> list[Run]:
    text = (
        "id: s\nsteps:\n  - id: act\n    probe: test.simulate\n"
        f"    with: {{live: {live}, declared: {declared}}}\n    crosscheck: simulator\n"
    )
    registry = ProbeRegistry.of(*PROBES, Simulate)
    (result,) = Runner(registry, Redactor(), step_timeout=5).run(plan(tmp_path, text))
    return list(result.runs)


def test_a_skipped_crosscheck_beside_agreement_is_inconclusive_never_parity(tmp_path: Path) -> None:
    staging, production = runs(tmp_path, "{}", "{staging: skipped}")
    skipped = staging.observations[0]
    assert skipped.outcome is Outcome.ALLOWED  # the live decision stands
    assert skipped.declared is Outcome.SKIPPED
    assert skipped.declared_reason == f"simulator cross-check skipped: {MOTO_REASON}"
    assert production.observations[0].declared is Outcome.ALLOWED

    comparison = compare(staging.spec, [staging, production])
    assert [(f.category, f.severity, f.field) for f in comparison.findings] == [
        (Category.INCONCLUSIVE, Severity.LOW, "declared")
    ]
    (finding,) = comparison.findings
    assert finding.message == "no declared decision for test.simulate in staging"
    assert f"staging: simulator cross-check skipped: {MOTO_REASON}" in finding.explanation
    assert finding.environments == {
        "staging": "allowed; declared skipped",
        "production": "allowed; declared allowed",
    }

    report = Report(datetime.now(UTC), (comparison,))
    assert report.exit_code is ExitCode.INCONCLUSIVE
    assert "NO PARITY GAPS FOUND" not in verdict(report).text
    assert verdict(report).text.startswith("INCONCLUSIVE")


def test_a_skipped_crosscheck_is_never_a_declared_mismatch(tmp_path: Path) -> None:
    # Live denied in staging where the simulator could not be asked: nothing to disagree with there.
    staging, production = runs(tmp_path, "{staging: denied, production: denied}", "{staging: skipped}")
    findings = compare(staging.spec, [staging, production]).findings
    categories = [f.category for f in findings]
    assert Category.INCONCLUSIVE in categories
    # Production declares allowed and refuses: that is its own (low) mismatch; staging has none.
    mismatches = [f for f in findings if f.category is Category.DECLARED_MISMATCH]
    assert [f.message.split(":")[0] for f in mismatches] == ["production"]


def test_agreement_everywhere_finds_nothing_and_a_disagreement_is_graded_as_before(tmp_path: Path) -> None:
    staging, production = runs(tmp_path, "{}", "{}")
    assert compare(staging.spec, [staging, production]).findings == ()
    staging, production = runs(tmp_path, "{}", "{production: denied}")
    assert [(f.category, f.severity) for f in compare(staging.spec, [staging, production]).findings] == [
        (Category.DECLARED_MISMATCH, Severity.HIGH)
    ]


def test_the_skipped_crosscheck_and_its_reason_survive_the_codec(tmp_path: Path) -> None:
    staging, _ = runs(tmp_path, "{}", "{staging: skipped}")
    back = from_record(Run, to_record(staging)).observations[0]
    assert back.declared is Outcome.SKIPPED
    assert back.declared_reason == f"simulator cross-check skipped: {MOTO_REASON}"


@pytest.mark.parametrize(
    ("probe", "crosscheck", "why"),
    [
        ("test.simulate", "capabilities", "it answers crosscheck: simulator"),
        ("test.declare", "simulator", "it answers crosscheck: capabilities"),
        ("test.echo", "simulator", "it does not say what the target declares"),
    ],
)
def test_a_probe_crosschecks_only_the_kind_it_answers(
    tmp_path: Path, probe: str, crosscheck: str, why: str
) -> None:
    text = f"id: s\nsteps:\n  - {{id: act, probe: {probe}, crosscheck: {crosscheck}}}\n"
    with pytest.raises(InputError) as caught:
        plan(tmp_path, text)
    message = str(caught.value)
    assert (
        "steps[0].crosscheck" in message and f"cannot crosscheck {crosscheck}" in message and why in message
    )


def test_the_aws_probes_answer_the_simulator_and_say_what_they_ask() -> None:
    registry = ProbeRegistry()
    for name in (
        "aws.call",
        "aws.s3_get_object",
        "aws.secret_read",
        "aws.assume_role",
        "aws.iam_create_access_key",
    ):
        assert getattr(registry.probe_class(name), "declares", None) == "simulator", name
    assert getattr(registry.probe_class("vault.kv_read"), "declares", None) == "capabilities"

    def target(probe: Any, **params: Any) -> str:
        return str(probe.target(probe.Params.model_validate(params)))

    role = "arn:aws:iam::123456789012:role/break-glass"
    assert target(AssumeRole(), role_arn=role) == f"sts:AssumeRole on {role}"
    assert (
        target(IamCreateAccessKey(), user_name="bob")
        == "iam:CreateAccessKey on arn:<partition>:iam::<account>:user/bob"
    )
    assert target(S3GetObject(), bucket="bkt", key="a/b") == "s3:GetObject on arn:<partition>:s3:::bkt/a/b"
    assert target(SecretRead(), secret_id="payments/db") == "secretsmanager:GetSecretValue on *"
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:payments/db-AbCdEf"
    assert target(SecretRead(), secret_id=arn) == f"secretsmanager:GetSecretValue on {arn}"


@pytest.mark.parametrize(
    ("call", "asked"),
    [
        (
            {"service": "iam", "operation": "CreateAccessKey", "params": {"UserName": "bob"}},
            "iam:CreateAccessKey on arn:<partition>:iam::<account>:user/bob",
        ),
        (
            {"service": "iam", "operation": "GetRole", "probe_target": "absent"},
            "iam:GetRole on arn:<partition>:iam::<account>:role/pp-absent-<random>",
        ),
        (
            {"service": "s3", "operation": "ListObjectsV2", "params": {"Bucket": "bkt"}},
            "s3:ListBucket on arn:<partition>:s3:::bkt",
        ),
        (
            {"service": "s3", "operation": "HeadObject", "params": {"Bucket": "bkt", "Key": "k"}},
            "s3:GetObject on arn:<partition>:s3:::bkt/k",
        ),
        ({"service": "cloudwatch", "operation": "ListMetrics"}, "cloudwatch:ListMetrics on *"),
        ({"service": "sesv2", "operation": "ListContactLists"}, "ses:ListContactLists on *"),
        ({"service": "stepfunctions", "operation": "ListStateMachines"}, "states:ListStateMachines on *"),
        (
            {
                "service": "ec2",
                "operation": "DescribeInstances",
                "resource": "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
            },
            "ec2:DescribeInstances on arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
        ),
    ],
)
def test_aws_call_asks_for_the_iam_action_and_the_resource_its_parameters_name(
    call: dict[str, Any], asked: str
) -> None:
    assert AwsCall().question(AwsCallParams.model_validate(call)).describe() == asked


def test_aws_call_refuses_a_resource_that_is_no_arn() -> None:
    with pytest.raises(ValueError, match="resource"):
        AwsCallParams.model_validate({"service": "iam", "operation": "ListUsers", "resource": "user/bob"})


def test_the_iam_prefix_comes_from_the_model_with_the_known_exceptions() -> None:
    assert iam_prefix({"endpointPrefix": "monitoring"}) == "cloudwatch"
    assert iam_prefix({"signingName": "s3", "endpointPrefix": "s3-control"}) == "s3"
    assert iam_prefix({"endpointPrefix": "sts"}) == "sts"


@pytest.mark.parametrize(
    ("caller", "source"),
    [
        ("arn:aws:iam::123456789012:user/ci/deployer", "arn:aws:iam::123456789012:user/ci/deployer"),
        ("arn:aws:sts::123456789012:assumed-role/app/pp-x-y", "arn:aws:iam::123456789012:role/app"),
        ("arn:aws-cn:sts::123456789012:assumed-role/app/s", "arn:aws-cn:iam::123456789012:role/app"),
        ("arn:aws:iam::123456789012:root", None),
        ("arn:aws:sts::123456789012:federated-user/bob", None),
        ("not an arn", None),
    ],
)
def test_the_simulated_principal_is_the_caller_or_its_role(caller: str, source: str | None) -> None:
    assert policy_source(caller) == source


@pytest.mark.parametrize(
    ("decisions", "outcome", "reason"),
    [
        (["allowed"], Outcome.ALLOWED, None),
        (["implicitDeny"], Outcome.DENIED, "implicitDeny"),
        (["explicitDeny"], Outcome.DENIED, "explicitDeny"),
        (["allowed", "implicitDeny", "explicitDeny"], Outcome.DENIED, "explicitDeny"),
        ([], Outcome.ERROR, "simulator reply without a known decision"),
        (["maybe"], Outcome.ERROR, "simulator reply without a known decision"),
    ],
)
def test_the_simulator_decisions_map_to_outcomes(
    decisions: list[str], outcome: Outcome, reason: str | None
) -> None:
    result = decision({"EvalDecision": d} for d in decisions)
    assert (result.outcome, result.reason) == (outcome, reason)


def test_a_question_without_a_resource_is_about_every_resource() -> None:
    assert Question("sts:GetCallerIdentity").describe() == "sts:GetCallerIdentity on *"
