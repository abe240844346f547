"""Reports: a :class:`~parityprobe.model.Report` made into a view once, rendered by one renderer per format.

:func:`~parityprobe.report.build.build_view` decides what a report says (:mod:`parityprobe.report.view`);
a :class:`~parityprobe.report.renderer.Renderer`, found by format name in the ``parityprobe.renderers``
entry-point group, lays it out (``terminal`` for people, ``json`` for machines, and any a plugin adds).
Every renderer passes all the text it emits through the invocation's
:class:`~parityprobe.redact.Redactor`; :class:`~parityprobe.secret.Secret` values render as ``***``.

The renderer modules (rich for the terminal) are imported only when their format is used; the names
re-exported from them here load on first access.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from parityprobe.model import Report
from parityprobe.redact import Redactor
from parityprobe.report.build import build_view
from parityprobe.report.divergences import Declaration
from parityprobe.report.renderer import RENDERER_GROUP, Renderer, RendererRegistry, RenderOptions
from parityprobe.report.view import ReportView, TrendPoint

if TYPE_CHECKING:
    from parityprobe.report.json_report import render_json
    from parityprobe.report.json_schema import REPORT_SCHEMA
    from parityprobe.report.terminal import render_terminal

__all__ = [
    "RENDERER_GROUP",
    "REPORT_SCHEMA",
    "Format",
    "RenderOptions",
    "Renderer",
    "RendererRegistry",
    "ReportView",
    "build_view",
    "render",
    "render_json",
    "render_terminal",
    "render_view",
]

_LAZY = {
    "REPORT_SCHEMA": "parityprobe.report.json_schema",
    "render_json": "parityprobe.report.json_report",
    "render_terminal": "parityprobe.report.terminal",
}


class Format(enum.Enum):
    """The built-in report formats; the values are what ``--format`` accepts. Plugins add formats by name."""

    TERMINAL = "terminal"
    JSON = "json"
    MARKDOWN = "markdown"
    JUNIT = "junit"
    HTML = "html"


def render(
    report: Report,
    fmt: Format | str,
    redactor: Redactor,
    *,
    color: bool = False,
    width: int = 120,
    registry: RendererRegistry | None = None,
    divergences: Sequence[Declaration] = (),
    trend: Sequence[TrendPoint] = (),
) -> str:
    """``report`` in format ``fmt`` (a :class:`Format` or a registered renderer's name); ``color`` and
    ``width`` apply to the formats laid out in columns; ``divergences`` are accepted as
    :mod:`parityprobe.report.divergences` says; ``trend`` is the store's history
    (:mod:`parityprobe.report.trend`), for reports made from a store. PluginError for a format no renderer
    provides."""
    view = build_view(report, divergences, trend=trend)
    return render_view(view, fmt, redactor, color=color, width=width, registry=registry)


def render_view(
    view: ReportView,
    fmt: Format | str,
    redactor: Redactor,
    *,
    color: bool = False,
    width: int = 120,
    registry: RendererRegistry | None = None,
) -> str:
    """A view already built, in format ``fmt``: one report written in several formats is built once."""
    name = fmt.value if isinstance(fmt, Format) else fmt
    renderer = (registry if registry is not None else RendererRegistry()).renderer(name)
    return renderer.render(view, redactor, RenderOptions(color=color, width=width))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
