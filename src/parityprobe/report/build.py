"""Building the report view: the rules of what a report says, applied once for every format.

See :mod:`parityprobe.report.view` for what the view holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date
from types import MappingProxyType

from parityprobe.compare.cleanup import UNDO_PREFIX, is_undo
from parityprobe.compare.timing import took
from parityprobe.model import Category, Comparison, Finding, Observation, Outcome, Report, Run, Severity
from parityprobe.report.causes import Cause, actions, group_causes
from parityprobe.report.divergences import Applied, Declaration, Match, apply
from parityprobe.report.guidance import guidance
from parityprobe.report.verdict import verdict
from parityprobe.report.view import (
    CLEANUP_FAILED,
    AcceptedView,
    CauseView,
    Cell,
    CleanupEntry,
    FailedCleanup,
    FindingView,
    LatencyNote,
    ReportView,
    RunLabel,
    ScenarioView,
    StepRow,
    Summary,
    TrendPoint,
    UnmatchedView,
)


def build_view(
    report: Report,
    divergences: Sequence[Declaration] = (),
    today: date | None = None,
    trend: Sequence[TrendPoint] = (),
) -> ReportView:
    """The view of ``report``; the findings ``divergences`` accept on ``today`` (by default the day the report
    was generated, in UTC) are set apart and count for nothing (:mod:`parityprobe.report.divergences`).
    ``trend`` is the store's history, oldest first, for reports made from a store."""
    applied = apply(report.findings, divergences, today or _day_of(report))
    grouped = group_causes(applied.counted, actions(report.comparisons))
    environments = {c.scenario: c.environments for c in report.comparisons}
    shown = tuple(
        CauseView(
            number,
            cause,
            _finding(
                cause.finding, environments.get(cause.finding.scenario, ()), _cause_note(cause, applied)
            ),
        )
        for number, cause in enumerate(grouped, start=1)
    )
    counted = {id(f) for f in applied.counted}
    return ReportView(
        generated_at=report.generated_at,
        scenarios=tuple(_scenario(c, shown, counted, applied) for c in report.comparisons),
        summary=summary(report, grouped),
        verdict=verdict(report, grouped),
        report=report,
        causes=shown,
        accepted=tuple(_accepted(m, environments) for m in applied.accepted),
        expired=tuple(_accepted(m, environments) for m in applied.expired),
        unmatched=tuple(UnmatchedView(d.source, _declared(d), d) for d in applied.unmatched),
        trend=tuple(trend),
    )


def _accepted(match: Match, environments: dict[str, tuple[str, ...]]) -> AcceptedView:
    declaration = match.declaration
    return AcceptedView(
        _finding(match.finding, environments.get(match.finding.scenario, ())),
        declaration.owner,
        declaration.reason,
        declaration.expires.isoformat(),
        declaration.source,
    )


def _day_of(report: Report) -> date:
    at = report.generated_at
    return (at.astimezone(UTC) if at.tzinfo is not None else at).date()


def _cause_note(cause: Cause, applied: Applied) -> str | None:
    """The expired acceptance of the cause's first occurrence that had one: why the cause is back."""
    return next((n for f in cause.occurrences if (n := applied.expired_note(f)) is not None), None)


def _declared(declaration: Declaration) -> str:
    """``token-ttl/login* grant_mismatch · field ttl · staging (platform-team, until 2026-03-31)``."""
    where = declaration.scenario + (f"/{declaration.step}" if declaration.step else "")
    parts = [where, declaration.category.value]
    if declaration.field:
        parts.append(f"field {declaration.field}")
    if declaration.environments:
        parts.append(", ".join(declaration.environments))
    return " · ".join(parts) + f" ({declaration.owner}, until {declaration.expires.isoformat()})"


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
    grouped = causes(report) if grouped is None else grouped
    severities = Counter(c.severity for c in grouped)
    categories = Counter(c.category for c in grouped)
    return Summary(
        scenarios=len(report.comparisons),
        runs=sum(len(c.runs) for c in report.comparisons),
        findings=sum(len(c.occurrences) for c in grouped),  # accepted divergences are in no cause
        by_severity=MappingProxyType({s: severities[s] for s in Severity}),
        by_category=MappingProxyType({c: categories[c] for c in Category}),
        environments=tuple(dict.fromkeys(run.environment for c in report.comparisons for run in c.runs)),
        compared=bool(report.comparisons) and all(c.compared for c in report.comparisons),
        unchecked_steps=sum(len(c.unchecked) for c in report.comparisons),
        causes=len(grouped),
    )


def _scenario(
    comparison: Comparison,
    shown: tuple[CauseView, ...] = (),
    counted: set[int] | None = None,
    applied: Applied | None = None,
) -> ScenarioView:
    """One scenario's view; ``counted`` (ids) are its findings not accepted as divergences (all if None)."""
    unchecked = comparison.unchecked
    own = tuple(f for f in comparison.findings if counted is None or id(f) in counted)
    rows = []
    for step, observations in comparison.pairs():
        on_step = by_severity(tuple(f for f in own if f.step == step))
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
                latency=tuple(
                    LatencyNote((j.reference, j.environment), j.outcome.value, j.explanation, j.samples)
                    for j in comparison.latency
                    if j.step == step
                ),
            )
        )
    return ScenarioView(
        id=comparison.scenario,
        description=comparison.description,
        runs=tuple(RunLabel(run.environment, run.id) for run in comparison.runs),
        rows=tuple(rows),
        findings=tuple(
            _finding(f, comparison.environments, applied.expired_note(f) if applied else None)
            for f in by_severity(own)
        ),
        failed_cleanups=tuple(_cleanup(run) for run in comparison.runs if _cleanup_failed(run)),
        compared=comparison.compared,
        unchecked=unchecked,
        causes=_causes_of(comparison, shown),
    )


def _causes_of(comparison: Comparison, shown: tuple[CauseView, ...]) -> tuple[int, ...]:
    """The numbers of the causes with an occurrence among the comparison's own findings."""
    own = {id(f) for f in comparison.findings}
    return tuple(view.number for view in shown if any(id(f) in own for f in view.cause.occurrences))


def _finding(finding: Finding, environments: tuple[str, ...], note: str | None = None) -> FindingView:
    if finding.step is None:
        place = "scenario"
    elif is_undo(finding.step):
        place = f"undo {finding.step.removeprefix(UNDO_PREFIX)}"
    else:
        place = f"step {finding.step}"
    # The scenario's environments first, in run order, then any other keys the finding carries.
    keys = [e for e in environments if e in finding.environments]
    keys += [k for k in finding.environments if k not in keys]
    values = tuple((k, finding.environments[k]) for k in keys)
    return FindingView(finding, place, values, note, guidance=guidance(finding))


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
