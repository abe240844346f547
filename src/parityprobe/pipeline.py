"""The flow of one invocation: load and validate everything, run, compare, and produce the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from parityprobe.compare.comparator import compare
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.model import Report
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import DEFAULT_STEP_TIMEOUT, Runner, utc_now


def plan(
    environments_file: Path,
    scenario_paths: Sequence[Path],
    redactor: Redactor,
    registry: ProbeRegistry,
    only: Sequence[str] | None = None,
) -> Plan:
    """Everything loaded and checked; raises InputError (every problem, located) before any action."""
    environments = load_environments(environments_file, redactor, only or None)
    scenarios = load_scenarios(scenario_paths)
    return build_plan(environments, scenarios, registry)


def execute(
    the_plan: Plan,
    redactor: Redactor,
    registry: ProbeRegistry,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
) -> Report:
    """Run the plan in every environment and compare the runs, scenario by scenario."""
    runner = Runner(registry, redactor, step_timeout=step_timeout)
    comparisons = tuple(
        compare(result.scenario, result.runs, the_plan.environments) for result in runner.run(the_plan)
    )
    return Report(generated_at=utc_now(), comparisons=comparisons)


def describe(the_plan: Plan) -> str:
    """The plan in words, for ``--dry-run`` and ``validate``: what would run where, touching nothing."""
    envs = ", ".join(f"{e.name} ({e.effective_tier.value})" for e in the_plan.environments)
    lines = [f"environments: {envs}"]
    for scenario in the_plan.scenarios:
        lines.append(f"scenario {scenario.id} ({scenario.source.path})")
        for label, steps in (("step", scenario.steps), ("cleanup", scenario.cleanup)):
            for planned in steps:
                expect = planned.step.expect.outcome
                expected = f", expect {expect.value}" if expect else ""
                lines.append(
                    f"  {label} {planned.step.id}: {planned.step.probe} [{planned.effect.value}{expected}]"
                )
    return "\n".join(lines)
