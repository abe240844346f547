"""The comparator: pairs one scenario's runs step by step and applies the rules.

It works from recorded facts only (the :class:`~parityprobe.spec.ScenarioSpec` and what each run carries),
so runs read back from a store compare exactly as live ones. To keep one gap one finding: an environment
that violates an expectation is reported as that, and the outcome or grant difference it causes is not
reported again as a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence

from parityprobe.compare import cleanup, declared, drift, evidence, grants, latency, outcomes, servers, timing
from parityprobe.compare.context import StepView
from parityprobe.compare.latency import NO_HISTORY, LatencyHistory
from parityprobe.model import Comparison, Finding, LatencyJudgement, Run
from parityprobe.spec import ScenarioSpec


def compare(spec: ScenarioSpec, runs: Sequence[Run], history: LatencyHistory = NO_HISTORY) -> Comparison:
    """The comparison of ``runs`` (one per environment, in the order given) against ``spec``; ``history``
    holds the steps' earlier latencies, for the latency judge (:mod:`parityprobe.compare.latency`)."""
    findings: list[Finding] = [*cleanup.drift(spec, runs)]
    judgements: list[LatencyJudgement] = []
    for step in spec.steps:
        present = [(run.env, obs) for run in runs if (obs := run.observation(step.id)) is not None]
        view = StepView(spec.id, step, tuple(e for e, _ in present), tuple(o for _, o in present))
        findings.extend(step_findings(view))
        step_judgements, slower = latency.judged(view, history)
        judgements.extend(step_judgements)
        findings.extend(slower)
    findings.extend(evidence.findings(spec.id, runs))
    findings.extend(cleanup.failures(spec, runs))
    findings.extend(servers.drift(spec, runs, findings))
    order = {step.id: i for i, step in enumerate(spec.steps)}
    findings.sort(key=lambda f: (f.severity.rank, order.get(f.step or "", 0)))
    return Comparison(spec=spec, runs=tuple(runs), findings=tuple(findings), latency=tuple(judgements))


def step_findings(view: StepView) -> list[Finding]:
    """Every rule, applied to one step."""
    violations = outcomes.expectation_violations(view)
    grant_violations, covered = grants.expectation_violations(view)
    differences = (
        drift.config_findings(view) if drift.is_config_snapshot(view) else grants.mismatches(view, covered)
    )
    return [
        *outcomes.inconclusive(view),
        *violations,
        *outcomes.outcome_mismatch(view, explained=bool(violations)),
        *grant_violations,
        *differences,
        *timing.wait_mismatch(view),
        *declared.disagreements(view),
        *declared.unanswered(view),
    ]
