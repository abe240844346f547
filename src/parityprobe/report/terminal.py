"""The terminal report: what an SRE reads after a run.

Rendered with rich into a string, so the CLI prints it and tests read it. Per scenario: a heading, a
table with one row per step and one column per environment, the numbers of the causes seen there, and the
cleanup of any run whose cleanup failed. Then the findings grouped by cause, most severe first: one entry
per cause with its values side by side and ``seen in N steps: scenario/step, …``, so a gap that shows on
many steps is read once, then one dim line with the OWASP NHI and NIST CSF references and a remediation hint
(:mod:`parityprobe.report.guidance`). Findings accepted as known divergences (``--divergences``) follow, one
line each with owner, expiry and reason, then the declarations that matched nothing. A summary (counting
causes) and the verdict, which agrees with :attr:`Report.exit_code` unless findings were accepted, close the
report. What it shows is the view's
(:mod:`parityprobe.report.view`); this module only lays it out.

Every string is redacted on its way into rich (rich may wrap a long value across lines, where a search
of the finished text could no longer find it) and the finished text is redacted once more.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import ClassVar

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from parityprobe.compare.latency_judge import DEFAULT_SETTINGS
from parityprobe.grant import iso_utc
from parityprobe.model import ExitCode, Outcome, Report, Severity
from parityprobe.redact import Redactor
from parityprobe.report.build import build_view
from parityprobe.report.guidance import references_line
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import (
    CauseView,
    Cell,
    FailedCleanup,
    FindingView,
    ReportView,
    ScenarioView,
    Summary,
    Verdict,
    clip,
    plural,
)

_OUTCOME_STYLE = {
    Outcome.ALLOWED: "green",
    Outcome.DENIED: "blue",
    Outcome.NOT_FOUND: "cyan",
    Outcome.ERROR: "yellow",
    Outcome.SKIPPED: "yellow",
}
_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "bold yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_VERDICT_STYLE = {ExitCode.OK: "bold green", ExitCode.INCONCLUSIVE: "bold yellow"}

_Redact = Callable[[str], str]


class TerminalRenderer:
    """The ``terminal`` format: tables for people; ANSI colour codes only when asked for."""

    name: ClassVar[str] = "terminal"

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The report as text for a terminal ``options.width`` columns wide."""
        buffer = io.StringIO()
        color = options.color
        console = Console(
            file=buffer,
            width=options.width,
            force_terminal=color,
            force_jupyter=False,
            force_interactive=False,
            color_system="standard" if color else None,
            no_color=not color,
            # Markup and highlighting would reinterpret text from targets ("[bold]", numbers, URLs).
            markup=False,
            highlight=False,
            emoji=False,
            legacy_windows=False,
            # The caller's environment (NO_COLOR, FORCE_COLOR, COLUMNS) must not change what we render.
            _environ={},
        )
        red = redactor.redact
        console.print(Text(red(f"parityprobe report · generated {iso_utc(view.generated_at)}"), "dim"))
        for scenario in view.scenarios:
            console.print()
            for renderable in _scenario(scenario, red):
                console.print(renderable)
        if view.causes:
            console.print()
            heading = f"Causes ({len(view.causes)}, from {plural(view.summary.findings, 'finding')})"
            console.print(Rule(Text(red(heading), "bold"), align="left"))
            for cause in view.causes:
                console.print(_cause(cause, red))
        for renderable in _divergences(view, red):
            console.print(renderable)
        trend = _trend(view)
        if trend is not None:
            console.print()
            console.print(Text(red(trend), "bold"))
        console.print()
        # Never wrapped: CI logs are grepped for these two lines.
        console.print(_summary(view.summary, red), soft_wrap=True)
        console.print(_verdict(view.verdict, red), soft_wrap=True)
        # rich pads nested blocks to their widest line; trailing blanks only get in the way of diffs and
        # greps. No final newline: the caller's print adds one.
        text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
        return redactor.redact(text)


def render_terminal(report: Report, redactor: Redactor, *, color: bool = False, width: int = 120) -> str:
    """The report as text for a terminal; ANSI colour codes only when ``color`` is true."""
    return TerminalRenderer().render(build_view(report), redactor, RenderOptions(color=color, width=width))


def _scenario(scenario: ScenarioView, red: _Redact) -> list[RenderableType]:
    out: list[RenderableType] = [
        Rule(Text(red(scenario.heading), "bold"), align="left"),
        Text(red("runs: " + " · ".join(f"{r.environment} {r.id}" for r in scenario.runs)), "dim"),
        _steps_table(scenario, red),
    ]
    if scenario.findings:
        numbers = ", ".join(f"#{n}" for n in scenario.causes)
        noun = "cause" if len(scenario.causes) == 1 else "causes"
        out.append(Text(red(f"Findings ({len(scenario.findings)}): {noun} {numbers} below"), "bold"))
    else:
        out.append(Text(red("No findings."), "dim"))
    latency = _latency(scenario)
    if latency is not None:
        out.append(Text(red(latency), "dim"))
    out.extend(_cleanup(block, red) for block in scenario.failed_cleanups)
    return out


def _latency(scenario: ScenarioView) -> str | None:
    """What the latency judge said on the scenario's steps, in one line: a mismatch is a finding (shown with
    the causes), so this counts the steps judged alike and those it could not judge."""
    notes = [note for row in scenario.rows for note in row.latency]
    if not notes:
        return None
    counts = Counter(note.outcome for note in notes)
    parts = [f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items())]
    line = f"Latency judged on {plural(len(notes), 'step')}: " + ", ".join(parts)
    if counts["insufficient_data"]:
        needs = DEFAULT_SETTINGS.min_samples
        line += (
            f" (needs {needs} samples per environment: repeat: N on a read step, or a --store with history)"
        )
    return line


def _trend(view: ReportView) -> str | None:
    """``Trend, causes per day, oldest first: 5 5 4 3 (now 3: 1 high, 2 medium)``."""
    if not view.trend:
        return None
    last = view.trend[-1]
    worst = ", ".join(f"{n} {s.value}" for s, n in last.by_severity.items() if n)
    counts = " ".join(str(point.causes) for point in view.trend)
    since = iso_utc(view.trend[0].at)[:10]
    return f"Trend since {since}, causes at each point, oldest first: {counts} (now {last.causes}" + (
        f": {worst})" if worst else ")"
    )


def _steps_table(scenario: ScenarioView, red: _Redact) -> Table:
    table = Table(box=box.SQUARE, show_lines=True, expand=False)
    table.add_column(red("step"), overflow="fold")
    for env in scenario.environments:
        table.add_column(red(env), overflow="fold")
    if scenario.has_siem:
        table.add_column(red("siem"), overflow="fold")
    table.add_column(red("findings"), overflow="fold")
    for row in scenario.rows:
        marker = Text()
        for severity in row.severities:
            marker.append(("" if not marker else ", ") + red(severity.value), _SEVERITY_STYLE[severity])
        if row.unchecked and not row.flagged:
            marker.append(red("unchecked"), "dim")  # one environment, no expectation: nothing judged it
        step_label = Text(red(("! " if row.flagged else "") + row.step), "bold" if row.flagged else "")
        siem = [Text(red("\n".join(row.siem)), "dim")] if scenario.has_siem else []
        table.add_row(step_label, *(_cell(c, red) for c in row.cells), *siem, marker)
    return table


def _cell(cell: Cell, red: _Redact) -> Text:
    if not cell.observed or cell.outcome is None:
        return Text(red("— no observation"), "dim")
    text = Text(red(cell.decision), _OUTCOME_STYLE[cell.outcome])
    if cell.latency is not None:
        text.append("\n" + red(cell.latency), "dim")
    for note in (cell.waited, *cell.waits, cell.declared):
        if note is not None:
            text.append("\n" + red(note), "dim")
    for line in cell.grant:
        text.append("\n" + red(line))
    if cell.error_detail:
        text.append("\n" + clip(red(cell.error_detail)), "dim italic")
    return text


def _cause(cause: CauseView, red: _Redact) -> RenderableType:
    """A cause: its representative finding, titled with the cause's number, and where it was seen."""
    severities = Counter(f.severity for f in cause.cause.occurrences)
    graded = ""
    if len(severities) > 1:  # graded differently where it shows: say so, the badge is the worst
        graded = " (" + ", ".join(f"{severities[s]} {s.value}" for s in Severity if s in severities) + ")"
    seen = Text()
    seen.append(red(cause.seen() + graded), "italic")
    found = cause.shown.guidance
    if found is not None:  # the frameworks it bears on and what to do, one dim line under where it was seen
        seen.append("\n" + red(f"{references_line(found)} — {found.remediation}"), "dim")
    return _finding(cause.shown, red, where=cause.where, seen=seen)


def _finding(
    view: FindingView, red: _Redact, *, where: str | None = None, seen: Text | None = None
) -> RenderableType:
    finding = view.finding
    title = Text()
    title.append(red(f" {finding.severity.value.upper()} "), _SEVERITY_STYLE[finding.severity])
    title.append(" " + red(view.where if where is None else where))
    values = Table(box=None, padding=(0, 3, 0, 0), show_edge=False, header_style="dim")
    for key, _ in view.values:
        values.add_column(red(key), overflow="fold")
    values.add_row(*(Text(red(value)) for _, value in view.values))
    body: list[RenderableType] = [values] if view.values else []
    if view.note is not None:
        body.append(Text(red(view.note), "bold yellow"))  # an expired acceptance: why the finding is back
    body.append(Text(red(finding.message)))
    if finding.explanation:
        body.append(Text(red(finding.explanation), "dim"))
    if seen is not None:
        body.append(seen)
    return Group(title, Padding(Group(*body), (0, 0, 1, 4), expand=False))


def _divergences(view: ReportView, red: _Redact) -> list[RenderableType]:
    """Accepted divergences, one line each, and declarations that matched nothing: short, after the causes."""
    out: list[RenderableType] = []
    if view.accepted:
        out += [Text(), Rule(Text(red(f"Accepted divergences ({len(view.accepted)})"), "bold"), align="left")]
        for accepted in view.accepted:
            values = " · ".join(f"{k}: {v}" for k, v in accepted.shown.values)
            out.append(Text(red(accepted.line)))
            out.append(Padding(Text(clip(red(values)), "dim"), (0, 0, 0, 4)))
    if view.unmatched:
        title = f"Declared divergences that matched nothing ({len(view.unmatched)}): remove them"
        out += [Text(), Text(red(title), "bold yellow")]
        out.extend(Text(red(f"    {u.source}: {u.description}"), "dim") for u in view.unmatched)
    return out


def _cleanup(block: FailedCleanup, red: _Redact) -> RenderableType:
    title = Text(
        red(
            f"Cleanup in {block.environment} (run {block.run_id}): "
            f"{block.failed} of {len(block.entries)} failed"
        )
    )
    title.stylize("bold yellow")
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    for entry in block.entries:
        detail = clip(red(entry.detail)) if entry.detail else ""
        table.add_row(Text(red(entry.label)), _cell(entry.cell, red), Text(detail, "dim"))
    return Group(title, Padding(table, (0, 0, 0, 4), expand=False))


def _summary(summary: Summary, red: _Redact) -> Text:
    by_severity = ", ".join(f"{n} {s.value}" for s, n in summary.by_severity.items() if n)
    line = (
        f"Summary: {plural(summary.scenarios, 'scenario')} · {plural(summary.runs, 'run')} · "
        f"{plural(summary.causes, 'cause')}"
        + (f" ({by_severity})" if by_severity else "")
        + f" from {plural(summary.findings, 'finding')}"
    )
    return Text(red(line + f" · {summary.inconclusive} inconclusive"), "bold")


def _verdict(verdict: Verdict, red: _Redact) -> Text:
    return Text(red(verdict.line), _VERDICT_STYLE.get(verdict.exit_code, "bold red"))
