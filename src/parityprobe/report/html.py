"""The HTML report: one self-contained page that opens without network, for people to read and share.

Laid out as: the verdict and the counts (by severity, by category, causes), the causes with their explanation
and where each was seen, then per scenario the matrix of steps by environments (decision, grant, latency and
SIEM receipt when a step expects one), its findings, its failed cleanups, and its latency as one inline SVG
bar chart per step, a bar per environment. What it shows is the view's (:mod:`parityprobe.report.view`).

The markup is the template's (``templates/report.html.j2``), rendered by Jinja2 with **autoescape on**: no
markup is built from strings here. This module hands the template plain text and numbers, every string
redacted and then clipped (:func:`text`), so what a target said reaches the page as characters, never as
tags or attributes; the environment's ``finalize`` redacts each value once more as it is printed. The page
carries a Content-Security-Policy that forbids scripts and any fetch, so even a flaw in escaping could not
run code or call out. CSS is inline; there is no JavaScript.

Jinja2 is imported when a page is rendered, not when the renderer loads: ``--help`` and the other formats
stay fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from parityprobe.redact import Redactor
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import DETAIL_LIMIT, ReportView, ScenarioView, clip, plural

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
# Explanations and messages are what a reader came for: kept longer than the matrix's cells.
EXPLANATION_LIMIT = 1_000
# Bar chart geometry, in SVG user units: label column, bar area, one bar's height and the gap between bars.
CHART_LABEL = 150
CHART_BARS = 420
CHART_VALUE = 90
BAR_HEIGHT = 16
BAR_GAP = 6
# One colour per environment column, in run order; cycles past the fifth.
PALETTE = ("#3b6ea5", "#c0692b", "#3f8f5a", "#8a5aa8", "#a5474b")
# C0/C1 controls (tab and line breaks kept) and the bidirectional overrides that reorder what is read.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Bar:
    """One environment's latency on one step, placed on the chart."""

    environment: str
    label: str  # ``12.3 ms``
    y: int
    width: float  # scaled to the scenario's slowest step, at least 1 so a fast bar still shows
    colour: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One step's latency per environment as a horizontal bar chart."""

    step: str
    title: str  # what a screen reader says: ``login: staging 2.0 ms, production 3.0 ms``
    width: int
    height: int
    label_width: int
    bars: tuple[Bar, ...]


class HtmlRenderer:
    """The ``html`` format: one self-contained page (colour and width do not apply)."""

    name: ClassVar[str] = "html"

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The page, every value redacted and escaped; no final newline."""

        def esc(value: object, limit: int | None = DETAIL_LIMIT) -> str:
            return text(value, redactor, limit)

        template = environment(redactor).get_template(TEMPLATE)
        page = template.render(
            view=view,
            t=esc,
            plural=plural,
            charts={s.id: charts(s, esc) for s in view.scenarios},
            colours={env: PALETTE[i % len(PALETTE)] for i, env in enumerate(view.summary.environments)},
            severities=[(s.value, n) for s, n in view.summary.by_severity.items()],
            categories=[(c.value, n) for c, n in view.summary.by_category.items() if n],
            long=EXPLANATION_LIMIT,
        )
        # Redacted once more whole, as every renderer does; values were redacted before they were escaped.
        return redactor.redact(page.strip())


def environment(redactor: Redactor) -> Environment:
    """Jinja2 set up for the report: autoescape on, the package's templates, every printed value redacted."""
    import jinja2  # here, not at module level: loading the renderer must not cost Jinja2's import

    # One per page: the renderer instance is shared, and finalize holds this invocation's redactor.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the render, not a blank cell
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize(redactor),
    )


def text(value: object, redactor: Redactor, limit: int | None = DETAIL_LIMIT) -> str:
    """``value`` as page text: redacted, clipped to ``limit`` characters, invisible controls dropped.
    Escaping is the template's (autoescape); this never returns markup."""
    out = redactor.redact(str(value))
    if limit is not None:
        out = clip(out, limit)
    return _INVISIBLE.sub("", out)


def charts(scenario: ScenarioView, esc: Callable[..., str]) -> tuple[Chart, ...]:
    """One chart per step where some environment measured a latency, scaled to the scenario's slowest."""
    measured = [c.latency_ms for row in scenario.rows for c in row.cells if c.latency_ms is not None]
    if not measured:
        return ()
    slowest = max(max(measured), 1e-9)
    colours = {env: PALETTE[i % len(PALETTE)] for i, env in enumerate(scenario.environments)}
    out = []
    for row in scenario.rows:
        bars: list[Bar] = []
        for cell in row.cells:
            if cell.latency_ms is None or cell.latency is None:
                continue
            y = len(bars) * (BAR_HEIGHT + BAR_GAP)
            width = max(1.0, round(cell.latency_ms / slowest * CHART_BARS, 1))
            bars.append(Bar(esc(cell.environment, 40), cell.latency, y, width, colours[cell.environment]))
        if bars:
            title = f"{row.step}: " + ", ".join(f"{b.environment} {b.label}" for b in bars)
            out.append(_chart(esc(row.step), esc(title, None), bars))
    return tuple(out)


def _chart(step: str, title: str, bars: Sequence[Bar]) -> Chart:
    height = len(bars) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
    return Chart(step, title, CHART_LABEL + CHART_BARS + CHART_VALUE, height, CHART_LABEL, tuple(bars))


def _finalize(redactor: Redactor) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        # Numbers and markup the template made itself pass as they are; every string is redacted again.
        return redactor.redact(value) if type(value) is str else value

    return finalize
