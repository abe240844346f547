"""Reports: a :class:`~parityprobe.model.Report` rendered for people (terminal) or machines (JSON).

Every renderer takes the report and the invocation's :class:`~parityprobe.redact.Redactor` and passes all
the text it emits through it; :class:`~parityprobe.secret.Secret` values render as ``***``.
"""

from __future__ import annotations

import enum

from parityprobe.model import Report
from parityprobe.redact import Redactor
from parityprobe.report.json_report import REPORT_SCHEMA, render_json
from parityprobe.report.terminal import render_terminal

__all__ = ["REPORT_SCHEMA", "Format", "render", "render_json", "render_terminal"]


class Format(enum.Enum):
    """The report formats; the values are what ``--format`` accepts."""

    TERMINAL = "terminal"
    JSON = "json"


def render(report: Report, fmt: Format, redactor: Redactor, *, color: bool = False, width: int = 120) -> str:
    """``report`` in format ``fmt``; ``color`` and ``width`` apply to the terminal format only."""
    if fmt is Format.JSON:
        return render_json(report, redactor)
    return render_terminal(report, redactor, color=color, width=width)
