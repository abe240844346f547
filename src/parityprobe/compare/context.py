"""What the comparison rules see for one step: each environment's observation and recorded facts."""

from __future__ import annotations

from dataclasses import dataclass

from parityprobe.model import Category, Finding, Observation, Severity
from parityprobe.spec import EnvironmentFacts, StepSpec


@dataclass(frozen=True)
class StepView:
    """One step across environments, in the plan's environment order."""

    scenario: str
    step: StepSpec
    environments: tuple[EnvironmentFacts, ...]
    observations: tuple[Observation, ...]

    def pairs(self) -> list[tuple[EnvironmentFacts, Observation]]:
        return list(zip(self.environments, self.observations, strict=True))

    def outcomes(self) -> dict[str, str]:
        """Environment name → the observed decision, for a finding's side-by-side values."""
        return {env.name: obs.describe() for env, obs in self.pairs()}

    def finding(
        self,
        category: Category,
        severity: Severity,
        environments: dict[str, str],
        message: str,
        explanation: str,
        field: str | None = None,
    ) -> Finding:
        return Finding(
            category=category,
            severity=severity,
            scenario=self.scenario,
            step=self.step.id,
            environments=environments,
            message=message,
            explanation=explanation,
            field=field,
            probe=self.step.probe,
        )
