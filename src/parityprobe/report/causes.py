"""Findings grouped by cause: one planted gap seen on many steps is reported once, with where it was seen.

Staging's 24h token TTL shows on every step that logs in or looks a token up; a policy set that differs shows
on every login of the same role. Each is one :class:`Cause` with every finding as an occurrence, and reports
count causes, not findings.

Findings share a cause when their :class:`CauseKey`\\ s are equal:

- **the kind of difference**: the category, except that an expectation violation and a mismatch of the same
  field are one kind (the comparator already reports a violated expectation *instead of* the mismatch it
  causes, so across steps the two are the same gap);
- **the field** (``outcome``, ``ttl``, ``policies``, ``siem[0]``, a configuration key …);
- **each environment's value**, as the report shows it, with two exceptions where the shown text holds a
  per-step measurement: a duration compares to the minute (a token looked up a second after its login has
  ``23h 59m 59s`` of the ``24h`` granted) and SIEM evidence by its status (``received``, ``missing``; the
  seconds it took differ on every step);
- **the action**, for decisions only (fields ``outcome`` and ``declared``): ``allowed`` against ``denied``
  says nothing about *which* rule let the call through, so a decision groups only with the same action
  (probe and target, as :func:`actions` names it), and with nothing else when no target was recorded;
- an inconclusive step (no verdict) keys on the environments that gave none and what they said: one
  unreachable server makes every step inconclusive, and that is one cause.

Never part of the key: the message and explanation (they name the probe, a correlation id, the step, and
the drift that may explain a finding), the scenario and step, and the **severity**. The same difference can be
graded differently where it shows (production allowing a forbidden call is critical, staging doing so high);
it is still one difference, so a cause takes the severity of its most severe occurrence, and each occurrence
keeps its own. Configuration drift and the behaviour it explains stay separate causes (their categories
differ); :mod:`parityprobe.compare.explain` links them in the behavioural finding's explanation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from parityprobe.compare.cleanup import UNDO_PREFIX, is_undo
from parityprobe.compare.grants import normalise
from parityprobe.config.durations import humanise, parse_duration
from parityprobe.grant import GRANT_FIELDS, Kind
from parityprobe.model import Category, Comparison, Finding, Outcome, Severity

# Fields whose values are decisions: the values alone do not identify what was decided on.
_DECISION_FIELDS = frozenset({"outcome", "declared"})
_DURATION_LABELS = frozenset(f.label for f in GRANT_FIELDS if f.kind is Kind.DURATION)
_SIEM_FIELD = re.compile(r"^siem\[\d+\]$")
# What Evidence.describe() begins with for a verdict; what follows is the time it took.
_EVIDENCE_STATUS = ("received", "missing")
# What Observation.describe() begins with when there is no verdict.
_NO_VERDICT = (Outcome.ERROR.value, Outcome.SKIPPED.value)


@dataclass(frozen=True, slots=True)
class CauseKey:
    """What findings of one cause share (see the module docstring)."""

    category: Category  # the kind of difference: a violated expectation counts as its field's mismatch
    field: str | None
    values: tuple[tuple[str, str], ...]  # environment (or value key) → value as compared, sorted by key
    action: str | None = None  # decisions only: the action decided on


@dataclass(frozen=True, slots=True)
class Cause:
    """One difference, reported once: its key, the finding that shows it, and every finding of it."""

    key: CauseKey
    finding: Finding  # the first of the most severe occurrences: what reports show for the cause
    occurrences: tuple[Finding, ...]  # every finding of the cause, in report order

    @property
    def severity(self) -> Severity:
        """The most severe occurrence's severity."""
        return self.finding.severity

    @property
    def category(self) -> Category:
        """The representative finding's category (what counts and headings use)."""
        return self.finding.category

    @property
    def places(self) -> tuple[str, ...]:
        """Where it was seen, distinct, in report order: ``scenario/step`` (or the scenario alone)."""
        return tuple(dict.fromkeys(place(f) for f in self.occurrences))

    @property
    def steps(self) -> int:
        """On how many steps it was seen (two environments violating one step count once)."""
        return len(self.places)


def place(finding: Finding) -> str:
    """``forbidden-calls/login``, ``forbidden-calls/undo 1``; ``forbidden-calls`` for the whole scenario."""
    if finding.step is None:
        return finding.scenario
    step = f"undo {finding.step.removeprefix(UNDO_PREFIX)}" if is_undo(finding.step) else finding.step
    return f"{finding.scenario}/{step}"


def actions(comparisons: Sequence[Comparison]) -> dict[tuple[str, str], str]:
    """``(scenario, step)`` → the action a step performs (``vault.kv_read secret/data/billing/db``), for each
    step whose observations name a target; the target normalised with each environment's vars."""
    out: dict[tuple[str, str], str] = {}
    for comparison in comparisons:
        for step in comparison.spec.steps:
            for run in comparison.runs:
                obs = run.observation(step.id)
                target = normalise(obs.target, run.env.vars) if obs is not None else None
                if target:
                    out[(comparison.scenario, step.id)] = f"{step.probe} {target}"
                    break
    return out


def cause_key(finding: Finding, action: str | None = None) -> CauseKey:
    """The key of ``finding``; ``action`` is what its step did (see :func:`actions`), when known."""
    category, field = finding.category, finding.field
    if category is Category.EXPECTATION_VIOLATION:
        category = Category.OUTCOME_MISMATCH if field == "outcome" else Category.GRANT_MISMATCH
    values = sorted(finding.environments.items())
    if category is Category.INCONCLUSIVE and field is None:
        # The environments without a verdict, and why: the others' decisions vary from step to step.
        return CauseKey(category, field, tuple((k, v) for k, v in values if v.startswith(_NO_VERDICT)))
    if field in _DECISION_FIELDS:
        # Without a recorded target, the step itself is the only action known to be the same.
        return CauseKey(category, field, tuple(values), action or f"at {place(finding)}")
    if field in _DURATION_LABELS:
        values = [(k, _to_the_minute(v)) for k, v in values]
    elif field is not None and _SIEM_FIELD.match(field) and category is not Category.LATENCY_MISMATCH:
        values = [(k, _status(v)) for k, v in values]
    return CauseKey(category, field, tuple(values))


def group_causes(
    findings: Iterable[Finding], by_step: Mapping[tuple[str, str], str] | None = None
) -> tuple[Cause, ...]:
    """The causes of ``findings``: most severe first, then in the order their first finding came.

    ``by_step`` (from :func:`actions`) tells decisions on the same action in different steps apart from
    decisions on different ones; without it a decision finding is a cause of its own step.
    """
    known = by_step or {}
    groups: dict[CauseKey, list[Finding]] = {}
    for finding in findings:
        action = known.get((finding.scenario, finding.step)) if finding.step else None
        groups.setdefault(cause_key(finding, action), []).append(finding)
    causes = [
        Cause(key, min(members, key=lambda f: f.severity.rank), tuple(members))
        for key, members in groups.items()
    ]
    # sorted() is stable and dicts keep insertion order: ties stay in order of first appearance.
    return tuple(sorted(causes, key=lambda c: c.severity.rank))


def _to_the_minute(value: str) -> str:
    try:
        seconds = parse_duration(value.replace(" ", ""))
    except ValueError:
        return value  # a decision shown instead of a duration (``denied (…)``), or ``-``
    return humanise(seconds if seconds < 60 else round(seconds / 60) * 60)


def _status(value: str) -> str:
    for status in _EVIDENCE_STATUS:
        if value.startswith(status):
            return status
    return value  # ``no verdict: <reason>``: the reason is the cause
