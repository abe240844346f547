"""The HTML report's charts as geometry: numbers and short labels that ``templates/report.html.j2`` draws as
inline SVG. No markup is made here; every label passes the renderer's ``esc`` (redacted, clipped).

Per step, latency is drawn one of two ways. When the latency judge's notes (:class:`StepRow.latency
<parityprobe.report.view.StepRow>`) carry more than one sample for an environment, each environment gets a
box plot: a whisker from the fastest to the slowest sample, a box over the middle half (first to third
quartile), a tick at the median and every sample as a dot, on an axis of its own with labelled ticks.
Otherwise (a step that ran once) each environment gets a bar, scaled to the scenario's slowest step, as
before. The judge's sentences go under the chart either way.

The trend over a store's history is a stacked column per day (causes by severity) with the total as a line,
both on labelled axes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from parityprobe.model import Severity
from parityprobe.report.view import ScenarioView, StepRow, TrendPoint

# Chart geometry, in SVG user units: label column, plotting width, value column, one row's height and gap.
CHART_LABEL = 150
CHART_BARS = 420
CHART_VALUE = 90
BAR_HEIGHT = 16
BAR_GAP = 6
# A box plot's row is taller than a bar: room for the whisker, the dots and the value label beside it.
BOX_HEIGHT = 22
BOX_GAP = 10
AXIS_HEIGHT = 22  # below the boxes: the axis line and its tick labels
BOX_VALUE = 210  # the value column of a box plot: median, range and count
# One colour per environment column, in run order; cycles past the fifth.
PALETTE = ("#3b6ea5", "#c0692b", "#3f8f5a", "#8a5aa8", "#a5474b")
# The trend's severities, drawn bottom (most severe) to top; colours as the page's severity badges.
SEVERITY_COLOURS = {
    Severity.CRITICAL: "#7f1010",
    Severity.HIGH: "#d0402b",
    Severity.MEDIUM: "#f0a830",
    Severity.LOW: "#7fa7d4",
    Severity.INFO: "#b9bec4",
}
TREND_WIDTH = 720
TREND_HEIGHT = 240
TREND_LEFT = 44  # room for the y axis' labels
TREND_BOTTOM = 28  # room for the x axis' labels
TREND_TOP = 10
TREND_LABELS = 8  # at most this many dates under the x axis
# What a reader is told when the judge had too little to go on: never read as "no difference".
JUDGE_LABELS = {
    "mismatch": "mismatch",
    "no_difference": "no difference",
    "insufficient_data": "insufficient data",
}

Escape = Callable[..., str]


@dataclass(frozen=True, slots=True)
class Bar:
    """One environment's latency on one step, placed on the chart."""

    environment: str
    label: str  # ``12.3 ms``
    y: int
    width: float  # scaled to the scenario's slowest step, at least 1 so a fast bar still shows
    colour: str


@dataclass(frozen=True, slots=True)
class Box:
    """One environment's latency samples on one step as a box plot; x positions in user units."""

    environment: str
    label: str  # ``median 12.3 ms · 10.1 to 40.2 ms · n=30``
    y: int  # the row's top
    colour: str
    low: float
    q1: float
    median: float
    q3: float
    high: float
    dots: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    """A labelled position on an axis."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class JudgeLine:
    """One of the latency judge's verdicts on a step, as a sentence under its chart."""

    outcome: str  # ``mismatch``, ``no_difference``, ``insufficient_data``: the CSS class
    label: str  # ``insufficient data``
    pair: str  # ``production against staging``
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One step's latency per environment: bars (one latency each) or box plots (samples), then the judge's
    sentences."""

    step: str
    title: str  # what a screen reader says: ``login: staging 2.0 ms, production 3.0 ms``
    width: int
    height: int
    label_width: int
    bars: tuple[Bar, ...] = ()
    boxes: tuple[Box, ...] = ()
    axis: tuple[Tick, ...] = ()  # under the boxes
    axis_y: int = 0
    verdicts: tuple[JudgeLine, ...] = ()

    @property
    def value_x(self) -> int:
        """Where a box plot's value label starts: past the plotting area."""
        return self.label_width + CHART_BARS + 8

    @property
    def plot_end(self) -> int:
        """The x of the plotting area's end (the axis' last tick)."""
        return self.label_width + CHART_BARS


@dataclass(frozen=True, slots=True)
class Segment:
    """The causes of one severity on one day of the trend: a slice of that day's column."""

    severity: str
    count: int
    y: float
    height: float
    colour: str


@dataclass(frozen=True, slots=True)
class Column:
    """One day of the trend."""

    x: float
    width: float
    date: str  # ``2026-11-30``
    runs: int
    causes: int
    segments: tuple[Segment, ...]
    top: float  # the y of the total, for the line


@dataclass(frozen=True, slots=True)
class TrendChart:
    """Causes per day by severity over the store's history, with the total as a line."""

    title: str
    width: int
    height: int
    left: int
    bottom: float  # the y of the x axis
    right: float
    columns: tuple[Column, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    line: str  # the total's polyline points, ``x,y x,y``
    legend: tuple[tuple[str, str], ...]  # (severity, colour)


def charts(scenario: ScenarioView, esc: Escape) -> tuple[Chart, ...]:
    """One chart per step where some environment measured a latency or the judge had samples."""
    measured = [c.latency_ms for row in scenario.rows for c in row.cells if c.latency_ms is not None]
    slowest = max(max(measured, default=0.0), 1e-9)
    colours = {env: PALETTE[i % len(PALETTE)] for i, env in enumerate(scenario.environments)}
    out = []
    for row in scenario.rows:
        samples = _samples(row, scenario.environments)
        verdicts = tuple(_verdict(note.environments, note.outcome, note.text, esc) for note in row.latency)
        if any(len(s) > 1 for s in samples.values()):
            out.append(_distribution(row.step, samples, colours, esc, verdicts))
            continue
        bars: list[Bar] = []
        for cell in row.cells:
            if cell.latency_ms is None or cell.latency is None:
                continue
            y = len(bars) * (BAR_HEIGHT + BAR_GAP)
            width = max(1.0, round(cell.latency_ms / slowest * CHART_BARS, 1))
            colour = colours.get(cell.environment, PALETTE[0])
            bars.append(Bar(esc(cell.environment, 40), cell.latency, y, width, colour))
        if bars:
            title = f"{row.step}: " + ", ".join(f"{b.environment} {b.label}" for b in bars)
            height = len(bars) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
            out.append(
                Chart(
                    esc(row.step),
                    esc(title, None),
                    CHART_LABEL + CHART_BARS + CHART_VALUE,
                    height,
                    CHART_LABEL,
                    bars=tuple(bars),
                    verdicts=verdicts,
                )
            )
    return tuple(out)


def _samples(row: StepRow, environments: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Each environment's samples from the judge's notes (the first note naming it), scenario order first."""
    found: dict[str, tuple[float, ...]] = {}
    for note in row.latency:
        for env, values in note.samples.items():
            kept = tuple(v for v in values if math.isfinite(v) and v >= 0)
            if kept and env not in found:
                found[env] = kept
    order = [e for e in environments if e in found] + [e for e in found if e not in environments]
    return {env: found[env] for env in order}


def _verdict(pair: tuple[str, str], outcome: str, text: str, esc: Escape) -> JudgeLine:
    reference, judged = pair
    label = JUDGE_LABELS.get(outcome, outcome)
    # The judge may open its sentence with the verdict already (``insufficient data: …``): said once.
    text = text[len(label) + 1 :].lstrip() if text.lower().startswith(f"{label}:") else text
    return JudgeLine(esc(outcome, 40), esc(label, 40), esc(f"{judged} against {reference}"), esc(text, 600))


def _distribution(
    step: str,
    samples: Mapping[str, tuple[float, ...]],
    colours: Mapping[str, str],
    esc: Escape,
    verdicts: tuple[JudgeLine, ...],
) -> Chart:
    top = nice_ceiling(max(max(values) for values in samples.values()))

    def x(value: float) -> float:
        return round(CHART_LABEL + value / top * CHART_BARS, 1)

    boxes = []
    for i, (env, values) in enumerate(samples.items()):
        ordered = sorted(values)
        low, high = ordered[0], ordered[-1]
        if len(ordered) > 1:
            q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            q1 = median = q3 = ordered[0]
        label = f"median {median:.1f} ms · {low:.1f} to {high:.1f} ms · n={len(ordered)}"
        boxes.append(
            Box(
                esc(env, 40),
                esc(label),
                i * (BOX_HEIGHT + BOX_GAP),
                colours.get(env, PALETTE[i % len(PALETTE)]),
                x(low),
                x(q1),
                x(median),
                x(q3),
                x(high),
                tuple(x(v) for v in values),
            )
        )
    axis_y = len(boxes) * (BOX_HEIGHT + BOX_GAP)
    axis = tuple(Tick(x(top * k / 4), _ms(top * k / 4)) for k in range(5))
    title = f"{step}: " + ", ".join(f"{b.environment} {b.label}" for b in boxes)
    return Chart(
        esc(step),
        esc(title, None),
        CHART_LABEL + CHART_BARS + BOX_VALUE,
        axis_y + AXIS_HEIGHT,
        CHART_LABEL,
        boxes=tuple(boxes),
        axis=axis,
        axis_y=axis_y,
        verdicts=verdicts,
    )


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (an axis' end)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value * (1 - 1e-9))


def _ms(value: float) -> str:
    return f"{value:g} ms" if value >= 1 or value == 0 else f"{value:.2g} ms"


def trend_chart(points: Sequence[TrendPoint]) -> TrendChart | None:
    """The trend as a chart; None when there is no point."""
    if not points:
        return None
    plot_w = TREND_WIDTH - TREND_LEFT - 10
    bottom = TREND_HEIGHT - TREND_BOTTOM
    plot_h = bottom - TREND_TOP
    top = max(nice_ceiling(max(p.causes for p in points)), 1.0) if any(p.causes for p in points) else 1.0
    slot = plot_w / len(points)
    width = max(1.0, round(min(slot * 0.7, 48.0), 1))
    columns = []
    for i, point in enumerate(points):
        x = round(TREND_LEFT + i * slot + (slot - width) / 2, 1)
        y = float(bottom)
        segments = []
        for severity in Severity:  # most severe first: at the bottom of the column
            n = point.by_severity.get(severity, 0)
            if n <= 0:
                continue
            h = n / top * plot_h
            y -= h
            segments.append(Segment(severity.value, n, round(y, 1), round(h, 1), SEVERITY_COLOURS[severity]))
        total_y = round(bottom - point.causes / top * plot_h, 1)
        columns.append(
            Column(x, width, point.at.date().isoformat(), point.runs, point.causes, tuple(segments), total_y)
        )
    every = max(1, math.ceil(len(columns) / TREND_LABELS))
    x_ticks = tuple(
        Tick(round(c.x + c.width / 2, 1), c.date[5:]) for i, c in enumerate(columns) if i % every == 0
    )
    step = max(1.0, nice_ceiling(top / 5))  # causes are whole: never a tick at 0.25
    y_ticks = tuple(
        Tick(round(bottom - k * step / top * plot_h, 1), f"{k * step:g}") for k in range(int(top // step) + 1)
    )
    line = " ".join(f"{round(c.x + c.width / 2, 1)},{c.top}" for c in columns)
    first, last = columns[0].date, columns[-1].date
    title = f"causes per day by severity, {first} to {last}" if first != last else f"causes on {first}"
    return TrendChart(
        title,
        TREND_WIDTH,
        TREND_HEIGHT,
        TREND_LEFT,
        float(bottom),
        float(TREND_LEFT + plot_w),
        tuple(columns),
        y_ticks,
        x_ticks,
        line,
        tuple((s.value, c) for s, c in SEVERITY_COLOURS.items()),
    )
