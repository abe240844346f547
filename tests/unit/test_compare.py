"""Comparator rules: categories, severities, and one gap reported once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from parityprobe.compare.comparator import compare
from parityprobe.compare.grants import normalise
from parityprobe.model import (
    Category,
    Comparison,
    ErrorKind,
    ExitCode,
    Grant,
    Observation,
    Outcome,
    Report,
    Run,
    Severity,
)
from parityprobe.spec import environment_facts, scenario_spec
from tests.unit.test_plan import plan_for

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ENVS = """\
environments:
  staging: {vars: {account_id: "111111111111", team: payments}}
  production: {vars: {account_id: "222222222222", team: payments}}
"""


def obs(env: str, outcome: Outcome, grant: Grant | None = None, kind: ErrorKind | None = None) -> Observation:
    return Observation(
        step="s1",
        probe="test.echo",
        environment=env,
        correlation_id=f"pp-x-{env}",
        outcome=outcome,
        started_at=NOW,
        error_kind=kind,
        grant=grant or Grant(),
    )


def comparison(
    tmp_path: Path, expect: str, staging: Observation, production: Observation, extra: str = ""
) -> Comparison:
    plan = plan_for(
        tmp_path, f"id: sc\nsteps:\n  - {{id: s1, probe: test.echo, expect: {expect}{extra}}}\n", ENVS
    )
    spec = scenario_spec(plan.scenarios[0])
    facts = {env.name: environment_facts(env) for env in plan.environments}
    runs = [
        Run(f"r-{o.environment}", spec, facts[o.environment], NOW, NOW, (o,)) for o in (staging, production)
    ]
    return compare(spec, runs)


def only(c: Comparison) -> tuple[Category, Severity, dict[str, str]]:
    (finding,) = c.findings
    return finding.category, finding.severity, dict(finding.environments)


def test_equal_decisions_give_no_finding(tmp_path: Path) -> None:
    c = comparison(
        tmp_path, "{outcome: denied}", obs("staging", Outcome.DENIED), obs("production", Outcome.DENIED)
    )
    assert c.findings == ()


def test_deny_path_missing_in_staging_is_high_and_reported_once(tmp_path: Path) -> None:
    c = comparison(
        tmp_path, "{outcome: denied}", obs("staging", Outcome.ALLOWED), obs("production", Outcome.DENIED)
    )
    category, severity, values = only(c)
    assert (category, severity) == (Category.EXPECTATION_VIOLATION, Severity.HIGH)
    assert values == {"staging": "allowed", "production": "denied"}
    assert c.findings[0].message.startswith("staging:")


def test_forbidden_call_allowed_in_production_is_critical(tmp_path: Path) -> None:
    c = comparison(
        tmp_path, "{outcome: denied}", obs("staging", Outcome.DENIED), obs("production", Outcome.ALLOWED)
    )
    assert only(c)[:2] == (Category.EXPECTATION_VIOLATION, Severity.CRITICAL)


def test_needed_call_refused(tmp_path: Path) -> None:
    c = comparison(
        tmp_path, "{outcome: allowed}", obs("staging", Outcome.ALLOWED), obs("production", Outcome.DENIED)
    )
    assert only(c)[:2] == (Category.EXPECTATION_VIOLATION, Severity.HIGH)
    c = comparison(
        tmp_path, "{outcome: allowed}", obs("staging", Outcome.DENIED), obs("production", Outcome.ALLOWED)
    )
    assert only(c)[:2] == (Category.EXPECTATION_VIOLATION, Severity.MEDIUM)


def test_outcome_mismatch_without_expectation(tmp_path: Path) -> None:
    c = comparison(tmp_path, "{}", obs("staging", Outcome.ALLOWED), obs("production", Outcome.DENIED))
    assert only(c)[:2] == (Category.OUTCOME_MISMATCH, Severity.HIGH)
    c = comparison(tmp_path, "{}", obs("staging", Outcome.NOT_FOUND), obs("production", Outcome.DENIED))
    assert only(c)[:2] == (Category.OUTCOME_MISMATCH, Severity.LOW)


def test_an_error_is_inconclusive_never_a_deny(tmp_path: Path) -> None:
    timeout = obs("staging", Outcome.ERROR, kind=ErrorKind.TIMEOUT)
    c = comparison(tmp_path, "{outcome: denied}", timeout, obs("production", Outcome.DENIED))
    category, severity, values = only(c)
    assert (category, severity) == (Category.INCONCLUSIVE, Severity.MEDIUM)
    assert values == {"staging": "error: timeout", "production": "denied"}
    report = Report(NOW, (c,))
    assert report.exit_code is ExitCode.INCONCLUSIVE


def test_inconclusive_does_not_hide_a_violation_elsewhere(tmp_path: Path) -> None:
    skipped = obs("staging", Outcome.SKIPPED)
    c = comparison(tmp_path, "{outcome: denied}", skipped, obs("production", Outcome.ALLOWED))
    assert {(f.category, f.severity) for f in c.findings} == {
        (Category.INCONCLUSIVE, Severity.MEDIUM),
        (Category.EXPECTATION_VIOLATION, Severity.CRITICAL),
    }
    assert c.findings[0].severity is Severity.CRITICAL  # most severe first
    assert Report(NOW, (c,)).exit_code is ExitCode.FINDINGS


def test_ttl_expectation_is_reported_instead_of_the_mismatch(tmp_path: Path) -> None:
    c = comparison(
        tmp_path,
        "{outcome: allowed, ttl: {max: 1h}}",
        obs("staging", Outcome.ALLOWED, Grant(ttl_seconds=86400)),
        obs("production", Outcome.ALLOWED, Grant(ttl_seconds=3600)),
    )
    category, severity, values = only(c)
    assert (category, severity, c.findings[0].field) == (
        Category.EXPECTATION_VIOLATION,
        Severity.MEDIUM,
        "ttl",
    )
    assert values == {"staging": "24h", "production": "1h"}


def test_ttl_mismatch_beyond_tolerance(tmp_path: Path) -> None:
    def ttl_pair(a: int, b: int, extra: str = "") -> Comparison:
        return comparison(
            tmp_path,
            "{}",
            obs("staging", Outcome.ALLOWED, Grant(ttl_seconds=a)),
            obs("production", Outcome.ALLOWED, Grant(ttl_seconds=b)),
            extra,
        )

    assert ttl_pair(3600, 3590).findings == ()  # clock noise
    assert only(ttl_pair(86400, 3600))[:2] == (Category.GRANT_MISMATCH, Severity.MEDIUM)
    assert ttl_pair(86400, 3600, ", tolerance: {ttl: 1d}").findings == ()


def test_policies_and_identity_compared_after_normalising_vars(tmp_path: Path) -> None:
    same = comparison(
        tmp_path,
        "{}",
        obs("staging", Outcome.ALLOWED, Grant(identity="arn:aws:iam::111111111111:user/payments-app")),
        obs("production", Outcome.ALLOWED, Grant(identity="arn:aws:iam::222222222222:user/payments-app")),
    )
    assert same.findings == ()
    differ = comparison(
        tmp_path,
        "{}",
        obs(
            "staging",
            Outcome.ALLOWED,
            Grant(identity="arn:aws:iam::111111111111:role/admin", policies=frozenset({"a"})),
        ),
        obs(
            "production",
            Outcome.ALLOWED,
            Grant(identity="arn:aws:iam::222222222222:user/payments-app", policies=frozenset({"a", "b"})),
        ),
    )
    fields = {f.field: f for f in differ.findings}
    assert set(fields) == {"identity", "policies"}
    assert fields["identity"].environments["staging"] == "arn:aws:iam::${vars.account_id}:role/admin"


def test_normalise_prefers_longest_values() -> None:
    assert (
        normalise("bucket-111111111111/x", {"a": "111111111111", "b": "bucket-111111111111"}) == "${vars.b}/x"
    )
    assert normalise(None, {}) is None
