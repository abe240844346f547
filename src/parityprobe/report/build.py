"""Building the report view: the rules of what a report says, applied once for every format.

See :mod:`parityprobe.report.view` for what the view holds.
"""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType

from parityprobe.compare.cleanup import UNDO_PREFIX, is_undo
from parityprobe.compare.timing import took
from parityprobe.model import Category, Comparison, Finding, Observation, Outcome, Report, Run, Severity
from parityprobe.report.causes import Cause, actions, group_causes
from parityprobe.report.verdict import verdict
from parityprobe.report.view import (
    CLEANUP_FAILED,
    CauseView,
    Cell,
    CleanupEntry,
    FailedCleanup,
    FindingView,
    ReportView,
    RunLabel,
    ScenarioView,
    StepRow,
    Summary,
)


def build_view(report: Report) -> ReportView:
    """The view of ``report``."""
    grouped = causes(report)
    environments = {c.scenario: c.environments for c in report.comparisons}
    shown = tuple(
        CauseView(number, cause, _finding(cause.finding, environments.get(cause.finding.scenario, ())))
        for number, cause in enumerate(grouped, start=1)
    )
    return ReportView(
        generated_at=report.generated_at,
        scenarios=tuple(_scenario(c, shown) for c in report.comparisons),
        summary=summary(report, grouped),
        verdict=verdict(report, grouped),
        report=report,
        causes=shown,
    )


def causes(report: Report) -> tuple[Cause, ...]:
    """The report's findings grouped by cause, most severe first."""
    return group_causes(report.findings, actions(report.comparisons))


def by_severity(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """Most severe first; findings of one severity keep their order (the comparator's)."""
    return tuple(sorted(findings, key=lambda f: f.severity.rank))


def cell(obs: Observation | None, environment: str) -> Cell:
    """The cell of one observation (or of its absence)."""
    if obs is None:
        return Cell(environment, observed=False)
    return Cell(
        environment,
        observed=True,
        decision=obs.describe(),
        outcome=obs.outcome,
        latency_ms=obs.latency_ms,
        grant=tuple(obs.grant.lines()),
        waited=_waited(obs),
        waits=tuple(f"{name}: {took(seconds)}" for name, seconds in sorted(obs.waits.items())),
        declared=f"declared {obs.declared.value}" if obs.declared is not None else None,
        # Only errors need the SDK's words to be diagnosed; a decision's normalised reason says enough.
        error_detail=obs.detail if obs.detail and obs.outcome is Outcome.ERROR else None,
    )


def _waited(obs: Observation) -> str | None:
    if obs.attempts is None:
        return None
    tries = f"{obs.attempts} attempt{'s' if obs.attempts != 1 else ''}"
    if obs.waited_seconds is None:
        return f"not reached ({tries})"
    return f"{took(obs.waited_seconds)} ({tries})"


def undo_label(step: str, probe: str) -> str:
    """``undo 1: vault.secret_id_destroy`` for the runner's ``undo.1``."""
    return f"undo {step.removeprefix(UNDO_PREFIX)}: {probe}"


def summary(report: Report, grouped: tuple[Cause, ...] | None = None) -> Summary:
    """The report's counts (of causes: ``grouped``, or the report's own), and what was compared and left
    unchecked."""
    findings = report.findings
    grouped = causes(report) if grouped is None else grouped
    severities = Counter(c.severity for c in grouped)
    categories = Counter(c.category for c in grouped)
    return Summary(
        scenarios=len(report.comparisons),
        runs=sum(len(c.runs) for c in report.comparisons),
        findings=len(findings),
        by_severity=MappingProxyType({s: severities[s] for s in Severity}),
        by_category=MappingProxyType({c: categories[c] for c in Category}),
        environments=tuple(dict.fromkeys(run.environment for c in report.comparisons for run in c.runs)),
        compared=bool(report.comparisons) and all(c.compared for c in report.comparisons),
        unchecked_steps=sum(len(c.unchecked) for c in report.comparisons),
        causes=len(grouped),
    )


def _scenario(comparison: Comparison, shown: tuple[CauseView, ...] = ()) -> ScenarioView:
    unchecked = comparison.unchecked
    rows = []
    for step, observations in comparison.pairs():
        on_step = by_severity(tuple(f for f in comparison.findings if f.step == step))
        rows.append(
            StepRow(
                step=step,
                cells=tuple(cell(observations.get(env), env) for env in comparison.environments),
                severities=tuple(dict.fromkeys(f.severity for f in on_step)),
                unchecked=step in unchecked,
                siem=tuple(
                    f"{run.environment}: {e.describe()}"
                    for run in comparison.runs
                    for e in run.evidence
                    if e.step == step
                ),
            )
        )
    return ScenarioView(
        id=comparison.scenario,
        description=comparison.description,
        runs=tuple(RunLabel(run.environment, run.id) for run in comparison.runs),
        rows=tuple(rows),
        findings=tuple(_finding(f, comparison.environments) for f in by_severity(comparison.findings)),
        failed_cleanups=tuple(_cleanup(run) for run in comparison.runs if _cleanup_failed(run)),
        compared=comparison.compared,
        unchecked=unchecked,
        causes=_causes_of(comparison, shown),
    )


def _causes_of(comparison: Comparison, shown: tuple[CauseView, ...]) -> tuple[int, ...]:
    """The numbers of the causes with an occurrence among the comparison's own findings."""
    own = {id(f) for f in comparison.findings}
    return tuple(view.number for view in shown if any(id(f) in own for f in view.cause.occurrences))


def _finding(finding: Finding, environments: tuple[str, ...]) -> FindingView:
    if finding.step is None:
        place = "scenario"
    elif is_undo(finding.step):
        place = f"undo {finding.step.removeprefix(UNDO_PREFIX)}"
    else:
        place = f"step {finding.step}"
    # The scenario's environments first, in run order, then any other keys the finding carries.
    keys = [e for e in environments if e in finding.environments]
    keys += [k for k in finding.environments if k not in keys]
    return FindingView(finding, place, tuple((k, finding.environments[k]) for k in keys))


def _cleanup_failed(run: Run) -> bool:
    return any(obs.outcome in CLEANUP_FAILED for obs in run.cleanup)


def _cleanup(run: Run) -> FailedCleanup:
    entries = tuple(
        CleanupEntry(
            label=undo_label(obs.step, obs.probe) if is_undo(obs.step) else obs.step,
            undo=is_undo(obs.step),
            failed=obs.outcome in CLEANUP_FAILED,
            cell=cell(obs, run.environment),
            detail=obs.detail or None,
        )
        for obs in run.cleanup
    )
    return FailedCleanup(run.environment, run.id, entries)
