"""Result records: what a probe observed, what a run holds, what a comparison found.

All of them are frozen. Input models (environments, scenarios) live in :mod:`parityprobe.config`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from parityprobe.secret import Secret


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


@dataclass(frozen=True, slots=True)
class Grant:
    """The access actually received, normalised so environments can be compared.

    Every field is optional: a probe fills what its action reveals. ``identity`` is the principal the
    target saw (an ARN, a Vault role), with per-call parts such as the correlation id already replaced.
    """

    ttl_seconds: int | None = None
    policies: frozenset[str] | None = None
    identity: str | None = None
    renewable: bool | None = None
    version: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The filled fields, JSON-ready (policies sorted)."""
        out: dict[str, object] = {}
        if self.ttl_seconds is not None:
            out["ttl_seconds"] = self.ttl_seconds
        if self.policies is not None:
            out["policies"] = sorted(self.policies)
        if self.identity is not None:
            out["identity"] = self.identity
        if self.renewable is not None:
            out["renewable"] = self.renewable
        if self.version is not None:
            out["version"] = self.version
        return out


OutputValue = str | Secret
_EMPTY: Mapping[str, OutputValue] = MappingProxyType({})


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
    outputs: Mapping[str, OutputValue] = field(default_factory=lambda: _EMPTY)

    def describe(self) -> str:
        """A short human label: ``denied (permission denied)``, ``error: timeout``."""
        if self.outcome is Outcome.ERROR:
            kind = self.error_kind.value if self.error_kind else "error"
            return f"error: {kind}" + (f" ({self.reason})" if self.reason else "")
        if self.reason and self.outcome is not Outcome.ALLOWED:
            return f"{self.outcome.value} ({self.reason})"
        return str(self.outcome.value)


@dataclass(frozen=True, slots=True)
class Run:
    """One scenario in one environment: its observations in step order, then its cleanup steps."""

    id: str
    scenario: str
    environment: str
    started_at: datetime
    finished_at: datetime
    observations: tuple[Observation, ...]
    cleanup: tuple[Observation, ...] = ()

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


@dataclass(frozen=True, slots=True)
class Comparison:
    """The runs of one scenario across environments, paired step by step, and what comparing them found."""

    scenario: str
    description: str
    steps: tuple[str, ...]
    runs: tuple[Run, ...]
    findings: tuple[Finding, ...]

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(run.environment for run in self.runs)

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
    def exit_code(self) -> ExitCode:
        """0 no findings, 1 findings, 3 when every finding is inconclusive (no verdict either way)."""
        findings = self.findings
        if not findings:
            return ExitCode.OK
        if all(f.category is Category.INCONCLUSIVE for f in findings):
            return ExitCode.INCONCLUSIVE
        return ExitCode.FINDINGS
