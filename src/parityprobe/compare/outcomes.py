"""Rules on decisions: expected outcomes, environments that disagree, and steps with no verdict."""

from __future__ import annotations

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.config.durations import humanise
from parityprobe.model import Category, Finding, Outcome, Tier


def inconclusive(view: StepView) -> list[Finding]:
    """One finding when any environment has no verdict for the step."""
    missing = [
        (env, obs) for env, obs in view.pairs() if not obs.outcome.is_verdict and not obs.skipped_by_choice
    ]
    if not missing:
        return []
    names = ", ".join(env.name for env, _ in missing)
    reasons = "; ".join(f"{env.name}: {obs.describe()}" for env, obs in missing)
    return [
        view.finding(
            Category.INCONCLUSIVE,
            severity.INCONCLUSIVE,
            view.outcomes(),
            f"no verdict for {view.step.probe} in {names}",
            f"{reasons}. An error or a skipped step proves nothing about access: this step is neither "
            "parity nor a deny until it runs cleanly.",
        )
    ]


def expectation_violations(view: StepView) -> list[Finding]:
    """One finding per environment whose decision is not the one the scenario expects."""
    expected = view.step.expect_outcome
    if expected is None:
        return []
    findings = []
    for env, obs in view.pairs():
        if not obs.outcome.is_verdict or obs.outcome is expected:
            continue
        grade = severity.expectation(expected, obs.outcome, env.tier)
        findings.append(
            view.finding(
                Category.EXPECTATION_VIOLATION,
                grade,
                view.outcomes(),
                f"{env.name}: {view.step.probe} was {obs.describe()}; the scenario expects {expected.value}"
                + _in_time(view),
                _explain(view, env.name, env.tier, expected, obs.outcome),
                field="outcome",
            )
        )
    return findings


def _in_time(view: StepView) -> str:
    within = view.step.expect_within
    return "" if within is None else f" within {humanise(within)}"


def _explain(view: StepView, name: str, tier: Tier, expected: Outcome, observed: Outcome) -> str:
    others = [
        (env.name, obs.outcome) for env, obs in view.pairs() if env.name != name and obs.outcome is expected
    ]
    agree = f" ({', '.join(n for n, _ in others)} {expected.value} it)" if others else ""
    if observed is Outcome.ALLOWED:
        if tier is Tier.PRODUCTION:
            return f"Production allows an action that must be refused{agree}: a live gap in this control."
        return (
            f"{name} allows an action that must be refused{agree}. A deny path it does not enforce cannot be "
            "tested there: staging would hide the failure, or the hole, that production has."
        )
    if expected is Outcome.ALLOWED:
        return f"{name} refuses an action the workload needs{agree}; a deploy would fail there."
    return f"{name} refuses the action, but reports it as {observed.value}, not {expected.value}{agree}."


def outcome_mismatch(view: StepView, explained: bool) -> list[Finding]:
    """Environments that decided differently, unless an expectation violation already says why."""
    decided = {obs.outcome for _, obs in view.pairs() if obs.outcome.is_verdict}
    if explained or len(decided) < 2:
        return []
    return [
        view.finding(
            Category.OUTCOME_MISMATCH,
            severity.mismatch(decided),
            view.outcomes(),
            f"environments decided {view.step.probe} differently",
            "The scenario states no expected outcome for this step, so no environment is known to be "
            "right; the difference itself means staging does not predict production here.",
            field="outcome",
        )
    ]
