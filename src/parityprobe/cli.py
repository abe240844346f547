"""The command line: ``validate``, ``run``, ``compare``, ``report``, ``daemon``, ``schema``, ``probes``,
``lab up|down|status`` and ``demo``.

Exit codes (the CI gate reads them): 0 no findings, 1 findings, 2 bad input or usage, 3 only inconclusive
results, 4 parityprobe itself failed (the lab would not start, an internal error). Heavy modules (SDKs,
pydantic models, rich) are imported inside the commands so that ``--help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from parityprobe import __version__
from parityprobe.cli_daemon import daemon
from parityprobe.cli_lab import demo, lab
from parityprobe.cli_support import (
    ENVIRONMENTS_OPTION,
    STORE_OPTION,
    ReportOptions,
    RunOptions,
    emit_report,
    execute_with_progress,
    handle_errors,
    load_declared,
    report_options,
    run_options,
    setup_logging,
    telemetry_from_environ,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="parityprobe")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging (secrets stay masked).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Prove that staging enforces the same workload-identity controls as production.

    Scenarios perform real actions (token fetch, secret reads, forbidden calls, break-glass attempts) in
    every environment; parityprobe compares the decisions, the access granted and the latencies.
    """
    ctx.obj = {"verbose": verbose}


@main.command()
@ENVIRONMENTS_OPTION
@click.option("--env", "only", multiple=True, help="Only these environments (repeatable).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx: click.Context, env_file: Path, only: tuple[str, ...], paths: tuple[Path, ...]) -> None:
    """Check environments and scenarios together, touching nothing: probes resolve, parameters bind,
    references point to earlier steps, effects are allowed in every environment."""
    with handle_errors(ctx.obj["verbose"]):
        from parityprobe.pipeline import describe, plan
        from parityprobe.redact import Redactor
        from parityprobe.registry import ProbeRegistry

        the_plan = plan(env_file, paths, Redactor(), ProbeRegistry(), only)
        steps = sum(len(s.steps) + len(s.cleanup) for s in the_plan.scenarios)
        click.echo(describe(the_plan))
        click.echo(
            f"valid: {len(the_plan.scenarios)} scenario(s), {steps} step(s), "
            f"{len(the_plan.environments)} environment(s)"
        )


@main.command()
@ENVIRONMENTS_OPTION
@click.option(
    "--env", "only", multiple=True, help="Only these environments (repeatable; at least two compare)."
)
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; perform no action.")
@run_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def run(
    ctx: click.Context,
    env_file: Path,
    only: tuple[str, ...],
    dry_run: bool,
    options: RunOptions,
    paths: tuple[Path, ...],
) -> None:
    """Run scenarios (files or directories) in every environment and report the differences."""
    with handle_errors(ctx.obj["verbose"]):
        from parityprobe.pipeline import describe, plan
        from parityprobe.redact import Redactor
        from parityprobe.registry import ProbeRegistry

        redactor, registry = Redactor(), ProbeRegistry()
        setup_logging(redactor, ctx.obj["verbose"])
        the_plan = plan(env_file, paths, redactor, registry, only)
        declared = load_declared(options)
        if dry_run:
            click.echo(describe(the_plan, options.allow_break_glass))
            click.echo("dry run: nothing was executed")
            return
        report = execute_with_progress(the_plan, redactor, registry, options)
        code = emit_report(report, redactor, options, declared)
    sys.exit(code)


def _stored_runs(default_since: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options ``compare`` and ``report`` share: the store, the window and which runs of it."""

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(
            [
                STORE_OPTION,
                click.option(
                    "--since",
                    default=default_since,
                    show_default=True,
                    metavar="DURATION",
                    help="Runs started this long ago or later (90m, 24h, 7d).",
                ),
                click.option("--scenario", help="Only this scenario."),
                click.option(
                    "--env",
                    "only",
                    multiple=True,
                    help="These environments, in this order (repeatable; default: all).",
                ),
            ]
        ):
            func = option(func)
        return func

    return decorate


@main.command()
@_stored_runs("24h")
@report_options
@click.pass_context
def compare(
    ctx: click.Context,
    store: str | None,
    since: str,
    scenario: str | None,
    only: tuple[str, ...],
    options: ReportOptions,
) -> None:
    """Compare runs stored by daemons or runs in different environments, after the fact: for each scenario
    (and scenario version), each environment's run nearest in time to the first environment's latest, with
    the same findings, formats and exit codes as run."""
    with handle_errors(ctx.obj["verbose"]):
        code = _from_store(store, since, scenario, only, options, with_trend=False)
    sys.exit(code)


@main.command()
@_stored_runs("7d")
@report_options
@click.pass_context
def report(
    ctx: click.Context,
    store: str | None,
    since: str,
    scenario: str | None,
    only: tuple[str, ...],
    options: ReportOptions,
) -> None:
    """The report of a store, for reading: what `compare --store` finds now, and the trend over the window
    (what comparing the stored runs found at the end of each day; of each hour for a window under two days).
    Usually `--format html -o report.html`; the exit codes are compare's."""
    with handle_errors(ctx.obj["verbose"]):
        code = _from_store(store, since, scenario, only, options, with_trend=True)
    sys.exit(code)


def _from_store(
    store: str | None,
    since: str,
    scenario: str | None,
    only: tuple[str, ...],
    options: ReportOptions,
    *,
    with_trend: bool,
) -> int:
    """Compare the runs stored in the window and report them (with the trend over it, for ``report``); the
    exit code, 3 when the window holds no run."""
    from parityprobe.pipeline import compare_stored
    from parityprobe.redact import Redactor

    url, window = _store_window(store, since)
    redactor = Redactor()
    declared = load_declared(options)
    environments = list(only) or None
    with telemetry_from_environ(redactor) as traced:
        made = compare_stored(url, window, scenario, environments)
        if traced is not None:
            traced.record_findings(made)
    if not made.comparisons:
        click.echo(f"no stored runs in the last {since}" + (f" of {scenario}" if scenario else ""), err=True)
        return 3
    if not with_trend:
        return emit_report(made, redactor, options, declared)
    from parityprobe.report.trend import stored_trend

    points = stored_trend(url, window, scenario, environments, declared)
    return emit_report(made, redactor, options, declared, points)


def _store_window(store: str | None, since: str) -> tuple[str, timedelta]:
    """The store and ``--since`` as a window back from now; InputError without ``--store``, or for a duration
    that is not one, is zero, or reaches back before the calendar does."""
    from parityprobe.config.durations import parse_duration
    from parityprobe.errors import InputError, Problem

    if store is None:
        message = "give the result store to read (or PARITYPROBE_STORE_URL)"
        raise InputError([Problem(None, None, "--store", message)])
    too_long = f"{since!r} reaches back before the calendar does"
    try:
        window = timedelta(seconds=parse_duration(since))
    except (ValueError, OverflowError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else too_long
        raise InputError([Problem(None, None, "--since", message)]) from None
    if window <= timedelta(0):
        raise InputError([Problem(None, None, "--since", f"{since!r}: the window must be longer than 0s")])
    if window >= datetime.now(UTC) - datetime.min.replace(tzinfo=UTC):
        raise InputError([Problem(None, None, "--since", too_long)])
    return store, window


@main.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema here instead of standard output.",
)
def schema(output: Path | None) -> None:
    """The JSON Schema of scenario files, for editors."""
    with handle_errors():
        from parityprobe.config.schema import scenario_schema_json

        text = scenario_schema_json()
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")


@main.command()
def probes() -> None:
    """The registered probes, their parameters and outputs."""
    with handle_errors():
        from parityprobe.registry import ProbeRegistry

        registry = ProbeRegistry()
        width = max((len(name) for name in registry.names()), default=0)
        for name in registry.names():
            probe = registry.probe_class(name)
            params = ", ".join(
                f"{field}{'' if info.is_required() else '?'}"
                for field, info in probe.Params.model_fields.items()
            )
            outputs = ", ".join(sorted(probe.outputs)) or "-"
            effect = probe.effect.value
            click.echo(f"{name:{width}} effect={effect:10} with: {params or '-'}; outputs: {outputs}")


main.add_command(daemon)
main.add_command(lab)
main.add_command(demo)
