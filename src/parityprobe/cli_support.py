"""What the commands share: exit codes, error handling, logging set-up and report output."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from parityprobe.lab import DEFAULT_DIRECTORY

if TYPE_CHECKING:
    from parityprobe.model import Report
    from parityprobe.redact import Redactor

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 4
DEFAULT_LAB_DIR = DEFAULT_DIRECTORY  # the lab's own default, so both agree (parityprobe.lab imports nothing)
FORMATS = ("terminal", "json")  # the values of parityprobe.report.Format, kept literal for a fast --help


@contextmanager
def handle_errors(verbose: bool = False) -> Iterator[None]:
    """Turn the harness's own errors into a clear message and an exit code, never a traceback."""
    from parityprobe.errors import InputError, ParityProbeError

    try:
        yield
    except InputError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except ParityProbeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last resort: say what broke, without a traceback unless asked
        if verbose:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", err=True)
        sys.exit(EXIT_INTERNAL)


def setup_logging(redactor: Redactor, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redactor.logging_filter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # SDK request logs would print URLs and bodies; the redactor masks secrets, but they add nothing here.
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def emit_report(report: Report, fmt: str, redactor: Redactor, output: Path | None, no_color: bool) -> int:
    from parityprobe.report import Format, render

    color = _color(no_color) and output is None
    width = max(100, shutil.get_terminal_size().columns)
    text = render(report, Format(fmt), redactor, color=color, width=width)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"report written to {output}", err=True)
    else:
        click.echo(text)
    return int(report.exit_code)


def run_options(func: F) -> F:
    options: list[Callable[[F], F]] = [
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True),
        click.option(
            "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here."
        ),
        click.option("--no-color", is_flag=True, help="Plain text even on a terminal."),
        click.option(
            "--step-timeout",
            type=click.FloatRange(min=0.1),
            default=30.0,
            show_default=True,
            help="Seconds before a step without its own timeout gives up (an inconclusive result).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
