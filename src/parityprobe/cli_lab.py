"""Lab commands: ``lab up | down | status`` and ``demo`` (lab up, run the built-in scenarios, lab down)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from parityprobe.cli_support import (
    DEFAULT_LAB_DIR,
    RunOptions,
    emit_report,
    execute_with_progress,
    handle_errors,
    load_declared,
    run_options,
    setup_logging,
)

if TYPE_CHECKING:
    from parityprobe.lab.lab import LabStatus

_DIR_OPTION = click.option(
    "--dir",
    "lab_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_LAB_DIR,
    show_default=True,
    help="Where the lab keeps its state, credentials and environments file.",
)


class _ProfileType(click.ParamType[Path]):
    """A shipped profile's name (``default``, ``vault-gaps``, ``aws-gaps``, ``net-gaps``) or the path of a
    profile file; an unknown name is a usage error (exit 2) that lists the shipped profiles."""

    name = "NAME|PATH"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        from parityprobe.errors import InputError
        from parityprobe.lab.profile import profile_path

        try:
            return profile_path(str(value))
        except InputError as exc:
            self.fail("; ".join(p.message for p in exc.problems), param, ctx)


_PROFILE_OPTION = click.option(
    "--profile",
    type=_ProfileType(),
    help="The lab profile: a shipped one by name (default, vault-gaps, aws-gaps, net-gaps) or a profile file "
    "(YAML) describing each environment's contents; 'default' when not given.",
)


@click.group()
def lab() -> None:
    """A local two-environment lab on real servers (OpenBao, moto), with planted parity gaps."""


@lab.command("up")
@_DIR_OPTION
@_PROFILE_OPTION
def lab_up(lab_dir: Path, profile: Path | None) -> None:
    """Start and seed the lab; print the environments file to use with `parityprobe run`."""
    with handle_errors():
        from parityprobe.lab.lab import LabStatus, up

        state = up(lab_dir, profile)
        _show(LabStatus.of(state))
        click.echo(f"environments file: {state.environments_file}")
        scenarios = " ".join(str(p) for p in profile_scenarios(state.profile))
        click.echo(f"try: parityprobe run --environments {state.environments_file} {scenarios}")


@lab.command("down")
@_DIR_OPTION
def lab_down(lab_dir: Path) -> None:
    """Stop every server of the lab and forget its state."""
    with handle_errors():
        from parityprobe.lab.lab import down

        stopped = down(lab_dir)
        click.echo(f"stopped {len(stopped)} server(s)" if stopped else "no lab was running")


@lab.command("status")
@_DIR_OPTION
def lab_status(lab_dir: Path) -> None:
    """Which lab servers are running, and where (exit 1 when the lab is not fully up)."""
    with handle_errors():
        from parityprobe.lab.lab import status

        current = status(lab_dir)
        if current is None:
            click.echo("no lab is running")
            sys.exit(1)
        _show(current)
        if not current.running:
            sys.exit(1)


def _show(current: LabStatus) -> None:
    for server in current.servers:
        state = "up" if server.alive else "DOWN"
        click.echo(f"{server.environment:12} {server.kind:8} {state:5} {server.url}  (pid {server.pid})")


def builtin_scenarios() -> Path:
    """The built-in scenario library (installed with the package)."""
    from importlib.resources import files

    return Path(str(files("parityprobe.scenarios")))


def profile_scenarios(profile: Path) -> list[Path]:
    """The built-in scenario files a lab profile is made for (its ``scenarios`` patterns), sorted.

    InputError when a pattern matches no built-in scenario."""
    from parityprobe.errors import InputError, Problem
    from parityprobe.lab.profile import load_profile

    library = builtin_scenarios()
    found: dict[str, Path] = {}
    for pattern in load_profile(profile).scenarios:
        matches = sorted(library.glob(f"{pattern}.yaml"))
        if not matches:
            message = f"no built-in scenario matches {pattern!r}"
            raise InputError([Problem(profile, None, "scenarios", message)])
        found.update((m.name, m) for m in matches)
    return [found[name] for name in sorted(found)]


@click.command()
@_DIR_OPTION
@_PROFILE_OPTION
@run_options
@click.pass_context
def demo(
    ctx: click.Context,
    lab_dir: Path,
    profile: Path | None,
    options: RunOptions,
) -> None:
    """Start the lab, run the built-in scenarios its profile is made for, report, stop the lab."""
    verbose = ctx.obj["verbose"]
    with handle_errors(verbose):
        from parityprobe.lab.lab import running_lab
        from parityprobe.pipeline import plan
        from parityprobe.redact import Redactor
        from parityprobe.registry import ProbeRegistry

        redactor, registry = Redactor(), ProbeRegistry()
        setup_logging(redactor, verbose)
        declared = load_declared(options)  # before the lab starts: a mistake in it costs no run
        click.echo("starting the lab (OpenBao and moto for staging and production)…", err=True)
        with running_lab(lab_dir, profile) as state:
            scenarios = profile_scenarios(state.profile)
            the_plan = plan(state.environments_file, scenarios, redactor, registry)
            click.echo(
                f"running {len(the_plan.scenarios)} scenarios in "
                f"{', '.join(e.name for e in the_plan.environments)}…",
                err=True,
            )
            report = execute_with_progress(the_plan, redactor, registry, options)
        click.echo("lab stopped", err=True)
        code = emit_report(report, redactor, options, declared)
    sys.exit(code)
