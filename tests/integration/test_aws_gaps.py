"""The aws-gaps lab profile against the built-in AWS and HTTP scenarios it is made for: one finding for each
planted gap, with its category and severity, none on the steps that are equal, the configuration drift the
gaps leave, and nothing left behind by the rotations; the lab brought up by the profile's name through the
command line, with an OAuth 2.0 server per environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.cli_lab import profile_scenarios
from parityprobe.lab.profile import AWS_GAPS_PROFILE, PROFILES, profile_path
from parityprobe.lab.state import LabState, read_state
from parityprobe.model import Category, Finding, Outcome, Report
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]

# (scenario, step, category, severity): the behavioural finding of each planted gap that has one, as the
# profile's header numbers them.
PLANTED = {
    ("aws-forbidden-calls", "attach-admin-to-user", "expectation_violation", "high"),  # (1)
    ("aws-forbidden-calls", "write-own-object", "expectation_violation", "high"),  # (2)
    ("http-oauth2", "read-token", "grant_mismatch", "medium"),  # (6)
    ("http-oauth2", "write-scope", "expectation_violation", "high"),  # (7)
    ("http-oauth2", "other-team-api", "expectation_violation", "high"),  # (8)
}
# The configuration fields aws.config finds different, as it names them, and each finding's severity:
# (1) and (2) in the workload's policy, (3) the break-glass trust, (4) the runtime role's managed policy,
# (5) the api key's rotation.
DRIFT = {
    ("iam user ${vars.workload} policy workload statement AttachPolicies", "high"),
    ("iam user ${vars.workload} policy workload statement WriteData", "high"),
    ("iam role ${vars.break_glass_role} trust statement Trusted", "high"),
    ("iam role ${vars.team}-runtime managed policy ${vars.team}-runtime-data statement RuntimeData", "high"),
    ("secret ${vars.team}/api-key rotation", "medium"),
}
EQUAL_STEPS = {
    ("aws-forbidden-calls", "identity"),
    ("aws-forbidden-calls", "read-own-object"),
    ("aws-forbidden-calls", "launch-instance"),
    ("aws-rotation", "rotate-secret"),
    ("aws-rotation", "read-rotated"),
    ("aws-rotation", "read-previous"),
    ("aws-rotation", "rotate-access-key"),
    ("aws-break-glass-drill", "drill"),
    ("http-oauth2", "own-api"),
}


@pytest.fixture(scope="module")
def gaps_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """The aws-gaps lab, brought up by name through ``parityprobe lab up --profile aws-gaps``."""
    directory = tmp_path_factory.mktemp("aws-gaps") / "lab"
    runner = CliRunner()
    result = runner.invoke(main, ["lab", "up", "--profile", "aws-gaps", "--dir", str(directory)])
    try:
        assert result.exit_code == 0, result.output
        state = read_state(directory.resolve())
        assert state is not None and state.profile == AWS_GAPS_PROFILE.resolve()
        assert "scenarios/http-oauth2.yaml" in result.output  # lab up suggests the profile's scenarios
        yield state
    finally:
        down = runner.invoke(main, ["lab", "down", "--dir", str(directory)])
        assert down.exit_code == 0, down.output
        assert not any(s.alive() for s in state.servers)


@pytest.fixture(scope="module")
def report(gaps_lab: LabState) -> Report:
    redactor, registry = Redactor(), ProbeRegistry()
    the_plan = plan(gaps_lab.environments_file, profile_scenarios(AWS_GAPS_PROFILE), redactor, registry)
    return execute(the_plan, redactor, registry, allow_break_glass=True)


def findings(report: Report) -> list[tuple[str, Finding]]:
    return [(c.spec.id, f) for c in report.comparisons for f in c.findings]


def admin_client(lab: LabState, environment: str, service: str) -> object:
    secrets = lab.directory / environment / "secrets"
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=lab.server(environment, "moto").url,
        region_name="us-east-1",
        aws_access_key_id=(secrets / "aws-admin-access-key-id").read_text(),
        aws_secret_access_key=(secrets / "aws-admin-secret-access-key").read_text(),
    )


def test_the_profile_runs_the_aws_and_http_scenarios_but_web_identity() -> None:
    """moto refuses the unsigned web-identity call once IAM enforcement is on: that scenario is for AWS."""
    names = {p.stem for p in profile_scenarios(AWS_GAPS_PROFILE)}
    shipped = {p.stem for p in (REPO / "scenarios").glob("aws-*.yaml")}
    shipped |= {p.stem for p in (REPO / "scenarios").glob("http-*.yaml")}
    assert names == shipped - {"aws-web-identity"}
    assert profile_path("aws-gaps") == AWS_GAPS_PROFILE and "aws-gaps" in PROFILES


def test_each_planted_gap_gives_exactly_one_behavioural_finding(report: Report) -> None:
    behavioural = [
        (scenario, f.step, f.category.value, f.severity.value)
        for scenario, f in findings(report)
        if f.category is not Category.CONFIG_DRIFT
    ]
    assert sorted(behavioural) == sorted(PLANTED)
    for _, finding in findings(report):
        if finding.category is Category.EXPECTATION_VIOLATION:
            assert str(finding.message).startswith("staging:")  # production is the correct one


def test_the_gaps_show_as_config_drift_read_by_the_auditor(report: Report) -> None:
    drift = {
        (f.field, f.severity.value)
        for scenario, f in findings(report)
        if f.category is Category.CONFIG_DRIFT and scenario == "aws-config"
    }
    assert drift == DRIFT
    (trust,) = [f for _, f in findings(report) if f.field and "trust" in f.field]
    assert "Condition (none)" in trust.message and "sts:ExternalId = sha256:" in trust.message


def test_equal_steps_give_no_finding_and_every_step_decided(report: Report) -> None:
    flagged = {(scenario, f.step) for scenario, f in findings(report)}
    assert not flagged & EQUAL_STEPS
    observed = [(c.spec.id, o) for c in report.comparisons for run in c.runs for o in run.observations]
    assert {(scenario, o.step) for scenario, o in observed} >= EQUAL_STEPS
    assert all(o.outcome in (Outcome.ALLOWED, Outcome.DENIED) for _, o in observed)
    undos = [o.outcome for c in report.comparisons for run in c.runs for o in run.cleanup]
    assert undos and all(o in (Outcome.ALLOWED, Outcome.NOT_FOUND) for o in undos)


def test_rotations_record_their_waits_and_leave_nothing(gaps_lab: LabState, report: Report) -> None:
    (rotation,) = [c for c in report.comparisons if c.spec.id == "aws-rotation"]
    for run in rotation.runs:
        secret = run.observation("rotate-secret")
        keys = run.observation("rotate-access-key")
        assert secret is not None and set(secret.waits) == {"new version readable"}
        assert secret.grant.attributes["previous version kept"] == "yes"
        assert keys is not None and set(keys.waits) == {"new key works", "old key refused"}
        assert dict(keys.grant.attributes) == {"new key": "works", "old key": "refused"}
        # Both keys were created and deleted by the probe; the undos found them gone.
        assert [o.outcome for o in run.cleanup if o.probe == "aws.iam_delete_access_key"] == [
            Outcome.NOT_FOUND,
            Outcome.NOT_FOUND,
        ]
    for name in ("staging", "production"):
        iam = admin_client(gaps_lab, name, "iam")
        assert iam.list_access_keys(UserName="rotation-canary")["AccessKeyMetadata"] == []  # type: ignore[attr-defined]
        sm = admin_client(gaps_lab, name, "secretsmanager")
        stages = sm.describe_secret(SecretId="payments/rotating")["VersionIdsToStages"]  # type: ignore[attr-defined]
        labels = sorted(label for version in stages.values() for label in version)
        assert labels == ["AWSCURRENT", "AWSPREVIOUS"]  # promoted, the previous kept, nothing pending


def test_the_lab_s_http_api_and_approvals_are_wired_and_never_reported(
    gaps_lab: LabState, report: Report
) -> None:
    document = yaml.safe_load(gaps_lab.environments_file.read_text())
    text = repr(report) + json.dumps([f.message for _, f in findings(report)])
    for name, env in document["environments"].items():
        assert env["http"]["base_url"] == gaps_lab.server(name, "oauth").url
        client_secret = gaps_lab.directory / env["http"]["oauth2"]["client_secret"]["file"]
        approval = Path(env["vars"]["break_glass_external_id_file"])
        auditor = gaps_lab.directory / env["aws"]["config_credentials"]["secret_access_key"]["file"]
        assert approval.parent == gaps_lab.directory / name / "secrets"
        for secret_file in (client_secret, approval, auditor):
            value = secret_file.read_text().strip()
            assert len(value) >= 16 and value not in text


def test_a_decision_names_the_iam_statements_that_may_explain_it(report: Report) -> None:
    explained = {(scenario, f.step): f.explanation for scenario, f in findings(report)}
    because = "Configuration drift that may explain it: "
    attach = explained[("aws-forbidden-calls", "attach-admin-to-user")]
    assert because + "staging's user ${vars.workload} policy workload has statement AttachPolicies" in attach
    write = explained[("aws-forbidden-calls", "write-own-object")]
    # Both statements whose actions cover s3:PutObject: the workload's own, and the runtime role's s3:*.
    assert because in write and "statement WriteData" in write and "statement RuntimeData" in write
    assert "AttachPolicies" not in write
