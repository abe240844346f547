"""Rules on a scenario as a whole: undos that failed, and environments that ran different texts of it."""

from __future__ import annotations

from collections.abc import Sequence

from parityprobe.compare import severity
from parityprobe.model import Category, Finding, Outcome, Run
from parityprobe.spec import ScenarioSpec

# Step ids never contain a dot, so an undo's observation can never be taken for a step's.
UNDO_PREFIX = "undo."
# A cleanup or undo the target refused or failed left what was created; NOT_FOUND means it is already gone,
# SKIPPED that there was nothing to do.
FAILED_CLEANUP = (Outcome.ERROR, Outcome.DENIED)


def is_undo(step_id: str) -> bool:
    return step_id.startswith(UNDO_PREFIX)


def failures(spec: ScenarioSpec, runs: Sequence[Run]) -> list[Finding]:
    """One finding per undo that did not complete."""
    findings = []
    for run in runs:
        for obs in run.cleanup:
            if not is_undo(obs.step) or obs.outcome not in FAILED_CLEANUP:
                continue
            findings.append(
                Finding(
                    category=Category.CLEANUP_FAILED,
                    severity=severity.cleanup_failed(run.env.tier),
                    scenario=spec.id,
                    step=obs.step,
                    environments={run.environment: obs.describe()},
                    message=f"{run.environment}: undo failed: {obs.probe}"
                    + (f" ({obs.reason})" if obs.reason else ""),
                    explanation="A probe recorded this undo before an action that creates something; it did "
                    "not complete, so what the action created may still exist. Remove it by hand.",
                    probe=obs.probe,
                )
            )
    return findings


def drift(spec: ScenarioSpec, runs: Sequence[Run]) -> list[Finding]:
    """A finding when the runs were made from different texts of the scenario."""
    digests = {run.environment: run.spec.digest for run in runs}
    if len(set(digests.values())) <= 1:
        return []
    return [
        Finding(
            category=Category.CONFIG_DRIFT,
            severity=severity.DRIFT,
            scenario=spec.id,
            step=None,
            environments={name: digest[:12] for name, digest in digests.items()},
            message=f"the environments ran different versions of scenario {spec.id}",
            explanation="Steps are paired by id against the first run's scenario text; where the texts "
            "differ, a difference may come from the scenario rather than the environment.",
            field="scenario",
        )
    ]
