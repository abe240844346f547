"""Where a report goes: standard output in ``--format``, or one file per ``-o``, each in its suffix's format.

``-o report.html -o junit.xml -o out.json -o pr.md`` writes four files from one run:

- a file's format is the one its suffix names (:data:`SUFFIX_FORMATS`: ``.html``/``.htm`` HTML, ``.xml``
  JUnit, ``.json`` JSON, ``.md``/``.markdown`` Markdown, ``.txt`` the terminal's text without colour);
  a suffix naming none takes ``--format``'s, and without ``--format`` is a usage error;
- ``--format X -o FILE`` (one file, the format given) writes X whatever the suffix, as it always has;
- standard output gets the report, in ``--format``, only when no ``-o`` is given.

Both are checked while the options are parsed (click callbacks), so a mistake is exit 2 before anything
runs. The report's view is built once and each format rendered once, all of them before any file is
written, so a renderer that fails leaves no half-written set of files.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from parityprobe.cli_support import ReportOptions
    from parityprobe.model import Report
    from parityprobe.redact import Redactor
    from parityprobe.report.divergences import Declaration
    from parityprobe.report.view import TrendPoint

# Built-in formats only: a plugin's format is written through --format.
SUFFIX_FORMATS: Mapping[str, str] = MappingProxyType(
    {
        ".html": "html",
        ".htm": "html",
        ".xml": "junit",
        ".json": "json",
        ".md": "markdown",
        ".markdown": "markdown",
        ".txt": "terminal",
    }
)
OUTPUT_HINT = "'-o' / '--output'"


@dataclass(frozen=True)
class Output:
    """One ``-o`` file and the format it is written in."""

    path: Path
    fmt: str


def outputs_for(paths: Sequence[Path], fmt: str, fmt_given: bool) -> tuple[Output, ...]:
    """Each ``-o`` path with its format (see the module docstring); ValueError, naming the file, for a suffix
    that names no format when ``--format`` was not given, and for a file given twice."""
    if fmt_given and len(paths) == 1:
        return (Output(paths[0], fmt),)
    seen: set[Path] = set()
    found = []
    for path in paths:
        if path in seen:
            raise ValueError(f"{path} is given twice")
        seen.add(path)
        named = SUFFIX_FORMATS.get(path.suffix.lower())
        if named is None and not fmt_given:
            suffix = f"suffix {path.suffix!r}" if path.suffix else "name, without a suffix,"
            raise ValueError(
                f"{path}: its {suffix} names no report format; give --format, or end the name in "
                f"{', '.join(SUFFIX_FORMATS)}"
            )
        found.append(Output(path, named or fmt))
    return tuple(found)


def _fmt_given(ctx: click.Context) -> bool:
    return ctx.get_parameter_source("fmt") not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def check_outputs(ctx: click.Context, fmt: str | None = None, paths: Sequence[Path] | None = None) -> None:
    """For the ``--format`` and ``-o`` callbacks: once both are parsed (the one calling passes its own value,
    not yet in ``ctx.params``), refuse what :func:`outputs_for` refuses as a usage error of ``-o``."""
    fmt = fmt if fmt is not None else ctx.params.get("fmt")
    paths = paths if paths is not None else ctx.params.get("outputs")
    if fmt is None or paths is None:
        return  # the other option's callback checks, after it is parsed
    try:
        outputs_for(paths, fmt, _fmt_given(ctx))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint=OUTPUT_HINT) from None


def output_paths(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    """The ``-o`` callback: checked against ``--format`` when that is parsed already."""
    check_outputs(ctx, paths=value)
    return value


def parsed_outputs(paths: Sequence[Path], fmt: str) -> tuple[Output, ...]:
    """For the commands' option wrappers: the ``-o`` files with their formats, already checked at parsing."""
    return outputs_for(paths, fmt, _fmt_given(click.get_current_context()))


def _color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def emit_report(
    report: Report,
    redactor: Redactor,
    options: ReportOptions,
    declared: tuple[Declaration, ...] = (),
    trend: Sequence[TrendPoint] = (),
) -> int:
    """Print the report, or write it to each ``-o`` file, and return its exit code; findings the
    ``declared`` divergences accept count for nothing; ``trend`` is the store's history, for ``report``."""
    from parityprobe.report import build_view, render_view
    from parityprobe.report.renderer import RendererRegistry

    view = build_view(report, declared, trend=trend)
    registry = RendererRegistry()
    width = max(100, shutil.get_terminal_size().columns)
    if not options.outputs:
        color = _color(options.no_color)
        click.echo(render_view(view, options.fmt, redactor, color=color, width=width, registry=registry))
    else:
        texts: dict[str, str] = {}
        for output in options.outputs:
            if output.fmt not in texts:
                texts[output.fmt] = render_view(view, output.fmt, redactor, width=width, registry=registry)
        for output in options.outputs:
            output.path.parent.mkdir(parents=True, exist_ok=True)
            output.path.write_text(texts[output.fmt] + "\n", encoding="utf-8")
            click.echo(f"report written to {output.path} ({output.fmt})", err=True)
    return int(view.verdict.exit_code if declared else report.exit_code)
