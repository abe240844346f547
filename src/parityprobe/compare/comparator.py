"""The comparator: pairs one scenario's runs step by step and applies the rules.

To keep one gap one finding: an environment that violates an expectation is reported as that, and the
outcome or grant difference it causes is not reported again as a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence

from parityprobe.compare import grants, outcomes
from parityprobe.compare.context import StepView
from parityprobe.config.environments import Environment
from parityprobe.config.plan import PlannedScenario
from parityprobe.model import Comparison, Finding, Run


def compare(
    scenario: PlannedScenario, runs: Sequence[Run], environments: Sequence[Environment]
) -> Comparison:
    """The comparison of ``runs`` (one per environment, in ``environments`` order)."""
    by_env = {run.environment: run for run in runs}
    envs = tuple(env for env in environments if env.name in by_env)
    findings: list[Finding] = []
    for planned in scenario.steps:
        observations = tuple(by_env[env.name].observation(planned.step.id) for env in envs)
        present = [(e, o) for e, o in zip(envs, observations, strict=True) if o is not None]
        view = StepView(
            scenario.id,
            planned.step,
            tuple(e for e, _ in present),
            tuple(o for _, o in present if o is not None),
        )
        findings.extend(step_findings(view))
    order = {p.step.id: i for i, p in enumerate(scenario.steps)}
    findings.sort(key=lambda f: (f.severity.rank, order.get(f.step or "", 0)))
    return Comparison(
        scenario=scenario.id,
        description=scenario.source.scenario.description,
        steps=tuple(p.step.id for p in scenario.steps),
        runs=tuple(by_env[env.name] for env in envs),
        findings=tuple(findings),
    )


def step_findings(view: StepView) -> list[Finding]:
    """Every rule, applied to one step."""
    violations = outcomes.expectation_violations(view)
    grant_violations, covered = grants.expectation_violations(view)
    return [
        *outcomes.inconclusive(view),
        *violations,
        *outcomes.outcome_mismatch(view, explained=bool(violations)),
        *grant_violations,
        *grants.mismatches(view, covered),
    ]
