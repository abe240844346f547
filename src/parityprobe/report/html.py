"""The HTML report: one self-contained page that opens without network, for people to read and share.

Laid out as: the verdict and the counts (by severity, by category, causes, accepted divergences), the trend
over the store's history when the report was made from a store, the causes with their explanation, where
each was seen and what to do about it (framework references and a remediation hint), acceptances that
expired (counted again, flagged where the finding is shown), the accepted divergences with owner, expiry and
reason, the declarations that matched nothing (to be removed), then per scenario the matrix of steps by
environments (decision, grant, latency and SIEM receipt when a step expects one), its findings, its failed
cleanups, and its latency as one inline SVG chart per step (box plots of the samples when the latency judge
had several, else a bar per environment) with the judge's verdict under it. What it shows is the view's
(:mod:`parityprobe.report.view`); the charts' geometry is :mod:`parityprobe.report.html_charts`'.

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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from parityprobe.redact import Redactor
from parityprobe.report.html_charts import PALETTE, charts, trend_chart
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import DETAIL_LIMIT, ReportView, clip, plural

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
# Explanations and messages are what a reader came for: kept longer than the matrix's cells.
EXPLANATION_LIMIT = 1_000
# C0/C1 controls (tab and line breaks kept) and the bidirectional overrides that reorder what is read.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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
            trend=trend_chart(view.trend),
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


def _finalize(redactor: Redactor) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        # Numbers and markup the template made itself pass as they are; every string is redacted again.
        return redactor.redact(value) if type(value) is str else value

    return finalize
