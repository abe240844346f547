"""The Markdown report: compact, for a pull-request comment.

Laid out as: the verdict line and the counts by severity and category; one table of the causes (a gap seen
on many steps is one row: its number, severity, category, each environment's value in a column of its own,
message, and how many findings it holds where), then what to do about each (framework references and a
remediation hint); acceptances that expired, each on a line of its own; the accepted divergences in a
collapsible block; the declarations that matched nothing, to be removed; then per scenario a collapsible
``<details>`` block with the matrix of steps by environments (decision and latency), each finding's
explanation with its cause's number, what the latency judge found doubtful (a mismatch; too few samples,
one line for the steps that share the sentence), and any failed cleanup. What it shows is the view's
(:mod:`parityprobe.report.view`).

GitHub renders inline HTML in comments and links mentions, issue numbers and bare URLs, so text from targets
must reach it as inert characters. Every string is redacted first (escaping would break a secret's match),
then clipped, then written with the characters that Markdown or HTML give a meaning to as numeric character
references (``<`` as ``&#60;``, ``|`` as ``&#124;``): a reference is plain text in a table cell, in
``<summary>`` (an HTML block, where a backslash escape would show) and in a ``<code>`` span alike. Line
breaks become ``<br>``, control and bidirectional-override characters are dropped. Values from targets are
set in ``<code>``, which GitHub also leaves alone when it looks for mentions and references.

A comment holds at most 65,536 characters: the summary and the causes come first (half the room at most),
then the divergences and the scenarios' details while they fit under :data:`COMMENT_LIMIT`; what does not
fit is cut with a line saying how much was left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import ClassVar, Protocol

from parityprobe.model import JudgeOutcome, Severity
from parityprobe.redact import Redactor
from parityprobe.report.guidance import references_line
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import (
    DETAIL_LIMIT,
    AcceptedView,
    CauseView,
    Cell,
    FindingView,
    Guidance,
    ReportView,
    ScenarioView,
    clip,
    plural,
)

# GitHub refuses a comment over 65,536 characters; the margin leaves room for what CI wraps around it.
COMMENT_LIMIT = 60_000
# Room kept for the closing line that says what was left out.
_CLOSING = 400
# The latency judge's verdicts worth a reader's time; ``no_difference`` is what the matrix already implies.
_DOUBTFUL = (JudgeOutcome.MISMATCH.value, JudgeOutcome.INSUFFICIENT_DATA.value)
# An acceptance's line holds its place, owner and reason: room for all three, but not for an essay.
_LINE = 600

# Markdown's and HTML's active characters, plus ':' '.' '@' (GitHub's autolinks, www. links, mentions)
# and '$' (its math): each written as a numeric character reference, which both read as one literal char.
_ACTIVE = "&<>\"'\\`*_[]()|~!#@:.$"
_REFERENCES = {ord(c): f"&#{ord(c)};" for c in _ACTIVE}
# C0/C1 controls (tab, CR and LF are handled before) and the bidirectional overrides that reorder text.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_Parts = tuple[list[str], list[str], list[str]]


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
        table, budget = _causes(view, esc, budget)
        numbers = {id(f): c for c in view.causes for f in c.cause.occurrences}
        sections = [*_divergences(view, esc)]
        sections += [(s.id, _details(s, view, numbers, esc)) for s in view.scenarios]
        blocks: list[str] = []
        left_out: list[str] = []
        left_chars = 0
        for name, section in sections:
            block, dropped = _fit(section, budget - 2)
            left_chars += dropped
            if block is None:
                left_out.append(name)
                continue
            blocks.append(block)
            budget -= len(block) + 2
        parts = [head, table, *blocks]
        if left_out:
            names = ", ".join(esc(name) for name in left_out[:10]) + (" …" if len(left_out) > 10 else "")
            parts.append(
                f"_Details of {plural(len(left_out), 'section')} ({names}) left out: {left_chars:,} "
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


def guidance_text(guidance: Guidance) -> str:
    """``Frameworks: OWASP NHI5:2025 · NIST CSF PR.AA-05 · Fix: …``, unescaped."""
    refs = references_line(guidance)
    return (f"Frameworks: {refs} · " if refs else "") + f"Fix: {guidance.remediation}"


def _summary(view: ReportView, esc: _Escape) -> str:
    summary = view.summary
    counts = (
        f"{plural(summary.scenarios, 'scenario')} · {plural(summary.runs, 'run')} · "
        f"{plural(summary.causes, 'cause')} from {plural(summary.findings, 'finding')} "
        f"({summary.inconclusive} inconclusive)"
    )
    if view.accepted:
        counts += f" · {len(view.accepted)} accepted"
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


def _causes(view: ReportView, esc: _Escape, budget: int) -> tuple[str, int]:
    """The table of causes, most severe first, and what to do about each, cut where it would use up half
    the budget; also the budget left."""
    if not view.causes:
        return "No findings.", budget - len("No findings.")
    # The run's environments first, then any other key a cause carries (``expected``), first seen first.
    keys = list(view.summary.environments)
    keys = list(dict.fromkeys(keys + [k for c in view.causes for k, _ in c.shown.values]))
    header = ["cause", "severity", "category", *keys, "message", "seen"]
    title = f"### Causes ({len(view.causes)}, from {plural(view.summary.findings, 'finding')})"
    lines = [title, "", _row(esc(h) for h in header), _row("---" for _ in header)]
    rows = [_cause_row(cause, keys, esc) for cause in view.causes]
    # Causes that call for the same remedy share one line: ``#2, #5 · Frameworks: … · Fix: …``.
    remedies: dict[Guidance, list[str]] = {}
    for cause in view.causes:
        if cause.shown.guidance is not None:
            remedies.setdefault(cause.shown.guidance, []).append(f"#{cause.number}")
    hints = [f"- {', '.join(n)} · {esc(guidance_text(g), 400)}" for g, n in remedies.items()]
    # A blank line ends the table before the hints; it is part of the first hint so a cut cannot strand it.
    items = rows + ([f"\n**What to do**\n{hints[0]}", *hints[1:]] if hints else [])
    used = sum(len(line) + 1 for line in lines)
    for shown, line in enumerate(items):
        # Half the comment at most: the scenarios' details, which explain the findings, need room too.
        if used + len(line) + 1 > budget // 2 and shown:
            more = f"{len(rows) - shown} more causes" if shown < len(rows) else f"{len(items) - shown} hints"
            lines.append(f"\n_{more} left out (GitHub's comment limit)._")
            break
        lines.append(line)
        used += len(line) + 1
    table = "\n".join(lines)
    return table, budget - len(table) - 2


def _cause_row(view: CauseView, keys: list[str], esc: _Escape) -> str:
    finding = view.cause.finding
    values = dict(view.shown.values)
    severity = esc(finding.severity.value)
    if finding.severity in (Severity.CRITICAL, Severity.HIGH):
        severity = f"**{severity}**"
    category = finding.category.value + (f" · field {finding.field}" if finding.field else "")
    message = esc(finding.message, 300)
    if view.shown.note is not None:  # an expired acceptance: why the cause is back
        message = f"**⚠ {esc(view.shown.note)}** · {message}"
    occurrences = view.cause.occurrences
    seen = f"{plural(len(occurrences), 'finding')}, {view.seen()}"
    graded = Counter(f.severity for f in occurrences)
    if len(graded) > 1:  # graded differently where it shows: the badge is the worst
        seen += " (" + ", ".join(f"{graded[s]} {s.value}" for s in Severity if s in graded) + ")"
    cells = [
        f"#{view.number}",
        severity,
        esc(category),
        *(code(esc(values[k], DETAIL_LIMIT)) if k in values else "—" for k in keys),
        message,
        esc(seen, 400),
    ]
    return _row(cells)


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _divergences(view: ReportView, esc: _Escape) -> list[tuple[str, _Parts]]:
    """Expired acceptances (in sight: they count again), accepted divergences (folded: they count for
    nothing) and the declarations that matched nothing, each a block that may be cut like a scenario's."""
    out: list[tuple[str, _Parts]] = []
    if view.expired:
        title = f"**⚠ Acceptances expired ({len(view.expired)}): counted again**"
        out.append(
            ("expired acceptances", ([title], [_acceptance(a, esc, expired=True) for a in view.expired], []))
        )
    if view.accepted:
        head = [f"<details><summary>{esc(f'Accepted divergences ({len(view.accepted)})')}</summary>", ""]
        body = [_acceptance(a, esc, expired=False) for a in view.accepted]
        out.append(("accepted divergences", (head, body, ["", "</details>"])))
    if view.unmatched:
        title = f"**Declared divergences that matched nothing ({len(view.unmatched)}): remove them**"
        body = [f"- {code(esc(u.source))}: {esc(u.description, 300)}" for u in view.unmatched]
        out.append(("unmatched declarations", ([title], body, [])))
    return out


def _acceptance(accepted: AcceptedView, esc: _Escape, *, expired: bool) -> str:
    source = f"({code(esc(accepted.source))})"
    if expired:  # counted again: flagged where it cannot be missed; its cause's row shows the values
        shown = accepted.shown
        text = f"{shown.where} in {shown.finding.scenario} — {accepted.owner}: {accepted.reason}"
        return f"- **⚠ accepted until {esc(accepted.expires)} (expired)** · {esc(text, _LINE)} {source}"
    line = f"{esc(accepted.line, _LINE)} {source}"
    values = " · ".join(f"{esc(k)}: {code(esc(v, DETAIL_LIMIT))}" for k, v in accepted.shown.values)
    return f"- {line}" + (f"<br>{values}" if values else "")


def _details(scenario: ScenarioView, view: ReportView, causes: dict[int, CauseView], esc: _Escape) -> _Parts:
    """A scenario's block as its head, its body lines (what may be cut) and its tail."""
    envs = scenario.environments
    found = f" · {plural(len(scenario.findings), 'finding')}" if scenario.findings else " · no findings"
    accepted = sum(a.shown.finding.scenario == scenario.id for a in view.accepted)
    found += f" · {accepted} accepted" if accepted else ""
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
        body += ["", "**Explanations**"]
        body.extend(_explanation(fv, causes.get(id(fv.finding)), esc) for fv in scenario.findings)
    # One run gives each step one sample: "insufficient data" is then one sentence on every step, said once.
    notes: dict[str, list[str]] = {}
    for row in scenario.rows:
        for note in row.latency:
            if note.outcome in _DOUBTFUL:
                notes.setdefault(note.sentence, []).append(row.step)
    if notes:
        body += ["", "**Latency**"]
        body.extend(f"- {esc(', '.join(steps), 300)}: {esc(text, 400)}" for text, steps in notes.items())
    for block in scenario.failed_cleanups:
        failed = ", ".join(
            f"{esc(e.label)} {code(esc(e.cell.decision, DETAIL_LIMIT))}" for e in block.entries if e.failed
        )
        body += [
            "",
            f"Cleanup in {esc(block.environment)}: {block.failed} of {len(block.entries)} failed: {failed}",
        ]
    return head, body, ["", "</details>"]


def _explanation(fv: FindingView, cause: CauseView | None, esc: _Escape) -> str:
    finding = fv.finding
    line = f"- {esc(finding.severity.value)} · {esc(fv.where)}"
    line += f" · cause #{cause.number}" if cause is not None else ""
    if fv.note is not None:
        line += f" · **⚠ {esc(fv.note)}**"
    line += f": {esc(finding.explanation or finding.message, 400)}"
    # The cause's row already says what to do; an occurrence repeats it only when its own hint differs.
    if fv.guidance is not None and (cause is None or cause.shown.guidance != fv.guidance):
        line += f"<br>{esc(guidance_text(fv.guidance), 400)}"
    return line


def _cell(cell: Cell, esc: _Escape) -> str:
    if not cell.observed:
        return "— no observation"
    text = code(esc(cell.decision, DETAIL_LIMIT))
    if cell.latency is not None:
        text += " · " + esc(cell.latency)
    return text


def _fit(parts: _Parts, budget: int) -> tuple[str | None, int]:
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
