"""Result records: what a probe observed, what a run holds, what a comparison found.

All of them are frozen. Input models (environments, scenarios) live in :mod:`parityprobe.config`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from parityprobe.grant import Grant
from parityprobe.secret import Secret

if TYPE_CHECKING:
    from parityprobe.spec import EnvironmentFacts, ScenarioSpec

__all__ = ["Grant"]  # re-exported: probes build their grants from here


class Outcome(enum.Enum):
    """The decision a target made about one action."""

    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def is_verdict(self) -> bool:
        """True when the target decided; ERROR and SKIPPED prove nothing about access."""
        return self in (Outcome.ALLOWED, Outcome.DENIED, Outcome.NOT_FOUND)


class ErrorKind(enum.Enum):
    """Why an ERROR observation has no verdict."""

    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    THROTTLED = "throttled"
    TARGET_ERROR = "target_error"
    HARNESS_ERROR = "harness_error"


class Effect(enum.Enum):
    """What a step may change; environments allow effects explicitly (read only by default)."""

    READ = "read"
    WRITE = "write"
    PRIVILEGED = "privileged"


class Tier(enum.Enum):
    """How much an environment matters when a finding is graded."""

    PRODUCTION = "production"
    STAGING = "staging"
    DEVELOPMENT = "development"


class Category(enum.Enum):
    """What kind of difference a finding reports."""

    EXPECTATION_VIOLATION = "expectation_violation"
    OUTCOME_MISMATCH = "outcome_mismatch"
    GRANT_MISMATCH = "grant_mismatch"
    LATENCY_MISMATCH = "latency_mismatch"
    EVIDENCE_GAP = "evidence_gap"
    CONFIG_DRIFT = "config_drift"
    CLEANUP_FAILED = "cleanup_failed"
    DECLARED_MISMATCH = "declared_mismatch"
    INCONCLUSIVE = "inconclusive"


class Severity(enum.Enum):
    """How urgent a finding is; ordered, CRITICAL first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)


# Why a step did not run when nothing went wrong: the environment's safety or the run's own options said
# so. Such a step is no finding (an inconclusive one would flag every run that rightly leaves it out).
NOT_ALLOWED_HERE = "effect {effect} not allowed here"
NEEDS_BREAK_GLASS = "break-glass drill: runs only with --allow-break-glass"
_BY_CHOICE = (NOT_ALLOWED_HERE.format(effect="privileged"), NEEDS_BREAK_GLASS)
# Why a step did not run because the run was held back midway (the daemon stopping, its kill switch):
# such a run is *interrupted*, and compared only when its environment has no complete run to offer.
HELD_BACK = ("stopped: ", "paused: ")

OutputValue = str | Secret
_EMPTY: Mapping[str, OutputValue] = MappingProxyType({})
_NO_WAITS: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Observation:
    """The frozen result of one step in one environment."""

    step: str
    probe: str
    environment: str
    correlation_id: str
    outcome: Outcome
    started_at: datetime
    error_kind: ErrorKind | None = None
    reason: str | None = None
    detail: str | None = None
    latency_ms: float | None = None
    grant: Grant = field(default_factory=Grant)
    # A step that waits for its expected outcome (``expect.within``): how long it took to hold, None when
    # it never did; and how many times the probe ran.
    waited_seconds: float | None = None
    attempts: int | None = None
    # A step with ``crosscheck``: the decision the target declares for the same action (Vault's
    # capabilities-self), ERROR when it could not be asked.
    declared: Outcome | None = None
    # Why a cross-check has no declared decision (declared SKIPPED): the target cannot answer such a question.
    declared_reason: str | None = None
    # What the action was aimed at, as the plane names it (a Vault API path): links a decision to the
    # configuration drift that explains it.
    target: str | None = None
    outputs: Mapping[str, OutputValue] = field(default_factory=lambda: _EMPTY)
    # Conditions the probe awaited itself (a new key working, an old one refused) and that held: name →
    # seconds it took. Compared across environments like ``waited_seconds``.
    waits: Mapping[str, float] = field(default_factory=lambda: _NO_WAITS)
    # A step with ``repeat: N``: the latency of every repetition that reached the first one's outcome, in
    # order (``latency_ms`` is then their median); empty for a step that ran once.
    latency_samples_ms: tuple[float, ...] = ()
    # What server the action met, where the probe can say it per step (``TLSv1.3 TLS_AES_256_GCM_SHA384``).
    server: str | None = None

    @property
    def held_back(self) -> bool:
        """True for a step skipped because its run was stopped or paused midway."""
        return self.outcome is Outcome.SKIPPED and (self.reason or "").startswith(HELD_BACK)

    @property
    def skipped_by_choice(self) -> bool:
        """True for a privileged step the environment or the run deliberately left out."""
        return self.outcome is Outcome.SKIPPED and self.reason in _BY_CHOICE

    def describe(self) -> str:
        """A short human label: ``denied (permission denied)``, ``error: timeout``."""
        if self.outcome is Outcome.ERROR:
            kind = self.error_kind.value if self.error_kind else "error"
            return f"error: {kind}" + (f" ({self.reason})" if self.reason else "")
        if self.reason and self.outcome is not Outcome.ALLOWED:
            return f"{self.outcome.value} ({self.reason})"
        return str(self.outcome.value)


class EvidenceStatus(enum.Enum):
    """What a SIEM showed for one expectation of one step, by its deadline."""

    RECEIVED = "received"  # matching events were found
    MISSING = "missing"  # searched until the deadline: none
    NO_VERDICT = "no_verdict"  # the SIEM did not answer (unreachable, timed out, throttled, refused)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One SIEM expectation of one step in one environment, and what the SIEM showed.

    ``index`` is the expectation's place in the step's ``siem`` list; ``connector`` the environment's
    connector asked; the window is what was searched. ``event_at`` is the earliest matching event's own time
    (the SIEM's record of when it happened), ``seen_after_seconds`` the time from the action to the poll that
    first found it (both None unless received); ``reason`` says why there is no verdict; ``polls`` how many
    queries its connector had been asked (for all the run's pending ids at once) when this was decided.
    """

    step: str
    index: int
    connector: str
    correlation_id: str
    expect: str  # "present" or "absent"
    match: Mapping[str, str]
    status: EvidenceStatus
    action_at: datetime
    window_start: datetime
    window_end: datetime
    events: int = 0
    event_at: datetime | None = None
    seen_after_seconds: float | None = None
    reason: str | None = None
    polls: int = 0

    @property
    def holds(self) -> bool | None:
        """Whether the expectation holds (present and received, or absent and missing); None: no verdict."""
        if self.status is EvidenceStatus.NO_VERDICT:
            return None
        return (self.status is EvidenceStatus.RECEIVED) == (self.expect == "present")

    @property
    def receipt_seconds(self) -> float | None:
        """From the action to the earliest matching event's own time (the SIEM's delay to record it), when
        the SIEM gives event times; else to the poll that first saw it."""
        if self.event_at is not None:
            return max(0.0, (self.event_at - self.action_at).total_seconds())
        return self.seen_after_seconds

    def describe(self) -> str:
        """``received in 1.2s`` / ``missing (searched 30s)`` / ``no verdict: <reason>``."""
        if self.status is EvidenceStatus.RECEIVED:
            took = self.receipt_seconds
            return f"received in {took:.1f}s" if took is not None else "received"
        if self.status is EvidenceStatus.MISSING:
            searched = (self.window_end - self.action_at).total_seconds()
            return f"missing (searched {searched:.0f}s)"
        return f"no verdict: {self.reason or 'the SIEM did not answer'}"


_NO_SERVERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Run:
    """One scenario in one environment: its observations in step order, then its cleanup steps and undos.

    A run carries the facts comparing needs (the scenario's spec, the environment's name, tier and vars),
    so stored runs compare without the live configuration.
    """

    id: str
    spec: ScenarioSpec
    env: EnvironmentFacts
    started_at: datetime
    finished_at: datetime
    observations: tuple[Observation, ...]
    cleanup: tuple[Observation, ...] = ()
    # What each environment's SIEM showed for the steps' ``siem`` expectations (after the steps).
    evidence: tuple[Evidence, ...] = ()
    # The version of each plane's server the steps reached, by section name (``vault``: ``2.1.0``), asked
    # once per run: compared across environments as configuration drift.
    servers: Mapping[str, str] = field(default_factory=lambda: _NO_SERVERS)

    @property
    def scenario(self) -> str:
        return self.spec.id

    @property
    def environment(self) -> str:
        return self.env.name

    @property
    def interrupted(self) -> bool:
        """True when the run was stopped or paused before all its steps ran (its cleanups still ran)."""
        return any(obs.held_back for obs in self.observations)

    def observation(self, step: str) -> Observation | None:
        for obs in self.observations:
            if obs.step == step:
                return obs
        return None


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference worth a person's attention, with each environment's value side by side."""

    category: Category
    severity: Severity
    scenario: str
    step: str | None
    environments: Mapping[str, str]
    message: str
    explanation: str = ""
    field: str | None = None
    probe: str | None = None  # the probe of the step or undo it concerns, where the rule that made it knows


class JudgeOutcome(enum.Enum):
    """What the latency judge concluded for one step and one pair of environments."""

    NO_DIFFERENCE = "no_difference"
    MISMATCH = "mismatch"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class LatencyJudgement:
    """The latency judge's verdict on one step: ``environment`` against the scenario's first (``reference``),
    its one-sentence explanation, and the samples judged (environment → milliseconds, oldest first: the
    store's history of the step, then this run's)."""

    step: str
    reference: str
    environment: str
    outcome: JudgeOutcome
    explanation: str
    samples: Mapping[str, tuple[float, ...]]
    ratio: float | None = None  # the environment's median over the reference's, when both have one


@dataclass(frozen=True, slots=True)
class Comparison:
    """The runs of one scenario across environments, paired step by step, and what comparing them found."""

    spec: ScenarioSpec
    runs: tuple[Run, ...]
    findings: tuple[Finding, ...]
    latency: tuple[LatencyJudgement, ...] = ()  # per step, each environment after the first

    @property
    def scenario(self) -> str:
        return self.spec.id

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(step.id for step in self.spec.steps)

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(run.environment for run in self.runs)

    @property
    def compared(self) -> bool:
        """True when two or more environments ran, so their behaviour was compared."""
        return len({run.environment for run in self.runs}) >= 2

    @property
    def unchecked(self) -> tuple[str, ...]:
        """Steps nothing judged: with one environment, those without an expectation; none otherwise."""
        if self.compared:
            return ()
        return tuple(step.id for step in self.spec.steps if not step.expects_anything)

    def pairs(self) -> list[tuple[str, dict[str, Observation | None]]]:
        """For each step in scenario order: environment name → that environment's observation."""
        return [(step, {run.environment: run.observation(step) for run in self.runs}) for step in self.steps]


class ExitCode(enum.IntEnum):
    """The process exit codes, for the CI gate."""

    OK = 0
    FINDINGS = 1
    BAD_INPUT = 2
    INCONCLUSIVE = 3


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one invocation found: a comparison per scenario."""

    generated_at: datetime
    comparisons: tuple[Comparison, ...]

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for c in self.comparisons for f in c.findings)

    @property
    def checked_nothing(self) -> bool:
        """True when no step was judged at all: one environment and no step with an expectation."""
        return all(len(c.unchecked) == len(c.steps) for c in self.comparisons)

    @property
    def exit_code(self) -> ExitCode:
        """0 no findings, 1 findings, 3 when every finding is inconclusive or nothing was checked."""
        findings = self.findings
        if not findings:
            return ExitCode.INCONCLUSIVE if self.checked_nothing else ExitCode.OK
        if all(f.category is Category.INCONCLUSIVE for f in findings):
            return ExitCode.INCONCLUSIVE
        return ExitCode.FINDINGS
