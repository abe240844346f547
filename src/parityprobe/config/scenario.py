"""Scenario files: ordered steps, cleanup steps, an optional schedule; written once, run everywhere."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from parityprobe.config.durations import Duration
from parityprobe.model import Effect, Outcome

# Step ids end up in correlation ids and AWS session names (``pp-<run>-<step>``, at most 64 characters).
StepId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
ScenarioId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExpectedOutcome(enum.Enum):
    """The decisions a scenario may expect (an error is never expected)."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_FOUND = "not_found"

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.value)


class Bound(_Input):
    """An inclusive range of durations, either end optional."""

    min: Duration | None = None
    max: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is larger than max")
        return self

    def contains(self, seconds: int) -> bool:
        return (self.min is None or seconds >= self.min) and (self.max is None or seconds <= self.max)


class PolicyExpectation(_Input):
    """Policies a grant must carry and policies it must not."""

    includes: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)


class Expect(_Input):
    """What every environment should do for this step."""

    outcome: ExpectedOutcome | None = None
    ttl: Bound | None = None
    policies: PolicyExpectation | None = None


class Tolerance(_Input):
    """How far environments may differ before a grant difference is a finding."""

    ttl: Duration | None = None


class Schedule(_Input):
    """When the daemon runs the scenario: a 5-field crontab in UTC."""

    cron: str
    jitter: Duration | None = None

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5:
            raise ValueError("a crontab has 5 fields: minute hour day month day-of-week")
        # APScheduler reads day-of-week 0 as Monday where cron means Sunday: accept only names there.
        if any(ch.isdigit() for ch in fields[4]):
            raise ValueError("write the day-of-week field with names (mon-fri, sun), not numbers")
        return value


class Step(_Input):
    """One use of a probe."""

    id: StepId
    probe: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    expect: Expect = Field(default_factory=Expect)
    effect: Effect | None = None
    timeout: Duration | None = None
    description: str = ""
    tolerance: Tolerance = Field(default_factory=Tolerance)


class Scenario(_Input):
    """One scenario file."""

    id: ScenarioId
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    schedule: Schedule | None = None
    steps: list[Step] = Field(min_length=1)
    cleanup: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Scenario:
        seen: set[str] = set()
        for step in [*self.steps, *self.cleanup]:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self
