"""The report view: the matrix, finding order, failed cleanups and undo labels, the summary, and the verdict
for every shape of run (compared, one environment, nothing checked), in the view and in both formats."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from parityprobe.compare.comparator import compare
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
    Tier,
)
from parityprobe.redact import Redactor
from parityprobe.report import REPORT_SCHEMA, build_view, render_json, render_terminal
from parityprobe.report.view import DETAIL_LIMIT, clip
from parityprobe.secret import Secret
from parityprobe.spec import Bounds, EnvironmentFacts, ScenarioSpec, StepSpec
from tests.unit.test_reports import ENVS, STEPS, T0, build, check, obs, quiet_comparison

# One step with an expectation, three without: with one environment, three steps are unchecked.
SOLO = ScenarioSpec(
    "solo",
    "digest-solo",
    "One environment",
    (
        StepSpec("login", "vault.approle_login", expect_outcome=Outcome.ALLOWED),
        StepSpec("read-own", "vault.kv_read"),
        StepSpec("read-other-team", "vault.kv_read"),
        StepSpec("assume-break-glass", "aws.assume_role"),
    ),
)
NO_EXPECTATIONS = ScenarioSpec("bare", "digest-bare", "", tuple(StepSpec(s.id, s.probe) for s in SOLO.steps))


def a_run(
    spec: ScenarioSpec, env: str, outcomes: dict[str, Outcome], cleanup: tuple[Observation, ...] = ()
) -> Run:
    tier = Tier.PRODUCTION if env == "production" else Tier.STAGING
    observations = tuple(
        obs(env, step.id, outcomes.get(step.id, Outcome.ALLOWED), probe=step.probe, latency_ms=1.0)
        if outcomes.get(step.id) is not Outcome.ERROR
        else obs(env, step.id, Outcome.ERROR, probe=step.probe, error_kind=ErrorKind.TIMEOUT)
        for step in spec.steps
    )
    return Run(
        f"run-{spec.id}-{env}",
        spec,
        EnvironmentFacts(env, tier),
        T0,
        T0 + timedelta(seconds=5),
        observations,
        cleanup,
    )


def report_of(*comparisons: Comparison) -> Report:
    return Report(T0, comparisons)


def solo(
    outcomes: dict[str, Outcome] | None = None, spec: ScenarioSpec = SOLO, **kw: tuple[Observation, ...]
) -> Comparison:
    return compare(spec, (a_run(spec, "staging", outcomes or {}, **kw),))


def undo(
    env: str, index: int, outcome: Outcome, probe: str = "vault.secret_id_destroy", **kw: Any
) -> Observation:
    """A recorded undo's observation, as the runner names it (``undo.<index>``)."""
    return obs(env, f"undo.{index}", outcome, probe=probe, **kw)


# ---------------------------------------------------------------- the matrix and the findings


def test_matrix_has_a_cell_per_step_and_environment() -> None:
    view = build_view(build().report)
    scenario = view.scenarios[0]
    assert scenario.environments == ENVS and [r.step for r in scenario.rows] == list(STEPS)
    assert (
        scenario.heading == "forbidden-calls — The payments workload reads its own secret and nothing else."
    )
    login = scenario.rows[0].cells[0]
    assert (login.environment, login.decision, login.latency) == ("staging", "allowed", "12.3 ms")
    assert login.grant == ("ttl 24h", "policies default, payments", "identity approle/payments", "renewable")
    timeout = scenario.rows[3].cells[0]
    assert timeout.outcome is Outcome.ERROR and timeout.error_detail is not None
    assert timeout.error_detail.startswith("POST https://sts.local/?token=")
    assert scenario.rows[3].cells[1].error_detail is None and scenario.rows[3].cells[1].latency is None


def test_only_errors_carry_the_sdk_detail() -> None:
    spec = ScenarioSpec("d", "x", "", (StepSpec("login", "p"),))
    denied = obs("staging", "login", Outcome.DENIED, reason="permission denied", detail="403 body")
    run = Run("r", spec, EnvironmentFacts("staging", Tier.STAGING), T0, T0, (denied,))
    cell = build_view(report_of(Comparison(spec, (run,), ()))).scenarios[0].rows[0].cells[0]
    assert cell.decision == "denied (permission denied)" and cell.error_detail is None


def test_missing_observation_is_a_cell_of_its_own() -> None:
    spec = ScenarioSpec("m", "x", "", (StepSpec("login", "p"), StepSpec("read-own", "p")))
    staging = Run(
        "r1",
        spec,
        EnvironmentFacts("staging", Tier.STAGING),
        T0,
        T0,
        (obs("staging", "login", Outcome.ALLOWED),),
    )
    production = Run(
        "r2",
        spec,
        EnvironmentFacts("production", Tier.PRODUCTION),
        T0,
        T0,
        (obs("production", "login", Outcome.ALLOWED), obs("production", "read-own", Outcome.ALLOWED)),
    )
    view = build_view(report_of(Comparison(spec, (staging, production), ())))
    missing = view.scenarios[0].rows[1].cells[0]
    assert not missing.observed and missing.outcome is None
    assert "— no observation" in render_terminal(view.report, Redactor())


def test_findings_most_severe_first_with_values_environments_first() -> None:
    scenario = build_view(build().report).scenarios[0]
    assert [f.finding.severity for f in scenario.findings] == list(Severity)
    critical = scenario.findings[0]
    assert critical.values == (("staging", "allowed"), ("expected", "denied"))
    assert critical.where == "expectation_violation · step read-other-team"
    assert scenario.findings[1].where == "outcome_mismatch · step read-other-team · field outcome"
    # Distinct severities per row, most severe first; a row without findings is not flagged.
    rows = {r.step: r for r in scenario.rows}
    assert rows["read-other-team"].severities == (Severity.CRITICAL, Severity.HIGH)
    assert rows["login"].severities == (Severity.MEDIUM, Severity.LOW)
    assert not rows["read-own"].flagged and not rows["read-own"].unchecked


def test_summary_counts_every_member() -> None:
    summary = build_view(build().report).summary
    assert (summary.scenarios, summary.runs, summary.findings, summary.inconclusive) == (2, 4, 5, 1)
    assert set(summary.by_category) == set(Category) and summary.by_category[Category.CLEANUP_FAILED] == 0
    assert list(summary.by_severity) == list(Severity)
    assert summary.environments == ENVS and summary.compared and summary.unchecked_steps == 0


def test_clip_shortens_to_the_limit() -> None:
    assert clip("short") == "short"
    long = clip("x" * 1000)
    assert len(long) == DETAIL_LIMIT and long.endswith("…")


# ---------------------------------------------------------------- cleanups and undos


def cleanup_comparison() -> Comparison:
    cleanup = (
        obs("production", "revoke-token", Outcome.NOT_FOUND),
        undo("production", 1, Outcome.DENIED, reason="permission denied", detail="403 from target"),
        undo("production", 2, Outcome.NOT_FOUND, probe="aws.delete_access_key"),
    )
    runs = (a_run(SOLO, "staging", {}), a_run(SOLO, "production", {}, cleanup))
    return compare(SOLO, runs)


def test_failed_cleanups_label_undos() -> None:
    scenario = build_view(report_of(cleanup_comparison())).scenarios[0]
    (block,) = scenario.failed_cleanups  # staging's cleanup did not fail: no block
    assert (block.environment, block.run_id, block.failed, len(block.entries)) == (
        "production",
        "run-solo-production",
        1,
        3,
    )
    assert [e.label for e in block.entries] == [
        "revoke-token",
        "undo 1: vault.secret_id_destroy",
        "undo 2: aws.delete_access_key",
    ]
    assert [(e.undo, e.failed) for e in block.entries] == [(False, False), (True, True), (True, False)]
    (finding,) = scenario.findings
    assert finding.finding.category is Category.CLEANUP_FAILED and finding.place == "undo 1"


def test_terminal_labels_undos_not_steps() -> None:
    out = render_terminal(report_of(cleanup_comparison()), Redactor(), width=160)
    assert "Cleanup in production (run run-solo-production): 1 of 3 failed" in out
    assert re.search(
        r"undo 1: vault\.secret_id_destroy\s+denied \(permission denied\)\s+403 from target", out
    )
    assert "undo 2: aws.delete_access_key" in out
    assert "HIGH  #1 cleanup_failed" in out and "seen in 1 step: solo/undo 1" in out
    assert "undo.1" not in out and "undo.2" not in out


def test_verdict_failed_undo_only_is_not_a_parity_gap() -> None:
    report = report_of(cleanup_comparison())
    assert report.exit_code is ExitCode.FINDINGS
    assert build_view(report).verdict.line == "Verdict: CLEANUP FAILED (exit 1)"


# ---------------------------------------------------------------- the verdict: what was done


UNCHECKED = "3 steps unchecked (no expectation)"
SINGLE = "1 environment: expectations checked, nothing compared — "
NOTHING = "NOTHING CHECKED — 1 environment and no step states an expectation"


@pytest.mark.parametrize(
    ("comparisons", "code", "text"),
    [
        pytest.param(
            lambda: (solo(),),
            ExitCode.OK,
            f"{SINGLE}NO EXPECTATION VIOLATIONS (exit 0); {UNCHECKED}",
            id="single-ok",
        ),
        pytest.param(
            lambda: (solo({"login": Outcome.DENIED}),),
            ExitCode.FINDINGS,
            f"{SINGLE}EXPECTATION VIOLATIONS FOUND (exit 1); {UNCHECKED}",
            id="single-violation",
        ),
        pytest.param(
            lambda: (solo({"login": Outcome.ERROR}),),
            ExitCode.INCONCLUSIVE,
            f"{SINGLE}INCONCLUSIVE — no verdict for solo/login (exit 3); {UNCHECKED}",
            id="single-inconclusive",
        ),
        pytest.param(
            lambda: (solo(spec=NO_EXPECTATIONS),), ExitCode.INCONCLUSIVE, f"{NOTHING} (exit 3)", id="nothing"
        ),
        pytest.param(
            lambda: (solo({"read-own": Outcome.ERROR}, spec=NO_EXPECTATIONS),),
            ExitCode.INCONCLUSIVE,
            f"{NOTHING} (exit 3); also no verdict for bare/read-own",
            id="nothing-and-an-error",
        ),
        pytest.param(
            lambda: (solo(spec=NO_EXPECTATIONS, cleanup=(undo("staging", 1, Outcome.ERROR),)),),
            ExitCode.FINDINGS,
            "CLEANUP FAILED (exit 1); nothing else checked: 1 environment and no step states an expectation",
            id="nothing-but-a-failed-undo",
        ),
        pytest.param(
            lambda: (), ExitCode.INCONCLUSIVE, "NOTHING CHECKED — no scenario ran (exit 3)", id="no-scenario"
        ),
        pytest.param(
            lambda: (quiet_comparison(), solo()),
            ExitCode.OK,
            "NO PARITY GAPS FOUND (exit 0); 1 scenario ran in one environment only: expectations checked "
            f"there; {UNCHECKED}",
            id="compared-and-single",
        ),
        pytest.param(
            lambda: (solo(spec=NO_EXPECTATIONS), solo(spec=NO_EXPECTATIONS)),
            ExitCode.INCONCLUSIVE,
            f"{NOTHING} (exit 3)",
            id="nothing-twice",
        ),
    ],
)
def test_verdict_says_what_was_done(comparisons: object, code: ExitCode, text: str) -> None:
    report = report_of(*comparisons())  # type: ignore[operator]
    view = build_view(report)
    assert report.exit_code is code and view.verdict.exit_code is code
    assert view.verdict.text == text
    out = render_terminal(report, Redactor(), width=60)  # narrow: the verdict line is never wrapped
    assert [line for line in out.splitlines() if line.startswith("Verdict:")] == [f"Verdict: {text}"]
    if not any(s.compared for s in view.scenarios):
        assert "PARITY" not in out  # nothing was compared: no claim about parity either way
    assert json.loads(render_json(report, Redactor()))["exit_code"] == int(code)


def test_a_grant_expectation_alone_is_a_check() -> None:
    spec = ScenarioSpec(
        "ttl", "x", "", (StepSpec("login", "vault.approle_login", expect_ttl=Bounds(max=3600)),)
    )
    run = Run(
        "r",
        spec,
        EnvironmentFacts("staging", Tier.STAGING),
        T0,
        T0,
        (obs("staging", "login", Outcome.ALLOWED, grant=Grant(ttl_seconds=86400)),),
    )
    view = build_view(report_of(compare(spec, (run,))))
    assert view.verdict.text == f"{SINGLE}EXPECTATION VIOLATIONS FOUND (exit 1)"
    assert view.summary.unchecked_steps == 0


def test_terminal_marks_unchecked_steps_in_one_environment_only() -> None:
    out = render_terminal(report_of(solo()), Redactor(), width=120)
    rows = {m.group(1): m.group(2) for m in re.finditer(r"│ (\S+)\s+│ \S+\s+│ (\w*)\s*│", out)}
    del rows["step"]  # the header
    assert rows == {
        "login": "",
        "read-own": "unchecked",
        "read-other-team": "unchecked",
        "assume-break-glass": "unchecked",
    }
    assert "unchecked" not in render_terminal(build().report, Redactor(), width=160)


def test_json_summary_says_what_was_compared() -> None:
    single = json.loads(render_json(report_of(solo()), Redactor()))
    assert check(single, REPORT_SCHEMA) == []
    summary = single["summary"]
    assert (summary["environments"], summary["compared"], summary["unchecked_steps"]) == (
        ["staging"],
        False,
        3,
    )
    assert summary["by_category"]["cleanup_failed"] == 0
    both = json.loads(render_json(build().report, Redactor()))["summary"]
    assert (both["environments"], both["compared"], both["unchecked_steps"]) == (list(ENVS), True, 0)
    mixed = json.loads(render_json(report_of(quiet_comparison(), solo()), Redactor()))["summary"]
    assert (mixed["environments"], mixed["compared"], mixed["unchecked_steps"]) == (list(ENVS), False, 3)
    nothing = json.loads(render_json(report_of(), Redactor()))
    assert check(nothing, REPORT_SCHEMA) == [] and nothing["summary"]["compared"] is False


# ---------------------------------------------------------------- redaction of what the view adds


def test_undo_labels_and_verdict_are_redacted() -> None:
    secret = "sv-" + "7" * 20
    redactor = Redactor([Secret(secret, "token")])
    cleanup = (undo("staging", 1, Outcome.ERROR, probe=f"p.{secret}", detail=f"refused {secret} " * 40),)
    spec = ScenarioSpec(f"s-{secret}", "x", "", (StepSpec(f"step-{secret}", "p"),))
    run = Run(
        "r",
        spec,
        EnvironmentFacts("staging", Tier.STAGING),
        T0,
        T0,
        (obs("staging", f"step-{secret}", Outcome.SKIPPED, reason=secret),),
        cleanup,
    )
    report = report_of(compare(spec, (run,)))
    for width in (30, 80, 200):
        for color in (False, True):
            out = render_terminal(report, redactor, color=color, width=width)
            assert secret not in out and secret[3:15] not in out
    assert "undo 1: p.***" in render_terminal(report, redactor, width=400)
    assert secret not in render_json(report, redactor)
