"""The JUnit XML report: findings where CI systems (GitLab, GitHub, Jenkins) show test results.

One ``<testsuite>`` per scenario inside ``<testsuites>``; one ``<testcase classname="<scenario>.<environment>"
name="<step>">`` per step and environment, its ``time`` the step's latency in seconds. A finding goes on the
test case of the step it concerns, in each environment it is about (see :func:`_concerned`); a finding on
no step (the scenario's, an undo's) gets a test case of its own, named for its place. The document follows
the Ant/Jenkins ``JUnit.xsd`` that these parsers read, which allows one result element per test case, so:

- any decisive finding makes one ``<failure type="<category>">`` (the most severe finding's category and
  message; the text lists every finding on the case with its explanation and values);
- only inconclusive findings make one ``<error type="inconclusive">``;
- a skipped step without findings is ``<skipped message="<reason>"/>``.

Each suite's properties name its environments (``environment.<name>`` = the run's id); its timestamp is
its earliest run's start in UTC (the schema's format has no zone). The document is built with
:mod:`xml.etree.ElementTree`, which escapes; every text and attribute is redacted first and stripped of the
characters XML 1.0 forbids (control characters, lone surrogates), which a target's error text can carry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from parityprobe.model import Category, Finding, Outcome
from parityprobe.redact import Redactor
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import FindingView, ReportView, ScenarioView, plural

# XML 1.0's Char production, complemented: what no XML document may hold, even escaped.
_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The schema's hostname is required; the view knows where the runs ran only as environment names.
_HOSTNAME = "localhost"
_Clean = Callable[[str], str]


class JunitRenderer:
    """The ``junit`` format: JUnit XML for CI test-result parsers (colour and width do not apply)."""

    name: ClassVar[str] = "junit"

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The XML document, with its declaration, indented by two spaces; no final newline."""

        def clean(text: str) -> str:
            return xml_text(text, redactor)

        root = ET.Element("testsuites")
        for index, scenario in enumerate(view.scenarios):
            root.append(_suite(index, scenario, view, clean))
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        # Redacted once more whole, as every renderer does; each value was redacted before it was escaped.
        return redactor.redact('<?xml version="1.0" encoding="UTF-8"?>\n' + body)


def xml_text(text: str, redactor: Redactor) -> str:
    """``text`` redacted, without the characters XML 1.0 forbids."""
    return _FORBIDDEN.sub("", redactor.redact(text))


@dataclass(frozen=True, slots=True)
class _Case:
    """One test case before it is written: where it is, how long it took, and what it carries."""

    classname: str
    name: str
    seconds: float
    findings: tuple[FindingView, ...]
    skipped: str | None = None  # why the step was skipped, when it was


def _suite(index: int, scenario: ScenarioView, view: ReportView, clean: _Clean) -> ET.Element:
    cases = _cases(scenario)
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
        suite.append(_testcase(case, clean))
    # The schema requires both, even empty.
    ET.SubElement(suite, "system-out")
    ET.SubElement(suite, "system-err")
    return suite


def _cases(scenario: ScenarioView) -> list[_Case]:
    envs = scenario.environments
    placed: set[int] = set()
    cases: list[_Case] = []
    for row in scenario.rows:
        for cell in row.cells:
            on_case = tuple(
                fv
                for fv in scenario.findings
                if fv.finding.step == row.step and cell.environment in _concerned(fv.finding, envs)
            )
            placed.update(id(fv) for fv in on_case)
            latency = cell.latency_ms / 1000 if cell.latency_ms is not None else 0.0
            skipped = None
            if not cell.observed:
                skipped = "no observation"
            elif cell.outcome is Outcome.SKIPPED:
                skipped = cell.decision
            cases.append(_Case(f"{scenario.id}.{cell.environment}", row.step, latency, on_case, skipped))
    # Findings on no step of the matrix (the scenario's, an undo's): a case per place and environment.
    elsewhere: dict[tuple[str, str], list[FindingView]] = {}
    for fv in scenario.findings:
        if id(fv) in placed:
            continue
        concerned = _concerned(fv.finding, envs)
        for classname in [f"{scenario.id}.{e}" for e in concerned] or [scenario.id]:
            elsewhere.setdefault((classname, fv.place), []).append(fv)
    cases += [_Case(cls, place, 0.0, tuple(fvs)) for (cls, place), fvs in elsewhere.items()]
    return cases


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
    return "skipped" if case.skipped is not None else None


def _testcase(case: _Case, clean: _Clean) -> ET.Element:
    element = ET.Element(
        "testcase",
        {"classname": clean(case.classname), "name": clean(case.name), "time": _seconds(case.seconds)},
    )
    kind = _kind(case)
    if kind == "skipped":
        ET.SubElement(element, "skipped", {"message": clean(case.skipped or "")})
    elif kind is not None:
        # Findings arrive most severe first; the decisive ones lead, inconclusive ones follow in the text.
        ordered = sorted(case.findings, key=lambda fv: fv.finding.category is Category.INCONCLUSIVE)
        lead = ordered[0].finding
        message = lead.message
        if len(ordered) > 1:
            message += f" (and {plural(len(ordered) - 1, 'more finding')})"
        result = ET.SubElement(element, kind, {"message": clean(message), "type": lead.category.value})
        result.text = clean("\n\n".join(_explain(fv) for fv in ordered))
    return element


def _explain(fv: FindingView) -> str:
    finding = fv.finding
    lines = [f"[{finding.severity.value}] {fv.where}: {finding.message}"]
    if finding.explanation:
        lines.append(finding.explanation)
    lines += [f"  {key}: {value}" for key, value in fv.values]
    return "\n".join(lines)


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
