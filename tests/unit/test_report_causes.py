"""Findings grouped by cause: what makes findings one cause, the order of causes, counts and exit codes on
causes, and how the terminal and JSON reports show them (once, with where they were seen; every occurrence
kept in JSON; secrets masked)."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta

from parityprobe.compare.comparator import compare
from parityprobe.model import (
    Category,
    Comparison,
    ErrorKind,
    Evidence,
    EvidenceStatus,
    ExitCode,
    Finding,
    Grant,
    Observation,
    Outcome,
    Report,
    Run,
    Severity,
    Tier,
)
from parityprobe.redact import Redactor
from parityprobe.report import REPORT_SCHEMA, build_view, render_json, render_terminal
from parityprobe.report.causes import actions, cause_key, group_causes
from parityprobe.secret import Secret
from parityprobe.spec import Bounds, EnvironmentFacts, ScenarioSpec, StepSpec
from tests.unit.test_reports import check

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TIERS = {"staging": Tier.STAGING, "production": Tier.PRODUCTION}
WIDE = frozenset({"default", "payments", "billing-read"})
NARROW = frozenset({"default", "payments"})


def observation(env: str, step: StepSpec, outcome: Outcome = Outcome.ALLOWED, **kw: object) -> Observation:
    return Observation(
        step=step.id,
        probe=step.probe,
        environment=env,
        correlation_id=f"pp-{env}-{step.id}",
        outcome=outcome,
        started_at=T0,
        **kw,  # type: ignore[arg-type]
    )


def compared(spec: ScenarioSpec, per_env: dict[str, dict[str, dict[str, object]]]) -> Comparison:
    """The real comparator's comparison of one run per environment; ``per_env[env][step]`` holds the
    observation's fields (outcome defaults to allowed)."""
    runs = []
    for env, steps in per_env.items():
        observations = []
        for step in spec.steps:
            fields = dict(steps.get(step.id, {}))
            outcome = fields.pop("outcome", Outcome.ALLOWED)
            assert isinstance(outcome, Outcome)
            observations.append(observation(env, step, outcome, **fields))
        runs.append(
            Run(f"run-{spec.id}-{env}", spec, EnvironmentFacts(env, TIERS[env]), T0, T0, tuple(observations))
        )
    return compare(spec, runs)


def logins(scenario: str, steps: tuple[str, ...]) -> Comparison:
    """Every step logs in or looks its token up; staging's role carries one policy more than production's."""
    spec = ScenarioSpec(
        scenario, f"digest-{scenario}", "", tuple(StepSpec(s, "vault.approle_login") for s in steps)
    )
    return compared(
        spec,
        {
            "staging": {s: {"grant": Grant(ttl_seconds=3600, policies=WIDE)} for s in steps},
            "production": {s: {"grant": Grant(ttl_seconds=3600, policies=NARROW)} for s in steps},
        },
    )


def six_steps() -> Report:
    return Report(
        T0,
        (
            logins("token-fetch", ("login", "lookup", "renew")),
            logins("forbidden-calls", ("login", "lookup", "login-again")),
        ),
    )


def finding(
    category: Category,
    values: dict[str, str],
    *,
    severity: Severity = Severity.MEDIUM,
    scenario: str = "s",
    step: str | None = "a",
    field: str | None = None,
    message: str = "m",
) -> Finding:
    return Finding(category, severity, scenario, step, values, message, f"explained for {step}", field)


# ---------------------------------------------------------------- one difference on many steps


def test_one_policy_difference_on_six_steps_is_one_cause() -> None:
    report = six_steps()
    assert len(report.findings) == 6 and {f.field for f in report.findings} == {"policies"}
    view = build_view(report)
    assert len(view.causes) == 1
    cause = view.causes[0].cause
    assert cause.steps == 6 and len(cause.occurrences) == 6
    assert view.summary.causes == 1 and view.summary.findings == 6
    assert view.summary.by_category[Category.GRANT_MISMATCH] == 1
    assert view.summary.by_severity[Severity.MEDIUM] == 1
    assert view.verdict.exit_code is ExitCode.FINDINGS is report.exit_code

    out = render_terminal(report, Redactor(), width=200)
    assert out.count("attached policies differ") == 1  # the cause's message, once for six findings
    assert (
        "seen in 6 steps: token-fetch/login, token-fetch/lookup, token-fetch/renew, forbidden-calls/login, "
        "… and 2 more" in out
    )
    assert "Causes (1, from 6 findings)" in out
    assert "Findings (3): cause #1 below" in out  # each scenario points at the cause
    assert "Summary: 2 scenarios · 4 runs · 1 cause (1 medium) from 6 findings · 0 inconclusive" in out

    doc = json.loads(render_json(report, Redactor()))
    assert check(doc, REPORT_SCHEMA) == []
    assert doc["summary"]["causes"] == 1 and doc["summary"]["findings"] == 6 == len(doc["findings"])
    (only,) = doc["causes"]
    assert only["steps"] == 6 and only["field"] == "policies" and only["category"] == "grant_mismatch"
    assert only["environments"] == {
        "staging": "billing-read, default, payments",
        "production": "default, payments",
    }
    assert [(o["scenario"], o["step"]) for o in only["occurrences"]] == [
        ("token-fetch", "login"),
        ("token-fetch", "lookup"),
        ("token-fetch", "renew"),
        ("forbidden-calls", "login"),
        ("forbidden-calls", "lookup"),
        ("forbidden-calls", "login-again"),
    ]
    assert only["occurrences"] == doc["findings"]  # every occurrence whole, as the findings list has it


def test_different_values_are_different_causes() -> None:
    other = ScenarioSpec("other", "digest-other", "", (StepSpec("login", "vault.approle_login"),))
    third = frozenset({"default", "payments", "admin"})
    report = Report(
        T0,
        (
            *six_steps().comparisons,
            compared(
                other,
                {
                    "staging": {"login": {"grant": Grant(ttl_seconds=3600, policies=third)}},
                    "production": {"login": {"grant": Grant(ttl_seconds=3600, policies=NARROW)}},
                },
            ),
        ),
    )
    view = build_view(report)
    assert [c.cause.steps for c in view.causes] == [6, 1]
    assert view.summary.causes == 2 and view.summary.by_category[Category.GRANT_MISMATCH] == 2
    out = render_terminal(report, Redactor(), width=200)
    assert "seen in 1 step: other/login" in out and "#2 grant_mismatch · field policies" in out


def test_the_same_values_between_other_environments_are_another_cause() -> None:
    a = finding(Category.GRANT_MISMATCH, {"staging": "24h", "production": "1h"}, field="ttl", step="a")
    b = finding(Category.GRANT_MISMATCH, {"dev": "24h", "production": "1h"}, field="ttl", step="b")
    c = finding(Category.GRANT_MISMATCH, {"staging": "24h", "production": "1h"}, field="max ttl", step="c")
    assert len(group_causes((a, b, c))) == 3


# ---------------------------------------------------------------- what the key ignores, and what it keys on


def test_one_ttl_gap_on_three_steps_across_two_scenarios_is_one_cause() -> None:
    """Staging's 24h token: a violated TTL bound, a TTL that differs, and the remaining TTL a lookup reads a
    second later are one gap (the comparator reports a violation instead of the mismatch it causes)."""
    bounded = ScenarioSpec(
        "token-fetch",
        "d1",
        "",
        (
            StepSpec("login", "vault.approle_login", expect_ttl=Bounds(max=3600)),
            StepSpec("lookup", "vault.token_lookup"),
        ),
    )
    plain = ScenarioSpec("forbidden-calls", "d2", "", (StepSpec("login", "vault.approle_login"),))
    report = Report(
        T0,
        (
            compared(
                plain,
                {
                    "staging": {"login": {"grant": Grant(ttl_seconds=86400)}},
                    "production": {"login": {"grant": Grant(ttl_seconds=3600)}},
                },
            ),
            compared(
                bounded,
                {
                    "staging": {
                        "login": {"grant": Grant(ttl_seconds=86400)},
                        "lookup": {"grant": Grant(ttl_seconds=86399)},
                    },
                    "production": {
                        "login": {"grant": Grant(ttl_seconds=3600)},
                        "lookup": {"grant": Grant(ttl_seconds=3599)},
                    },
                },
            ),
        ),
    )
    categories = [(f.scenario, f.step, f.category) for f in report.findings]
    assert categories == [
        ("forbidden-calls", "login", Category.GRANT_MISMATCH),
        ("token-fetch", "login", Category.EXPECTATION_VIOLATION),
        ("token-fetch", "lookup", Category.GRANT_MISMATCH),
    ]
    (cause,) = group_causes(report.findings)
    assert cause.places == ("forbidden-calls/login", "token-fetch/login", "token-fetch/lookup")
    assert cause.finding.environments == {"staging": "24h", "production": "1h"}
    # Beyond the minute, a duration is another value: 2h is not 1h.
    two_hours = finding(Category.GRANT_MISMATCH, {"staging": "24h", "production": "2h"}, field="ttl")
    assert cause_key(two_hours) != cause.key


def test_decisions_group_only_on_the_same_action() -> None:
    """``allowed`` against ``denied`` on different calls are different holes (different rules let them
    through); the same call tested in two scenarios is one."""
    read = StepSpec("read-other-team", "vault.kv_read", expect_outcome=Outcome.DENIED)
    write = StepSpec("write-own", "vault.kv_write", expect_outcome=Outcome.DENIED)
    assume = StepSpec("assume-break-glass", "aws.assume_role", expect_outcome=Outcome.DENIED)
    s3 = StepSpec("s3-other-prefix", "aws.s3_get_object", expect_outcome=Outcome.DENIED)

    def scenario(name: str, steps: tuple[StepSpec, ...], targets: dict[str, str]) -> Comparison:
        spec = ScenarioSpec(name, f"d-{name}", "", steps)
        denied = {"outcome": Outcome.DENIED, "reason": "permission denied"}
        return compared(
            spec,
            {
                "staging": {s.id: {"target": targets.get(s.id)} for s in steps},
                "production": {s.id: {**denied, "target": targets.get(s.id)} for s in steps},
            },
        )

    billing = "secret/data/billing/db"
    report = Report(
        T0,
        (
            scenario("forbidden-calls", (read, assume, s3), {read.id: billing}),
            scenario("vault-writes", (write, read), {write.id: "secret/data/payments/db", read.id: billing}),
        ),
    )
    assert len(report.findings) == 5
    assert actions(report.comparisons)[("vault-writes", "read-other-team")] == f"vault.kv_read {billing}"
    causes = group_causes(report.findings, actions(report.comparisons))
    assert [c.places for c in causes] == [
        ("forbidden-calls/read-other-team", "vault-writes/read-other-team"),  # one call, two scenarios
        ("forbidden-calls/assume-break-glass",),  # no target recorded: a cause of its own step
        ("forbidden-calls/s3-other-prefix",),
        ("vault-writes/write-own",),
    ]
    # Without the actions, no decision groups across steps.
    assert len(group_causes(report.findings)) == 5


def test_a_cause_takes_its_most_severe_occurrence() -> None:
    """Both environments allow a forbidden call: production's is critical, staging's high; one difference."""
    step = StepSpec("read-other-team", "vault.kv_read", expect_outcome=Outcome.DENIED)
    report = Report(T0, (compared(ScenarioSpec("s", "d", "", (step,)), {"staging": {}, "production": {}}),))
    assert sorted(f.severity.value for f in report.findings) == ["critical", "high"]
    view = build_view(report)
    (shown,) = view.causes
    assert shown.cause.severity is Severity.CRITICAL and shown.cause.steps == 1
    assert shown.cause.finding.message.startswith("production:")
    assert view.summary.by_severity[Severity.CRITICAL] == 1 and view.summary.by_severity[Severity.HIGH] == 0
    out = render_terminal(report, Redactor(), width=200)
    assert "seen in 1 step: s/read-other-team (1 critical, 1 high)" in out
    doc = json.loads(render_json(report, Redactor()))
    assert [o["severity"] for o in doc["causes"][0]["occurrences"]] == ["critical", "high"]


def test_causes_most_severe_first_then_as_found() -> None:
    low1 = finding(Category.LATENCY_MISMATCH, {"staging": "1", "production": "2"}, severity=Severity.LOW)
    high = finding(
        Category.OUTCOME_MISMATCH,
        {"staging": "allowed", "production": "denied"},
        severity=Severity.HIGH,
        field="outcome",
    )
    low2 = finding(Category.LATENCY_MISMATCH, {"staging": "3", "production": "4"}, severity=Severity.LOW)
    medium = finding(Category.GRANT_MISMATCH, {"staging": "a", "production": "b"}, field="policies")
    causes = group_causes((low1, high, low2, medium))
    assert [c.finding for c in causes] == [high, medium, low1, low2]
    assert group_causes((low1, high, low2, medium)) == causes  # deterministic


def test_config_drift_and_the_behaviour_it_explains_are_separate_causes() -> None:
    values = {"staging": "read, update", "production": "read"}
    drift = finding(Category.CONFIG_DRIFT, values, field="policy payments-app", step="snapshot")
    behaviour = finding(Category.GRANT_MISMATCH, values, field="policy payments-app", step="write-own")
    assert len(group_causes((drift, behaviour))) == 2


def test_one_unreachable_environment_is_one_inconclusive_cause() -> None:
    steps = tuple(StepSpec(s, "vault.kv_read") for s in ("read-own", "read-other-team", "list-team"))
    spec = ScenarioSpec("s", "d", "", steps)
    down = {"outcome": Outcome.ERROR, "error_kind": ErrorKind.UNREACHABLE, "reason": "connection refused"}
    production = {
        "read-own": {},
        "read-other-team": {"outcome": Outcome.DENIED, "reason": "permission denied"},
        "list-team": {"outcome": Outcome.NOT_FOUND},
    }
    report = Report(T0, (compared(spec, {"staging": {s.id: down for s in steps}, "production": production}),))
    assert len(report.findings) == 3 and {f.category for f in report.findings} == {Category.INCONCLUSIVE}
    view = build_view(report)
    (shown,) = view.causes
    assert shown.cause.key.values == (("staging", "error: unreachable (connection refused)"),)
    assert view.summary.inconclusive == 1 and view.summary.causes == 1
    assert view.verdict.exit_code is ExitCode.INCONCLUSIVE is report.exit_code


def test_evidence_groups_by_status_not_by_the_seconds_it_took() -> None:
    def evidence(step: str, status: EvidenceStatus, seconds: float | None) -> Evidence:
        at = T0 + timedelta(seconds=seconds) if seconds is not None else None
        return Evidence(
            step,
            0,
            "logs",
            f"pp-{step}",
            "present",
            {},
            status,
            T0,
            T0,
            T0 + timedelta(seconds=15),
            event_at=at,
        )

    gaps = [
        finding(
            Category.EVIDENCE_GAP,
            {
                "staging": evidence(step, EvidenceStatus.MISSING, None).describe(),
                "production": evidence(step, EvidenceStatus.RECEIVED, took).describe(),
            },
            step=step,
            field="siem[0]",
        )
        for step, took in (("read-other-team", 0.4), ("write-own", 2.0))
    ]
    assert gaps[0].environments != gaps[1].environments  # "received in 0.4s" against "received in 2.0s"
    (cause,) = group_causes(gaps)
    assert cause.key.values == (("production", "received"), ("staging", "missing"))
    # Slower receipt is a measurement of its own step: never grouped by status.
    slower = [
        finding(
            Category.LATENCY_MISMATCH, g.environments, step=g.step, field="siem[0]", severity=Severity.MEDIUM
        )
        for g in gaps
    ]
    assert len(group_causes(slower)) == 2


def test_the_exit_code_on_causes_agrees_with_the_findings() -> None:
    inconclusive = finding(Category.INCONCLUSIVE, {"staging": "error: timeout"})
    gap = finding(Category.GRANT_MISMATCH, {"staging": "a", "production": "b"}, field="policies")
    base = six_steps().comparisons[0]
    for findings, code in (
        ((), ExitCode.OK),
        ((inconclusive,), ExitCode.INCONCLUSIVE),
        ((inconclusive, gap), ExitCode.FINDINGS),
    ):
        report = Report(T0, (Comparison(base.spec, base.runs, findings),))
        assert build_view(report).verdict.exit_code is code is report.exit_code


# ---------------------------------------------------------------- secrets


def test_secrets_are_masked_in_the_cause_line_and_the_json_causes() -> None:
    leaked = "leak" + secrets.token_hex(16)
    redactor = Redactor([Secret(leaked, "aws secret key")])
    # A value from a server and a step named after one: both reach the cause's entry and its seen line.
    found = tuple(
        finding(
            Category.GRANT_MISMATCH,
            {"staging": f"policies {leaked}", "production": "default"},
            field="policies",
            scenario="token-fetch",
            step=f"step-{i}-{leaked}",
            message=f"differs: {leaked}",
        )
        for i in range(5)
    )
    base = six_steps().comparisons[0]
    report = Report(T0, (Comparison(base.spec, base.runs, found),))
    assert leaked in render_terminal(report, Redactor(), width=400)  # it is shown: the test bites
    for width in (40, 400):
        out = render_terminal(report, redactor, width=width)
        assert leaked not in out and leaked[4:16] not in out
    out = render_terminal(report, redactor, width=400)
    assert "Findings (5): cause #1 below" in out
    assert re.search(
        r"seen in 5 steps: token-fetch/step-0-\*\*\*, token-fetch/step-1-\*\*\*, .*… and 1 more", out
    )
    text = render_json(report, redactor)
    assert leaked not in text
    doc = json.loads(text)
    assert doc["causes"][0]["environments"]["staging"] == "policies ***"
    assert {o["step"] for o in doc["causes"][0]["occurrences"]} == {f"step-{i}-***" for i in range(5)}
