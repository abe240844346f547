"""Scenario files: ordered steps, cleanup steps, an optional schedule; written once, run everywhere."""

from __future__ import annotations

import enum
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from parityprobe.config.durations import Duration, humanise
from parityprobe.model import Effect, Outcome

# Step ids end up in correlation ids and AWS session names (``pp-<run>-<step>``, at most 64 characters).
StepId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
ScenarioId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]

# The crontab's fields, as APScheduler's CronTrigger names them, and as people do.
_CRON_FIELDS = (
    ("minute", "minute"),
    ("hour", "hour"),
    ("day", "day-of-month"),
    ("month", "month"),
    ("day_of_week", "day-of-week"),
)
_APS_PREFIX = re.compile(r"^Error validating expression '[^']*': ")
# Any fixed instant serves: a 5-field crontab matches again within the calendar's 28-year cycle, or never.
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)
_GAP_SAMPLE = 32  # runs looked at to find the shortest time between two of them


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
    """What every environment should do for this step.

    ``within``: the step runs again (waiting a little longer each time) until its outcome is the expected
    one or this much time has passed, and records how long that took: a rotation taking effect, a revoked
    credential stopping to work.
    """

    outcome: ExpectedOutcome | None = None
    ttl: Bound | None = None
    policies: PolicyExpectation | None = None
    within: Duration | None = Field(default=None, gt=0)
    # What was granted (a token, a certificate) must stay valid at least this long after the step: one that
    # expires sooner is a finding in its own environment.
    valid_for: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _within_needs_outcome(self) -> Expect:
        if self.within is not None and self.outcome is None:
            raise ValueError("within needs an expected outcome: it is how long the step may take to reach it")
        return self


class Tolerance(_Input):
    """How far environments may differ before a grant difference is a finding."""

    ttl: Duration | None = None
    within: Duration | None = None  # how far ``expect.within`` durations may differ (default: 1s or 20%)
    # The smallest ratio of median latencies worth a finding (1.5: one environment 50 % slower), when the
    # difference is also beyond each environment's own noise (the latency judge's default: 1.2).
    latency: float | None = Field(default=None, ge=1.0, le=1000.0, allow_inf_nan=False)


class Schedule(_Input):
    """When the daemon runs the scenario: ``cron``, a 5-field crontab in UTC with days of the week as names
    (mon-fri), or ``every``, an interval (``every: 15m``) — one of the two.

    A restricted day of month and day of week must both match (0 0 1-7 * mon: the first Monday), unlike
    classic cron. ``jitter``, a random delay before each run, must be shorter than the time between runs.
    """

    # The crontab is parsed by the scheduler's own parser (APScheduler's CronTrigger.from_crontab), so
    # what validates is what runs.
    cron: str | None = None
    every: Duration | None = Field(default=None, ge=1)
    jitter: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give either cron (a crontab) or every (an interval), not both nor neither")
        return self

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = value.split()
        if len(fields) != 5:
            raise ValueError("a crontab has 5 fields: minute hour day month day-of-week")
        # APScheduler reads day-of-week 0 as Monday where cron means Sunday: accept only names there.
        if any(ch.isdigit() for ch in fields[4]):
            raise ValueError("write the day-of-week field with names (mon-fri, sun), not numbers")
        cron_trigger = _cron_trigger_class()
        for (name, label), field in zip(_CRON_FIELDS, fields, strict=True):
            try:
                cron_trigger(timezone="UTC", **{name: field})
            except ValueError as exc:  # each field alone first, so the message can name it
                raise ValueError(f"{label} field {field!r}: {_APS_PREFIX.sub('', str(exc))}") from None
        trigger = cron_trigger.from_crontab(value, timezone="UTC")
        if trigger.get_next_fire_time(None, _REFERENCE) is None:
            raise ValueError(f"{value!r} never fires: no date matches it")
        return value

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: int | None, info: ValidationInfo) -> int | None:
        cron, every = info.data.get("cron"), info.data.get("every")
        if not value or (cron is None and every is None):  # without a valid schedule, its error says enough
            return value
        if cron is not None:
            gap = _shortest_gap(_cron_trigger_class().from_crontab(cron, timezone="UTC"))
        else:
            gap = int(every or 0)
        if value >= gap:
            raise ValueError(
                f"jitter {humanise(value)} is not shorter than the {humanise(gap)} between runs: "
                "a delayed run could start after the next one is due"
            )
        return value


def _cron_trigger_class() -> Any:
    """APScheduler's CronTrigger, imported only when a schedule is checked: keeps ``--help`` fast."""
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]  # ships no hints

    return CronTrigger


def _shortest_gap(trigger: Any) -> int:
    """The shortest time, in seconds, between two runs among the first few after a fixed instant."""
    times: list[datetime] = []
    now = _REFERENCE
    while len(times) < _GAP_SAMPLE and (fire := trigger.get_next_fire_time(None, now)) is not None:
        times.append(fire)
        now = fire + timedelta(seconds=1)
    gaps = [int((b - a).total_seconds()) for a, b in itertools.pairwise(times)]
    return min(gaps, default=0)


class SiemExpectation(_Input):
    """An event the step's action must (``present``) or must not (``absent``) cause in an environment's SIEM
    within ``within`` of the action: found by the step's correlation id, then filtered by ``match`` (dotted
    field names of the event, e.g. ``request.path``, ``error``, ``type``; each value exact, or a shell
    pattern such as ``secret/data/*``, or ``"*"`` for "present, any value"). ``connector`` names one of the
    environment's ``siem.connectors`` (its default when omitted)."""

    connector: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")] | None = None
    match: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*$")], str] = Field(
        default_factory=dict
    )
    within: Duration = Field(gt=0, le=86400)
    expect: Literal["present", "absent"] = "present"


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
    # Also ask the target what it declares for this action (Vault: sys/capabilities-self on the same path;
    # AWS: IAM's policy simulator for the same action; Kubernetes: a SelfSubjectAccessReview for the same
    # request) and report a live decision that disagrees.
    crosscheck: Literal["capabilities", "simulator", "can_i"] | None = None
    # Events the action must (or must not) cause in each environment's SIEM, checked after the run's steps.
    siem: list[SiemExpectation] = Field(default_factory=list, max_length=20)
    # Run the (read-only) action this many times in a row: the first repetition's decision is the step's,
    # and every repetition that decided the same is a latency sample for the judge.
    repeat: int | None = Field(default=None, ge=2, le=100)

    @model_validator(mode="after")
    def _repeat_alone(self) -> Step:
        if self.repeat is not None and self.expect.within is not None:
            raise ValueError(
                "repeat and expect.within do not go together: a waiting step repeats until it holds"
            )
        return self


class Scenario(_Input):
    """One scenario file."""

    id: ScenarioId
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    schedule: Schedule | None = None
    steps: list[Step] = Field(min_length=1)
    # Step ids are unique across steps and cleanup: the plan checks it, where each id's line is known.
    cleanup: list[Step] = Field(default_factory=list)
