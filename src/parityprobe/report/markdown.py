"""The Markdown report: compact, for a pull-request comment.

Laid out as: the verdict line and the counts by severity and category, one table of every finding (severity,
scenario, step, category, each environment's value in a column of its own, message), then per scenario a
collapsible ``<details>`` block with the matrix of steps by environments (decision and latency), the
findings' explanations and any failed cleanup. What it shows is the view's (:mod:`parityprobe.report.view`).

GitHub renders inline HTML in comments and links mentions, issue numbers and bare URLs, so text from targets
must reach it as inert characters. Every string is redacted first (escaping would break a secret's match),
then clipped, then written with the characters that Markdown or HTML give a meaning to as numeric character
references (``<`` as ``&#60;``, ``|`` as ``&#124;``): a reference is plain text in a table cell, in
``<summary>`` (an HTML block, where a backslash escape would show) and in a ``<code>`` span alike. Line
breaks become ``<br>``, control and bidirectional-override characters are dropped. Values from targets are
set in ``<code>``, which GitHub also leaves alone when it looks for mentions and references.

A comment holds at most 65,536 characters: the summary and the findings table come first, then the
scenarios' details while they fit under :data:`COMMENT_LIMIT`; what does not fit is cut with a line saying
how much was left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Protocol

from parityprobe.model import Severity
from parityprobe.redact import Redactor
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import DETAIL_LIMIT, Cell, FindingView, ReportView, ScenarioView, clip, plural

# GitHub refuses a comment over 65,536 characters; the margin leaves room for what CI wraps around it.
COMMENT_LIMIT = 60_000
# Room kept for the closing line that says what was left out.
_CLOSING = 400

# Markdown's and HTML's active characters, plus ':' '.' '@' (GitHub's autolinks, www. links, mentions)
# and '$' (its math): each written as a numeric character reference, which both read as one literal char.
_ACTIVE = "&<>\"'\\`*_[]()|~!#@:.$"
_REFERENCES = {ord(c): f"&#{ord(c)};" for c in _ACTIVE}
# C0/C1 controls (tab, CR and LF are handled before) and the bidirectional overrides that reorder text.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class _Escape(Protocol):
    def __call__(self, text: str, limit: int | None = None) -> str: ...


class MarkdownRenderer:
    """The ``markdown`` format: a pull-request comment (colour and width do not apply).

    ``limit`` is the most characters the comment may hold; what does not fit is cut, with a line saying so.
    """

    name: ClassVar[str] = "markdown"

    def __init__(self, limit: int = COMMENT_LIMIT) -> None:
        self.limit = limit

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The comment, every value redacted and escaped; no final newline."""

        def esc(text: str, limit: int | None = None) -> str:
            return escape(text, redactor, limit)

        head = _summary(view, esc)
        budget = self.limit - _CLOSING - len(head)
        table, budget = _findings_table(view, esc, budget)
        blocks: list[str] = []
        left_out: list[str] = []
        left_chars = 0
        for scenario in view.scenarios:
            block, dropped = _fit(_details(scenario, esc), budget - 2)
            left_chars += dropped
            if block is None:
                left_out.append(scenario.id)
                continue
            blocks.append(block)
            budget -= len(block) + 2
        parts = [head, table, *blocks]
        if left_out:
            names = ", ".join(esc(name) for name in left_out[:10]) + (" …" if len(left_out) > 10 else "")
            parts.append(
                f"_Details of {plural(len(left_out), 'scenario')} ({names}) left out: {left_chars:,} "
                "characters over GitHub's comment limit. The HTML or JSON report has everything._"
            )
        # Redacted once more whole, as every renderer does; values were redacted before they were escaped.
        return redactor.redact("\n\n".join(parts))


def escape(text: str, redactor: Redactor, limit: int | None = None) -> str:
    """``text`` as inert Markdown: redacted, clipped to ``limit`` characters, active characters written as
    character references, line breaks as ``<br>``, invisible controls dropped."""
    text = redactor.redact(text)
    if limit is not None:
        text = clip(text, limit)
    lines = (_INVISIBLE.sub("", line.replace("\t", " ")) for line in text.splitlines())
    return "<br>".join(line.translate(_REFERENCES) for line in lines)


def code(text: str) -> str:
    """Already escaped ``text`` set as code (empty text stays empty: an empty span would show nothing)."""
    return f"<code>{text}</code>" if text else ""


def _summary(view: ReportView, esc: _Escape) -> str:
    summary = view.summary
    counts = (
        f"{plural(summary.scenarios, 'scenario')} · {plural(summary.runs, 'run')} · "
        f"{plural(summary.findings, 'finding')} ({summary.inconclusive} inconclusive)"
    )
    lines = [f"**{esc(view.verdict.line)}**", "", esc(counts)]
    if summary.environments:
        lines[-1] += " · environments: " + ", ".join(esc(env) for env in summary.environments)
    severities = _counts((s.value, n) for s, n in summary.by_severity.items())
    categories = _counts((c.value, n) for c, n in summary.by_category.items())
    if severities:
        lines += ["", f"- **By severity:** {esc(severities)}", f"- **By category:** {esc(categories)}"]
    return "\n".join(lines)


def _counts(pairs: Iterable[tuple[str, int]]) -> str:
    return " · ".join(f"{n} {name}" for name, n in pairs if n)


def _findings_table(view: ReportView, esc: _Escape, budget: int) -> tuple[str, int]:
    """The table of every finding, most severe first, cut where it would use up the budget; what is left."""
    findings = [(scenario, f) for scenario in view.scenarios for f in scenario.findings]
    if not findings:
        return "No findings.", budget - len("No findings.")
    findings.sort(key=lambda pair: pair[1].finding.severity.rank)
    # The run's environments first, then any other key a finding carries (``expected``), first seen first.
    keys = list(view.summary.environments)
    keys += [k for _, f in findings for k, _ in f.values if k not in keys]
    keys = list(dict.fromkeys(keys))
    header = ["severity", "scenario", "step", "category", *keys, "message"]
    lines = [
        f"### Findings ({len(findings)})",
        "",
        _row(esc(h) for h in header),
        _row("---" for _ in header),
    ]
    used = sum(len(line) + 1 for line in lines)
    for shown, (scenario, fv) in enumerate(findings):
        line = _finding_row(scenario, fv, keys, esc)
        # Half the comment at most: the scenarios' details, which explain the findings, need room too.
        if used + len(line) + 1 > budget // 2 and shown:
            lines.append(f"\n_{len(findings) - shown} more findings left out (GitHub's comment limit)._")
            break
        lines.append(line)
        used += len(line) + 1
    table = "\n".join(lines)
    return table, budget - len(table) - 2


def _finding_row(scenario: ScenarioView, fv: FindingView, keys: list[str], esc: _Escape) -> str:
    finding = fv.finding
    values = dict(fv.values)
    severity = esc(finding.severity.value)
    if finding.severity in (Severity.CRITICAL, Severity.HIGH):
        severity = f"**{severity}**"
    cells = [
        severity,
        esc(scenario.id),
        esc(fv.place.removeprefix("step ")),
        esc(finding.category.value),
        *(code(esc(values[k], DETAIL_LIMIT)) if k in values else "—" for k in keys),
        esc(finding.message, 300),
    ]
    return _row(cells)


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _details(scenario: ScenarioView, esc: _Escape) -> tuple[list[str], list[str], list[str]]:
    """A scenario's block as its head, its body lines (what may be cut) and its tail."""
    envs = scenario.environments
    found = f" · {plural(len(scenario.findings), 'finding')}" if scenario.findings else " · no findings"
    title = f"{scenario.heading}: {plural(len(scenario.rows), 'step')}, {plural(len(envs), 'environment')}"
    runs = " · ".join(f"{esc(r.environment)} {code(esc(r.id))}" for r in scenario.runs)
    header = ["step", *envs] + (["siem"] if scenario.has_siem else [])
    head = [
        f"<details><summary>{esc(title, 300)}{esc(found)}</summary>",
        "",
        f"runs: {runs}",
        "",
        _row(esc(h) for h in header),
        _row("---" for _ in header),
    ]
    body: list[str] = []
    for row in scenario.rows:
        step = esc(row.step)
        if row.flagged:
            step = f"**{step}** ({esc(', '.join(s.value for s in row.severities))})"
        elif row.unchecked:
            step += " (unchecked)"
        siem = [esc("; ".join(row.siem), 200)] if scenario.has_siem else []
        body.append(_row([step, *(_cell(c, esc) for c in row.cells), *siem]))
    if scenario.findings:
        body.append("")
        body.append("**Explanations**")
        body.extend(
            f"- {esc(fv.finding.severity.value)} · {esc(fv.where)}: "
            f"{esc(fv.finding.explanation or fv.finding.message, 400)}"
            for fv in scenario.findings
        )
    for block in scenario.failed_cleanups:
        failed = ", ".join(
            f"{esc(e.label)} {code(esc(e.cell.decision, DETAIL_LIMIT))}" for e in block.entries if e.failed
        )
        body += [
            "",
            f"Cleanup in {esc(block.environment)}: {block.failed} of {len(block.entries)} failed: {failed}",
        ]
    return head, body, ["", "</details>"]


def _cell(cell: Cell, esc: _Escape) -> str:
    if not cell.observed:
        return "— no observation"
    text = code(esc(cell.decision, DETAIL_LIMIT))
    if cell.latency is not None:
        text += " · " + esc(cell.latency)
    return text


def _fit(parts: tuple[list[str], list[str], list[str]], budget: int) -> tuple[str | None, int]:
    """The block whole if it fits the budget, else cut after as many body lines as fit, with a line saying
    how much was left out; None when not even its head fits. Also how many characters were left out."""
    head, body, tail = parts
    whole = "\n".join([*head, *body, *tail])
    if len(whole) <= budget:
        return whole, 0
    note_room = 120
    kept: list[str] = []
    used = len("\n".join([*head, *tail])) + note_room
    if used > budget:
        return None, len(whole)
    for line in body:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    dropped = len(whole) - len("\n".join([*head, *kept, *tail]))
    cut = len(body) - len(kept)
    note = f"_{cut} of {len(body)} lines ({dropped:,} characters) left out: GitHub's comment limit._"
    # A cut inside the matrix must not leave the note as a table row: a blank line ends the table.
    return "\n".join([*head, *kept, "", note, *tail]), dropped
