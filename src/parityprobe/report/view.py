"""The report view: what every format shows, decided once from a :class:`~parityprobe.model.Report`.

Renderers (terminal and JSON today; HTML, Markdown and JUnit next) lay a :class:`ReportView` out and decide
nothing about its content. What a report *says* is decided when the view is built
(:func:`parityprobe.report.build.build_view`): each scenario's matrix of steps by environments (decision,
latency, grant lines, error detail), the findings in severity order with their values side by side, the
findings grouped by cause (:mod:`parityprobe.report.causes`: one entry per cause, with where it was seen),
which cleanup observations failed and how undos are labelled, the summary counts (of causes), and the verdict
(:mod:`parityprobe.report.verdict`).

The view holds text as the records hold it, **unredacted**: a renderer redacts every string on its way
out. Text for people is shortened with :func:`clip`, always *after* redaction, since a clipped secret is
no longer a whole match for the redactor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from parityprobe.compare.cleanup import FAILED_CLEANUP
from parityprobe.model import Category, ExitCode, Finding, Outcome, Report, Severity
from parityprobe.report.causes import Cause
from parityprobe.report.divergences import Declaration

# One rule for "this cleanup left something behind", shared with the cleanup_failed finding.
CLEANUP_FAILED = FAILED_CLEANUP
# SDK messages can run to pages; formats for people clip them, the JSON report keeps them whole.
DETAIL_LIMIT = 160
# A cause seen on many steps lists this many places for people; the JSON report lists every occurrence.
SEEN_SHOWN = 4


@dataclass(frozen=True, slots=True)
class Cell:
    """One step in one environment: what the target decided, how fast, and what access it granted."""

    environment: str
    observed: bool  # False: the environment has no observation for the step
    decision: str = ""  # ``denied (permission denied)``, ``error: timeout (no answer in 5s)``
    outcome: Outcome | None = None
    latency_ms: float | None = None
    grant: tuple[str, ...] = ()  # Grant.lines(): ``ttl 1h``, ``policies a, b``
    waited: str | None = None  # ``took 1.2s (4 attempts)``: a step that waited for its outcome
    waits: tuple[str, ...] = ()  # ``new key works: took 0.2s``: conditions the probe awaited itself
    declared: str | None = None  # ``declared allowed``: a step with a cross-check
    error_detail: str | None = None  # the SDK's words, for errors only

    @property
    def latency(self) -> str | None:
        """The latency as people read it (``12.3 ms``), or None when none was measured."""
        return None if self.latency_ms is None else f"{self.latency_ms:.1f} ms"


@dataclass(frozen=True, slots=True)
class LatencyNote:
    """The latency judge's verdict on one step for one pair of environments
    (:mod:`parityprobe.compare.latency_judge`), and the samples it judged, for charts."""

    environments: tuple[str, str]  # the reference environment, then the one judged against it
    outcome: str  # ``mismatch``, ``no_difference`` or ``insufficient_data``
    text: str  # the judge's sentence, figures rounded for reading
    samples: Mapping[str, tuple[float, ...]]  # environment → latency samples in ms, oldest first

    @property
    def sentence(self) -> str:
        """``latency mismatch: production's median …``, ``insufficient data: staging has 1 sample …``: the
        judge's sentence (which names both environments) after what it concluded, unless it begins with it."""
        label = "latency mismatch" if self.outcome == "mismatch" else self.outcome.replace("_", " ")
        return self.text if self.text.startswith(label) else f"{label}: {self.text}"


@dataclass(frozen=True, slots=True)
class StepRow:
    """One row of a scenario's matrix: a step, its cell in every environment, and what was found on it."""

    step: str
    cells: tuple[Cell, ...]  # in the scenario's environment order
    severities: tuple[Severity, ...]  # of the findings on this step: distinct, most severe first
    unchecked: bool  # one environment and no expectation: nothing judged this step
    siem: tuple[str, ...] = ()  # ``staging: received in 1.2s``: what each SIEM showed for the step
    latency: tuple[LatencyNote, ...] = ()  # the judge's verdicts, one per environment after the first

    @property
    def flagged(self) -> bool:
        """True when a finding concerns this step."""
        return bool(self.severities)


@dataclass(frozen=True, slots=True)
class FrameworkRef:
    """One control of a security framework a finding bears on: ``OWASP NHI`` ``NHI5`` "Overprivileged NHI"."""

    framework: str  # ``OWASP NHI Top 10``, ``NIST CSF 2.0``
    id: str  # ``NHI5:2025``, ``PR.AA-05``
    title: str


@dataclass(frozen=True, slots=True)
class Guidance:
    """What a finding means in the frameworks SREs and auditors use, and what to do about it."""

    references: tuple[FrameworkRef, ...]
    remediation: str  # one or two sentences: where to look and what to change


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One point of the trend over a store's history: what comparing the runs stored up to ``at`` found."""

    at: datetime  # the end of the period (a day, in UTC)
    runs: int  # runs compared at that point
    causes: int  # causes found then (accepted divergences left out)
    by_severity: Mapping[Severity, int]  # causes by severity, every member, zeros too


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding as reports show it: where it is, and each value under its key, environments first."""

    finding: Finding
    place: str  # ``step read-own``, ``undo 1``, ``scenario``
    values: tuple[tuple[str, str], ...]
    note: str | None = None  # ``accepted until 2026-03-31 (expired)``: a divergence accepted no longer
    guidance: Guidance | None = None  # framework mapping and remediation hint

    @property
    def where(self) -> str:
        """``outcome_mismatch · step read-own · field outcome``."""
        parts = [self.finding.category.value, self.place]
        if self.finding.field:
            parts.append(f"field {self.finding.field}")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class CauseView:
    """One cause as reports show it: numbered in report order, its representative finding's values, and
    where it was seen (see :mod:`parityprobe.report.causes`)."""

    number: int  # 1-based, most severe first: scenarios refer to their causes by it
    cause: Cause
    shown: FindingView  # the representative finding, values environments first

    @property
    def where(self) -> str:
        """``#2 outcome_mismatch · field outcome``: the cause's number, category and field."""
        finding = self.cause.finding
        field = f" · field {finding.field}" if finding.field else ""
        return f"#{self.number} {finding.category.value}{field}"

    def seen(self, limit: int = SEEN_SHOWN) -> str:
        """``seen in 3 steps: a/login, b/login, b/lookup``; past ``limit`` places, ``… and 2 more``."""
        places = self.cause.places
        if len(places) == 1:
            return f"seen in 1 step: {places[0]}"
        shown = ", ".join(places[:limit])
        if len(places) > limit:
            shown += f", … and {len(places) - limit} more"
        return f"seen in {len(places)} steps: {shown}"


@dataclass(frozen=True, slots=True)
class AcceptedView:
    """A finding accepted as a known divergence (:mod:`parityprobe.report.divergences`): counted for nothing,
    shown with who owns it, why, and until when."""

    shown: FindingView
    owner: str
    reason: str
    expires: str  # ISO date, the last day the acceptance holds
    source: str  # ``divergences.yaml:12``

    @property
    def line(self) -> str:
        """``grant_mismatch · step login · field ttl in token-ttl — platform-team, until 2026-03-31: …``."""
        return (
            f"{self.shown.where} in {self.shown.finding.scenario} — {self.owner}, until {self.expires}: "
            f"{self.reason}"
        )


@dataclass(frozen=True, slots=True)
class UnmatchedView:
    """A declared divergence that matched no finding: listed so it can be removed."""

    source: str  # ``divergences.yaml:12``
    description: str  # ``token-ttl/login* · grant_mismatch · field ttl (platform-team, until 2026-03-31)``
    declaration: Declaration


@dataclass(frozen=True, slots=True)
class CleanupEntry:
    """One cleanup step or undo of a run, labelled for people."""

    label: str  # the cleanup step's id, or ``undo 1: vault.secret_id_destroy``
    undo: bool
    failed: bool
    cell: Cell
    detail: str | None  # the SDK's words, whatever the outcome


@dataclass(frozen=True, slots=True)
class FailedCleanup:
    """The cleanup of a run in which at least one cleanup step or undo failed: all of it, for context."""

    environment: str
    run_id: str
    entries: tuple[CleanupEntry, ...]

    @property
    def failed(self) -> int:
        """How many of the entries failed."""
        return sum(entry.failed for entry in self.entries)


@dataclass(frozen=True, slots=True)
class RunLabel:
    """Which run an environment's column comes from."""

    environment: str
    id: str


@dataclass(frozen=True, slots=True)
class ScenarioView:
    """One scenario: its matrix, its findings most severe first, and the cleanups that failed."""

    id: str
    description: str
    runs: tuple[RunLabel, ...]
    rows: tuple[StepRow, ...]
    findings: tuple[FindingView, ...]
    failed_cleanups: tuple[FailedCleanup, ...]
    compared: bool  # two or more environments ran it
    unchecked: tuple[str, ...]  # steps nothing judged (one environment, no expectation)
    causes: tuple[int, ...] = ()  # the numbers of the causes seen in this scenario, ascending

    @property
    def environments(self) -> tuple[str, ...]:
        """The matrix's columns: the environments, in run order."""
        return tuple(run.environment for run in self.runs)

    @property
    def has_siem(self) -> bool:
        """True when a step expects SIEM evidence: the matrix then has a SIEM column."""
        return any(row.siem for row in self.rows)

    @property
    def heading(self) -> str:
        """``forbidden-calls — The payments workload reads its own secret and nothing else.``"""
        return self.id + (f" — {self.description}" if self.description else "")


@dataclass(frozen=True, slots=True)
class Summary:
    """The counts that close a report. They count causes (a gap seen on six steps counts once); ``findings``
    is how many findings the causes hold. ``by_severity`` and ``by_category`` hold every member, zeros too."""

    scenarios: int
    runs: int
    findings: int
    by_severity: Mapping[Severity, int]  # causes, by the severity of their most severe occurrence
    by_category: Mapping[Category, int]  # causes, by their representative finding's category
    environments: tuple[str, ...]  # every environment that ran, in order of first appearance
    compared: bool  # every scenario ran in two or more environments
    unchecked_steps: int
    causes: int = 0

    @property
    def inconclusive(self) -> int:
        """How many causes are inconclusive (no verdict)."""
        return self.by_category[Category.INCONCLUSIVE]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The report's conclusion: the exit code and the one line that says it, and what was done."""

    exit_code: ExitCode
    text: str  # ``NO PARITY GAPS FOUND (exit 0)``

    @property
    def line(self) -> str:
        """``Verdict: NO PARITY GAPS FOUND (exit 0)``: what CI logs are grepped for."""
        return f"Verdict: {self.text}"


@dataclass(frozen=True, slots=True)
class ReportView:
    """Everything a renderer shows, decided once. ``report`` is the source, for formats that write the
    records themselves (JSON, through the codec)."""

    generated_at: datetime
    scenarios: tuple[ScenarioView, ...]
    summary: Summary
    verdict: Verdict
    report: Report
    causes: tuple[CauseView, ...] = ()  # the report's findings grouped by cause, most severe first
    accepted: tuple[AcceptedView, ...] = ()  # findings accepted as known divergences, in report order
    expired: tuple[AcceptedView, ...] = ()  # findings only expired declarations matched: counted again
    unmatched: tuple[UnmatchedView, ...] = ()  # declared divergences that matched nothing
    trend: tuple[TrendPoint, ...] = ()  # oldest first; empty unless the report was made from a store


def clip(text: str, limit: int = DETAIL_LIMIT) -> str:
    """``text`` shortened to ``limit`` characters with an ellipsis; clip only text already redacted."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(n: int, noun: str) -> str:
    """``1 scenario``, ``2 scenarios``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
