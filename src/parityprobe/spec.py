"""What comparing a scenario needs, recorded with every run: its id, a digest of its text, its steps with
their expectations and tolerances, and each environment's facts (name, tier, vars).

Comparison works from these records alone, never from the live configuration, so runs stored by daemons
in different environments can be compared later (``compare --store``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from parityprobe.model import Outcome, Tier

if TYPE_CHECKING:
    from parityprobe.config.environments import Environment
    from parityprobe.config.plan import PlannedScenario
    from parityprobe.config.scenario import Step

_NO_VARS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Bounds:
    """An inclusive range of seconds, either end optional."""

    min: int | None = None
    max: int | None = None

    def contains(self, seconds: int) -> bool:
        return (self.min is None or seconds >= self.min) and (self.max is None or seconds <= self.max)


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step as comparing sees it: what every environment should do, and how far they may differ."""

    id: str
    probe: str
    expect_outcome: Outcome | None = None
    expect_ttl: Bounds | None = None
    policies_include: frozenset[str] | None = None
    policies_exclude: frozenset[str] | None = None
    ttl_tolerance: int | None = None
    expect_within: int | None = None  # seconds the step may take to reach its expected outcome
    expect_valid_for: int | None = None  # seconds what was granted must stay valid after the step
    within_tolerance: int | None = None
    latency_threshold: float | None = None  # ``tolerance.latency``: the judge's relative threshold

    @property
    def expects_anything(self) -> bool:
        """True when the scenario states an expectation, so a single environment can be checked."""
        return (
            self.expect_outcome is not None
            or self.expect_ttl is not None
            or self.policies_include is not None
            or self.policies_exclude is not None
            or self.expect_valid_for is not None
        )


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A scenario's recorded facts. ``digest`` identifies its text: runs with different digests ran
    different scenarios under one id, and comparing them says so."""

    id: str
    digest: str
    description: str = ""
    steps: tuple[StepSpec, ...] = ()
    cleanup: tuple[str, ...] = ()

    def step(self, step_id: str) -> StepSpec | None:
        for step in self.steps:
            if step.id == step_id:
                return step
        return None


@dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    """What a run records about its environment: never a secret, only what grading and comparing need."""

    name: str
    tier: Tier
    vars: Mapping[str, str] = field(default_factory=lambda: _NO_VARS)


def scenario_spec(planned: PlannedScenario) -> ScenarioSpec:
    """The spec of a planned scenario. The digest is of the validated scenario in canonical JSON, so a
    change of comment or layout keeps it, and any change of meaning changes it."""
    scenario = planned.source.scenario
    canonical = scenario.model_dump_json(by_alias=True, exclude_none=True)
    return ScenarioSpec(
        id=scenario.id,
        digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        description=scenario.description,
        steps=tuple(_step_spec(p.step) for p in planned.steps),
        cleanup=tuple(p.step.id for p in planned.cleanup),
    )


def _step_spec(step: Step) -> StepSpec:
    expect = step.expect
    ttl = expect.ttl
    policies = expect.policies
    return StepSpec(
        id=step.id,
        probe=step.probe,
        expect_outcome=expect.outcome.outcome if expect.outcome is not None else None,
        expect_ttl=Bounds(ttl.min, ttl.max) if ttl is not None else None,
        policies_include=frozenset(policies.includes) if policies is not None else None,
        policies_exclude=frozenset(policies.excludes) if policies is not None else None,
        ttl_tolerance=step.tolerance.ttl,
        expect_within=expect.within,
        expect_valid_for=expect.valid_for,
        within_tolerance=step.tolerance.within,
        latency_threshold=step.tolerance.latency,
    )


def environment_facts(env: Environment) -> EnvironmentFacts:
    """What a run records of its environment: name, effective tier, vars (never a secret)."""
    return EnvironmentFacts(env.name, env.effective_tier, MappingProxyType(dict(env.vars)))
