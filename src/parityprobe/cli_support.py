"""What the commands share: exit codes, error handling, logging set-up and report output."""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from parityprobe.cli_output import Output, check_outputs, output_paths, parsed_outputs
from parityprobe.cli_output import emit_report as emit_report  # where the commands have always found it
from parityprobe.lab import DEFAULT_DIRECTORY

if TYPE_CHECKING:
    from parityprobe.config.plan import Plan
    from parityprobe.listeners import RunListener
    from parityprobe.model import Report
    from parityprobe.redact import Redactor
    from parityprobe.registry import ProbeRegistry
    from parityprobe.report.divergences import Declaration
    from parityprobe.telemetry.listener import TelemetryListener

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 4
# What a command-line tool killed by SIGPIPE reports (128 + 13): quiet, and never a false all-clear.
EXIT_BROKEN_PIPE = 141
DEFAULT_LAB_DIR = DEFAULT_DIRECTORY  # the lab's own default, so both agree (parityprobe.lab imports nothing)
# The built-in formats, kept literal for a fast --help.
FORMATS = ("terminal", "json", "markdown", "junit", "html")


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
    except BrokenPipeError:
        # The reader went away (`parityprobe probes | head -1`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as exc:  # the last resort: say what broke, without a traceback unless asked
        if verbose:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", err=True)
        sys.exit(EXIT_INTERNAL)


def setup_logging(redactor: Redactor, verbose: bool, level: str = "WARNING") -> None:
    """Log records to standard error, each through the redactor; DEBUG with ``verbose``, else ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redactor.logging_filter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else level)
    # SDK request logs would print URLs and bodies; the redactor masks secrets, but they add nothing here.
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "werkzeug", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load_declared(options: ReportOptions) -> tuple[Declaration, ...]:
    """The ``--divergences`` file's declarations (none without one); InputError, located, when invalid.
    Commands load it before running anything, so a mistake in it costs no run."""
    if options.divergences is None:
        return ()
    from parityprobe.config.divergences import load_divergences

    return load_divergences(options.divergences)


@dataclass(frozen=True)
class ReportOptions:
    """How a report is written: standard output's format, the files (each in its format), colour."""

    fmt: str
    outputs: tuple[Output, ...]  # -o: none prints the report in ``fmt`` (see parityprobe.cli_output)
    no_color: bool
    divergences: Path | None  # --divergences: known differences, accepted until a date


@dataclass(frozen=True)
class RunOptions(ReportOptions):
    """How ``run`` and ``demo`` execute and report."""

    step_timeout: float
    concurrency: int
    quiet: bool
    allow_break_glass: bool = False
    store: str | None = None
    spool: Path = Path(".parityprobe/spool")


ENVIRONMENTS_OPTION = click.option(
    "--environments",
    "-e",
    "env_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The environments file.",
)
ALLOW_BREAK_GLASS_OPTION = click.option(
    "--allow-break-glass",
    is_flag=True,
    help="Run break-glass drills (privileged steps) where the environment's safety allows them.",
)
DIVERGENCES_OPTION = click.option(
    "--divergences",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Known differences to accept (divergences.yaml): matching findings are shown apart and not counted.",
)
STORE_OPTION = click.option(
    "--store",
    metavar="URL",
    help="A result store: sqlite:///path/results.db or postgresql://user@host/db (a password by "
    "PARITYPROBE_STORE_URL rather than on the command line).",
    envvar="PARITYPROBE_STORE_URL",
)


class _Seconds(click.ParamType[float]):
    """A finite, positive number of seconds: ``nan``, ``inf``, zero and negatives are refused."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < MIN_STEP_TIMEOUT:
            self.fail(
                f"{value!r} must be a finite number of seconds, at least {MIN_STEP_TIMEOUT}", param, ctx
            )
        return seconds


MIN_STEP_TIMEOUT = 0.1
DEFAULT_CONCURRENCY = 4  # the runner's own default, kept literal for a fast --help


def _known_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse an unknown format before anything runs (a plugin's renderer counts as known)."""
    from parityprobe.report.renderer import RendererRegistry

    registry = RendererRegistry()
    if value not in registry:
        raise click.BadParameter(f"{value!r} is not a report format (known: {', '.join(registry.names())})")
    check_outputs(ctx, fmt=value)
    return value


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``run`` and ``demo`` share, handed to the command as one ``options`` argument."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fmt = kwargs.pop("fmt")
        kwargs["options"] = RunOptions(
            fmt=fmt,
            outputs=parsed_outputs(kwargs.pop("outputs"), fmt),
            no_color=kwargs.pop("no_color"),
            divergences=kwargs.pop("divergences"),
            step_timeout=kwargs.pop("step_timeout"),
            concurrency=kwargs.pop("concurrency"),
            quiet=kwargs.pop("quiet"),
            allow_break_glass=kwargs.pop("allow_break_glass"),
            store=kwargs.pop("store"),
            spool=kwargs.pop("spool"),
        )
        return func(*args, **kwargs)

    return _decorated(wrapper, [*_REPORT_OPTIONS, *_RUN_OPTIONS])


def report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that writes a report, handed to it as one ``options`` argument."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fmt = kwargs.pop("fmt")
        kwargs["options"] = ReportOptions(
            fmt=fmt,
            outputs=parsed_outputs(kwargs.pop("outputs"), fmt),
            no_color=kwargs.pop("no_color"),
            divergences=kwargs.pop("divergences"),
        )
        return func(*args, **kwargs)

    return _decorated(wrapper, _REPORT_OPTIONS)


def _decorated(func: Callable[..., Any], options: list[Callable[[F], F]]) -> Callable[..., Any]:
    decorated: Callable[..., Any] = func
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


_REPORT_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--format",
        "fmt",
        default="terminal",
        show_default=True,
        callback=_known_format,
        help=f"Report format: {', '.join(FORMATS)}, or one a plugin registers; of standard output, and of "
        "an -o file whose suffix names no format.",
    ),
    click.option(
        "--output",
        "-o",
        "outputs",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        callback=output_paths,
        help="Write the report to this file, in the format its suffix names: .html, .xml (JUnit), .json, "
        ".md, .txt; repeat for several (-o report.html -o junit.xml). Other suffixes take --format.",
    ),
    click.option("--no-color", is_flag=True, help="Plain text even on a terminal."),
    DIVERGENCES_OPTION,
]
_RUN_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--step-timeout",
        type=_Seconds(),
        default=30.0,
        show_default=True,
        help="Seconds before a step without its own timeout gives up (an inconclusive result).",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(min=1, max=64),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Scenarios run at once in each environment (steps of one scenario always run in order).",
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress display on standard error."),
    ALLOW_BREAK_GLASS_OPTION,
    STORE_OPTION,
    click.option(
        "--spool",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(".parityprobe/spool"),
        show_default=True,
        help="Where runs wait while the store cannot be written; replayed, in order, at the next write.",
    ),
]


@contextmanager
def telemetry_from_environ(redactor: Redactor) -> Iterator[TelemetryListener | None]:
    """For ``run`` and ``compare``: a telemetry listener exporting as the standard ``OTEL_*`` variables say,
    flushed on leaving; None (and nothing imported) when no such variable is set."""
    if not any(name.startswith("OTEL_") for name in os.environ):
        yield None
        return
    from parityprobe.telemetry.listener import TelemetryListener
    from parityprobe.telemetry.providers import build_telemetry

    telemetry = build_telemetry(None, os.environ, redactor)
    listener = TelemetryListener(telemetry, redactor)
    try:
        yield listener
    finally:
        listener.close()
        telemetry.shutdown()


def execute_with_progress(
    the_plan: Plan, redactor: Redactor, registry: ProbeRegistry, options: RunOptions
) -> Report:
    """Run the plan, with a progress display when standard error is a terminal and not ``--quiet``; traced
    and counted when the ``OTEL_*`` variables ask for it."""
    with telemetry_from_environ(redactor) as traced:
        report = _execute(the_plan, redactor, registry, options, () if traced is None else (traced,))
        if traced is not None:
            traced.record_findings(report)
    return report


def _execute(
    the_plan: Plan,
    redactor: Redactor,
    registry: ProbeRegistry,
    options: RunOptions,
    traced: tuple[RunListener, ...],
) -> Report:
    from parityprobe import progress
    from parityprobe.pipeline import execute, store_history
    from parityprobe.runner import utc_now

    stored: tuple[RunListener, ...] = ()
    spooled = None
    if options.store is not None:
        from parityprobe.store import ResultStore, SpooledStore, StoreListener

        spooled = SpooledStore(ResultStore(options.store), options.spool)
        stored = (StoreListener(spooled),)

    def go(listeners: tuple[RunListener, ...]) -> Report:
        return execute(
            the_plan,
            redactor,
            registry,
            options.step_timeout,
            concurrency=options.concurrency,
            listeners=(*listeners, *traced, *stored),
            allow_break_glass=options.allow_break_glass,
            history=None if spooled is None else store_history(spooled.store, utc_now()),
        )

    try:
        if not progress.wanted(options.quiet):
            return go(())
        with progress.ProgressDisplay() as display:
            return go((display,))
    finally:
        if spooled is not None:
            waiting = spooled.pending()
            if waiting:
                click.echo(
                    f"the store could not be written: {waiting} run(s) wait in {options.spool} and are "
                    "replayed at the next write",
                    err=True,
                )
