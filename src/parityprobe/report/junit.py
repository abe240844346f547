"""The JUnit XML report: findings where CI systems (GitLab, GitHub, Jenkins) show test results.

One ``<testsuite>`` per scenario inside ``<testsuites>``; one ``<testcase classname="<scenario>.<environment>"
name="<step>">`` per step and environment, its ``time`` the step's latency in seconds. A finding goes on the
test case of the step it concerns, in each environment it is about (see :func:`_concerned`); a finding on
no step (the scenario's, an undo's) gets a test case of its own, named for its place. The document follows
the Ant/Jenkins ``JUnit.xsd`` that these parsers read, which allows one result element per test case, so:

- any decisive finding makes one ``<failure type="<category>">`` (the most severe finding's category and
  message, with its cause's number and on how many steps that cause was seen, so one gap failing many
  cases reads as one; the text lists every finding on the case with its cause, explanation, values,
  framework references and remediation hint). A finding whose acceptance expired fails like any other,
  its message starting ``⚠ accepted until <date> (expired)``;
- only inconclusive findings make one ``<error type="inconclusive">``;
- a case whose only findings are accepted divergences is ``<skipped message="accepted divergence: <owner>,
  until <date>: <reason>"/>`` (accepted findings are not failures); a skipped step without findings is
  ``<skipped message="<reason>"/>``.

The schema gives a test case no output of its own, so what concerns a whole scenario goes in its suite's
``<system-out>``: the latency judge's doubtful verdicts (a mismatch, too few samples; a mismatch's sentence
is also in the failure text of its step's cases in both environments) and the declared divergences that
matched nothing (in the suite of each scenario their pattern names, else in the first suite), to be
removed. Each suite's properties name its environments (``environment.<name>`` = the run's id); its
timestamp is its earliest run's start in UTC (the schema's format has no zone). The document is built with
:mod:`xml.etree.ElementTree`, which escapes; every text and attribute is redacted first and stripped of the
characters XML 1.0 forbids (control characters, lone surrogates), which a target's error text can carry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import ClassVar

from parityprobe.model import Category, Finding, JudgeOutcome, Outcome
from parityprobe.redact import Redactor
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import (
    AcceptedView,
    CauseView,
    FindingView,
    LatencyNote,
    ReportView,
    ScenarioView,
    UnmatchedView,
    plural,
)

# XML 1.0's Char production, complemented: what no XML document may hold, even escaped.
_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The schema's hostname is required; the view knows where the runs ran only as environment names.
_HOSTNAME = "localhost"
# The latency judge's verdicts worth a reader's time; ``no_difference`` is what a passing case already says.
_DOUBTFUL = (JudgeOutcome.MISMATCH.value, JudgeOutcome.INSUFFICIENT_DATA.value)
_Clean = Callable[[str], str]


class JunitRenderer:
    """The ``junit`` format: JUnit XML for CI test-result parsers (colour and width do not apply)."""

    name: ClassVar[str] = "junit"

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The XML document, with its declaration, indented by two spaces; no final newline."""

        def clean(text: str) -> str:
            return xml_text(text, redactor)

        context = _Context.of(view)
        root = ET.Element("testsuites")
        for index, scenario in enumerate(view.scenarios):
            root.append(_suite(index, scenario, view, context, clean))
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        # Redacted once more whole, as every renderer does; each value was redacted before it was escaped.
        return redactor.redact('<?xml version="1.0" encoding="UTF-8"?>\n' + body)


def xml_text(text: str, redactor: Redactor) -> str:
    """``text`` redacted, without the characters XML 1.0 forbids."""
    return _FORBIDDEN.sub("", redactor.redact(text))


@dataclass(frozen=True, slots=True)
class _Context:
    """What the report says about findings beyond their scenario: their causes and their acceptances."""

    causes: dict[int, CauseView]  # id(finding) → its cause
    expired: dict[int, AcceptedView]  # id(finding) → the acceptance that expired
    unmatched: dict[str, tuple[UnmatchedView, ...]]  # scenario id → declarations to list in its suite

    @classmethod
    def of(cls, view: ReportView) -> _Context:
        ids = [s.id for s in view.scenarios]
        unmatched: dict[str, list[UnmatchedView]] = {}
        for u in view.unmatched:
            named = [i for i in ids if fnmatchcase(i, u.declaration.scenario)] or ids[:1]
            for scenario in named:
                unmatched.setdefault(scenario, []).append(u)
        return cls(
            {id(f): c for c in view.causes for f in c.cause.occurrences},
            {id(a.shown.finding): a for a in view.expired},
            {k: tuple(v) for k, v in unmatched.items()},
        )


@dataclass(frozen=True, slots=True)
class _Case:
    """One test case before it is written: where it is, how long it took, and what it carries."""

    classname: str
    name: str
    seconds: float
    findings: tuple[FindingView, ...]
    skipped: str | None = None  # why the step was skipped, when it was
    accepted: tuple[AcceptedView, ...] = ()  # accepted divergences on the case: never failures
    latency: tuple[LatencyNote, ...] = ()  # the judge's mismatches against this case's environment


def _suite(
    index: int, scenario: ScenarioView, view: ReportView, context: _Context, clean: _Clean
) -> ET.Element:
    accepted = tuple(a for a in view.accepted if a.shown.finding.scenario == scenario.id)
    cases = _cases(scenario, accepted)
    failures = sum(_kind(c) == "failure" for c in cases)
    errors = sum(_kind(c) == "error" for c in cases)
    skipped = sum(_kind(c) == "skipped" for c in cases)
    suite = ET.Element(
        "testsuite",
        {
            "name": clean(scenario.id),
            "package": clean(scenario.id),
            "id": str(index),
            "hostname": _HOSTNAME,
            "timestamp": _timestamp(scenario, view),
            "tests": str(len(cases)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": str(skipped),
            "time": _seconds(sum(c.seconds for c in cases)),
        },
    )
    properties = ET.SubElement(suite, "properties")
    if scenario.description:
        ET.SubElement(properties, "property", {"name": "description", "value": clean(scenario.description)})
    for run in scenario.runs:
        ET.SubElement(
            properties, "property", {"name": clean(f"environment.{run.environment}"), "value": clean(run.id)}
        )
    for case in cases:
        suite.append(_testcase(case, context, clean))
    # The schema requires both, even empty.
    ET.SubElement(suite, "system-out").text = clean(_output(scenario, context.unmatched.get(scenario.id, ())))
    ET.SubElement(suite, "system-err")
    return suite


def _cases(scenario: ScenarioView, accepted: tuple[AcceptedView, ...]) -> list[_Case]:
    envs = scenario.environments
    placed: set[int] = set()
    cases: list[_Case] = []

    def on(finding: Finding, step: str, env: str) -> bool:
        return finding.step == step and env in _concerned(finding, envs)

    for row in scenario.rows:
        for cell in row.cells:
            on_case = tuple(fv for fv in scenario.findings if on(fv.finding, row.step, cell.environment))
            taken = tuple(a for a in accepted if on(a.shown.finding, row.step, cell.environment))
            placed.update(id(x) for x in (*on_case, *taken))
            latency = cell.latency_ms / 1000 if cell.latency_ms is not None else 0.0
            skipped = None
            if not cell.observed:
                skipped = "no observation"
            elif cell.outcome is Outcome.SKIPPED:
                skipped = cell.decision
            # A mismatch is about the pair: told on the failing cases of both its environments.
            notes = tuple(
                n
                for n in row.latency
                if n.outcome == JudgeOutcome.MISMATCH.value and cell.environment in n.environments
            )
            cases.append(
                _Case(f"{scenario.id}.{cell.environment}", row.step, latency, on_case, skipped, taken, notes)
            )
    # Findings on no step of the matrix (the scenario's, an undo's): a case per place and environment.
    elsewhere: dict[tuple[str, str], tuple[list[FindingView], list[AcceptedView]]] = {}

    for fv in scenario.findings:
        if id(fv) not in placed:
            for key in _places(scenario.id, fv, envs):
                elsewhere.setdefault(key, ([], []))[0].append(fv)
    for a in accepted:
        if id(a) not in placed:
            for key in _places(scenario.id, a.shown, envs):
                elsewhere.setdefault(key, ([], []))[1].append(a)
    cases += [
        _Case(cls, place, 0.0, tuple(fvs), accepted=tuple(taken))
        for (cls, place), (fvs, taken) in elsewhere.items()
    ]
    return cases


def _places(scenario: str, fv: FindingView, envs: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (classname, name) of the cases for a finding on no step: one per environment it concerns."""
    return [(f"{scenario}.{e}", fv.place) for e in _concerned(fv.finding, envs)] or [(scenario, fv.place)]


def _concerned(finding: Finding, envs: tuple[str, ...]) -> tuple[str, ...]:
    """The environments a finding is about. A finding about one environment says so as its message's
    prefix (``production: … was denied``), its values showing the others for comparison; else those its
    values name; else (``expected`` alone) every environment."""
    for env in envs:
        if finding.message.startswith(f"{env}: "):
            return (env,)
    named = tuple(e for e in envs if e in finding.environments)
    return named or envs


def _kind(case: _Case) -> str | None:
    if any(fv.finding.category is not Category.INCONCLUSIVE for fv in case.findings):
        return "failure"
    if case.findings:
        return "error"
    return "skipped" if case.accepted or case.skipped is not None else None


def _testcase(case: _Case, context: _Context, clean: _Clean) -> ET.Element:
    element = ET.Element(
        "testcase",
        {"classname": clean(case.classname), "name": clean(case.name), "time": _seconds(case.seconds)},
    )
    kind = _kind(case)
    if kind == "skipped":
        reasons = [_accepted_message(case.accepted)] if case.accepted else []
        reasons += [case.skipped] if case.skipped is not None else []
        ET.SubElement(element, "skipped", {"message": clean("; ".join(reasons))})
    elif kind is not None:
        # Findings arrive most severe first; the decisive ones lead, inconclusive ones follow in the text.
        ordered = sorted(case.findings, key=lambda fv: fv.finding.category is Category.INCONCLUSIVE)
        lead = ordered[0]
        message = lead.finding.message
        if lead.note is not None:  # an expired acceptance: why a known gap fails again
            message = f"⚠ {lead.note}: {message}"
        cause = context.causes.get(id(lead.finding))
        if cause is not None:
            message += f" (cause #{cause.number}, seen in {plural(cause.cause.steps, 'step')})"
        if len(ordered) > 1:
            message += f" (and {plural(len(ordered) - 1, 'more finding')})"
        result = ET.SubElement(
            element, kind, {"message": clean(message), "type": lead.finding.category.value}
        )
        text = [_explain(fv, context) for fv in ordered]
        text += [note.sentence for note in case.latency]
        text += [f"accepted on this case too: {a.line} ({a.source})" for a in case.accepted]
        result.text = clean("\n\n".join(text))
    return element


def _accepted_message(accepted: tuple[AcceptedView, ...]) -> str:
    """``accepted divergence: platform-team, until 2026-03-31: staging keeps 24h tokens``."""
    first = accepted[0]
    more = f" (and {len(accepted) - 1} more)" if len(accepted) > 1 else ""
    return f"accepted divergence: {first.owner}, until {first.expires}: {first.reason}{more}"


def _explain(fv: FindingView, context: _Context) -> str:
    finding = fv.finding
    lines = [f"[{finding.severity.value}] {fv.where}: {finding.message}"]
    cause = context.causes.get(id(finding))
    if cause is not None:
        occurrences = plural(len(cause.cause.occurrences), "finding")
        lines.append(f"cause #{cause.number} ({occurrences}), {cause.seen()}")
    expired = context.expired.get(id(finding))
    if fv.note is not None:
        whose = f" — {expired.owner}: {expired.reason} ({expired.source})" if expired is not None else ""
        lines.append(f"⚠ {fv.note}{whose}")
    if finding.explanation:
        lines.append(finding.explanation)
    lines += [f"  {key}: {value}" for key, value in fv.values]
    if fv.guidance is not None:
        refs = ", ".join(f"{r.framework} {r.id} ({r.title})" for r in fv.guidance.references)
        lines += [f"frameworks: {refs}"] if refs else []
        lines.append(f"fix: {fv.guidance.remediation}")
    return "\n".join(lines)


def _output(scenario: ScenarioView, unmatched: Sequence[UnmatchedView]) -> str:
    """The suite's ``system-out``: the latency judge's doubtful verdicts and declarations to remove."""
    parts: list[str] = []
    notes = [
        f"  {row.step}: {n.sentence}" for row in scenario.rows for n in row.latency if n.outcome in _DOUBTFUL
    ]
    if notes:
        parts.append("Latency:\n" + "\n".join(notes))
    if unmatched:
        title = f"Declared divergences that matched nothing ({len(unmatched)}): remove them"
        parts.append(title + "\n" + "\n".join(f"  {u.source}: {u.description}" for u in unmatched))
    return "\n\n".join(parts)


def _timestamp(scenario: ScenarioView, view: ReportView) -> str:
    starts = [
        run.started_at
        for comparison in view.report.comparisons
        if comparison.scenario == scenario.id
        for run in comparison.runs
    ]
    moment = min(starts, key=_utc) if starts else view.generated_at
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S")


def _utc(moment: datetime) -> datetime:
    # A naive timestamp (which the model should never hold) is taken to be UTC, as the JSON report does.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds(seconds: float) -> str:
    return f"{seconds:.6f}"
