"""The terminal report: what an SRE reads after a run.

Rendered with rich into a string, so the CLI prints it and tests read it. Per scenario: a heading, a
table with one row per step and one column per environment, the scenario's findings (most severe
first), and the cleanup of any run whose cleanup failed. A summary and the verdict, which always agrees
with :attr:`Report.exit_code`, close the report.

Every string is redacted on its way into rich (rich may wrap a long value across lines, where a search
of the finished text could no longer find it) and the finished text is redacted once more.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from parityprobe.grant import iso_utc
from parityprobe.model import (
    Category,
    Comparison,
    ExitCode,
    Finding,
    Observation,
    Outcome,
    Report,
    Run,
    Severity,
)
from parityprobe.redact import Redactor

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
# A cleanup that found nothing to undo (NOT_FOUND) or was not needed (SKIPPED) left nothing behind.
_CLEANUP_FAILED = (Outcome.ERROR, Outcome.DENIED)
# SDK messages can run to pages; the JSON report keeps them whole.
_DETAIL_LIMIT = 160
_VERDICT_STEPS_SHOWN = 5

_Redact = Callable[[str], str]


def render_terminal(report: Report, redactor: Redactor, *, color: bool = False, width: int = 120) -> str:
    """The report as text for a terminal; ANSI colour codes only when ``color`` is true."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
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
    console.print(Text(red(f"parityprobe report · generated {iso_utc(report.generated_at)}"), "dim"))
    for comparison in report.comparisons:
        console.print()
        for renderable in _comparison(comparison, red):
            console.print(renderable)
    console.print()
    # Never wrapped: CI logs are grepped for these two lines.
    console.print(_summary(report, red), soft_wrap=True)
    console.print(_verdict(report, red), soft_wrap=True)
    # rich pads nested blocks to their widest line; trailing blanks only get in the way of diffs and greps.
    # No final newline: the caller's print adds one.
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
    return redactor.redact(text)


def _comparison(comparison: Comparison, red: _Redact) -> list[RenderableType]:
    heading = comparison.scenario + (f" — {comparison.description}" if comparison.description else "")
    out: list[RenderableType] = [
        Rule(Text(red(heading), "bold"), align="left"),
        Text(red("runs: " + " · ".join(f"{r.environment} {r.id}" for r in comparison.runs)), "dim"),
        _steps_table(comparison, red),
    ]
    if comparison.findings:
        ordered = sorted(comparison.findings, key=lambda f: f.severity.rank)  # stable: ties keep order
        out.append(Text(red(f"Findings ({len(ordered)})"), "bold"))
        out.extend(_finding(f, comparison.environments, red) for f in ordered)
    else:
        out.append(Text(red("No findings."), "dim"))
    out.extend(_cleanup(run, red) for run in comparison.runs if _cleanup_failed(run))
    return out


def _steps_table(comparison: Comparison, red: _Redact) -> Table:
    table = Table(box=box.SQUARE, show_lines=True, expand=False)
    table.add_column(red("step"), overflow="fold")
    for env in comparison.environments:
        table.add_column(red(env), overflow="fold")
    table.add_column(red("findings"), overflow="fold")
    for step, observations in comparison.pairs():
        on_step = sorted((f for f in comparison.findings if f.step == step), key=lambda f: f.severity.rank)
        marker = Text()
        for severity in dict.fromkeys(f.severity for f in on_step):  # distinct, most severe first
            marker.append(("" if not marker else ", ") + red(severity.value), _SEVERITY_STYLE[severity])
        step_label = Text(red(("! " if on_step else "") + step), "bold" if on_step else "")
        cells = [_cell(observations.get(env), red) for env in comparison.environments]
        table.add_row(step_label, *cells, marker)
    return table


def _cell(obs: Observation | None, red: _Redact) -> Text:
    if obs is None:
        return Text(red("— no observation"), "dim")
    text = Text(red(obs.describe()), _OUTCOME_STYLE[obs.outcome])
    if obs.latency_ms is not None:
        text.append("\n" + red(f"{obs.latency_ms:.1f} ms"), "dim")
    for line in obs.grant.lines():
        text.append("\n" + red(line))
    if obs.detail and obs.outcome is Outcome.ERROR:
        # Only errors need the SDK's words to be diagnosed; a decision's normalised reason says enough.
        # Redact before clipping: a clipped secret is no longer a whole match for the redactor.
        text.append("\n" + _clip(red(obs.detail)), "dim italic")
    return text


def _finding(finding: Finding, environments: Sequence[str], red: _Redact) -> RenderableType:
    title = Text()
    title.append(red(f" {finding.severity.value.upper()} "), _SEVERITY_STYLE[finding.severity])
    where = [finding.category.value, f"step {finding.step}" if finding.step else "scenario"]
    if finding.field:
        where.append(f"field {finding.field}")
    title.append(" " + red(" · ".join(where)))
    # The scenario's environments first, in run order, then any other keys the finding carries.
    keys = [e for e in environments if e in finding.environments]
    keys += [k for k in finding.environments if k not in keys]
    values = Table(box=None, padding=(0, 3, 0, 0), show_edge=False, header_style="dim")
    for key in keys:
        values.add_column(red(key), overflow="fold")
    values.add_row(*(Text(red(finding.environments[k])) for k in keys))
    body: list[RenderableType] = [values] if keys else []
    body.append(Text(red(finding.message)))
    if finding.explanation:
        body.append(Text(red(finding.explanation), "dim"))
    return Group(title, Padding(Group(*body), (0, 0, 1, 4), expand=False))


def _cleanup_failed(run: Run) -> bool:
    return any(obs.outcome in _CLEANUP_FAILED for obs in run.cleanup)


def _cleanup(run: Run, red: _Redact) -> RenderableType:
    failed = sum(obs.outcome in _CLEANUP_FAILED for obs in run.cleanup)
    title = Text(red(f"Cleanup in {run.environment} (run {run.id}): {failed} of {len(run.cleanup)} failed"))
    title.stylize("bold yellow")
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    for obs in run.cleanup:
        detail = _clip(red(obs.detail)) if obs.detail else ""
        table.add_row(Text(red(obs.step)), _cell(obs, red), Text(detail, "dim"))
    return Group(title, Padding(table, (0, 0, 0, 4), expand=False))


def _summary(report: Report, red: _Redact) -> Text:
    findings = report.findings
    runs = sum(len(c.runs) for c in report.comparisons)
    counts = Counter(f.severity for f in findings)
    by_severity = ", ".join(f"{counts[s]} {s.value}" for s in Severity if counts[s])
    inconclusive = sum(f.category is Category.INCONCLUSIVE for f in findings)
    line = (
        f"Summary: {_plural(len(report.comparisons), 'scenario')} · {_plural(runs, 'run')} · "
        f"{_plural(len(findings), 'finding')}" + (f" ({by_severity})" if by_severity else "")
    )
    return Text(red(line + f" · {inconclusive} inconclusive"), "bold")


def _verdict(report: Report, red: _Redact) -> Text:
    code = report.exit_code
    undecided = _undecided([f for f in report.findings if f.category is Category.INCONCLUSIVE])
    if code is ExitCode.OK:
        return Text(red(f"Verdict: NO PARITY GAPS FOUND (exit {int(code)})"), "bold green")
    if code is ExitCode.INCONCLUSIVE:
        line = f"Verdict: INCONCLUSIVE — no verdict for {undecided} (exit {int(code)})"
        return Text(red(line), "bold yellow")
    if code is ExitCode.FINDINGS:
        line = f"Verdict: PARITY GAPS FOUND (exit {int(code)})"
        if undecided:
            line += f"; also no verdict for {undecided}"
        return Text(red(line), "bold red")
    return Text(red(f"Verdict: exit {int(code)}"), "bold red")  # a report never yields BAD_INPUT today


def _undecided(findings: Iterable[Finding]) -> str:
    """``scenario/step`` of the inconclusive findings, distinct, for the verdict line."""
    places = list(dict.fromkeys(f.scenario + (f"/{f.step}" if f.step else "") for f in findings))
    shown = ", ".join(places[:_VERDICT_STEPS_SHOWN])
    if len(places) > _VERDICT_STEPS_SHOWN:
        shown += f" and {len(places) - _VERDICT_STEPS_SHOWN} more"
    return shown


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
