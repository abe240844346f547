"""``parityprobe daemon``: one environment's scenarios on their schedules, results to the store.

Exit codes: 0 after SIGTERM/SIGINT (or ``--once``) once the runs in progress are cleaned up and stored; 2 for
bad input at start (the environments file, a scenario, an option); 4 when parityprobe itself cannot start
(the health port is taken, the state directory cannot be written).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from parityprobe.cli_support import (
    ALLOW_BREAK_GLASS_OPTION,
    ENVIRONMENTS_OPTION,
    STORE_OPTION,
    handle_errors,
    setup_logging,
)

DEFAULT_STATE_DIR = Path("/var/lib/parityprobe")
FALLBACK_STATE_DIR = Path(".parityprobe/daemon")
DEFAULT_LISTEN = "127.0.0.1:9464"


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from parityprobe.config.durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds < 1:
        raise click.BadParameter("must be at least 1s")
    return seconds


def _listen(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, int] | None:
    if value in ("", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (or 'off')")
    return host.strip("[]"), int(port)


def default_state_dir() -> Path:
    """``/var/lib/parityprobe`` where it can be written (a package install, a container), else a folder
    of the working directory."""
    if os.access(DEFAULT_STATE_DIR, os.W_OK) or (
        not DEFAULT_STATE_DIR.exists() and os.access(DEFAULT_STATE_DIR.parent, os.W_OK)
    ):
        return DEFAULT_STATE_DIR
    return FALLBACK_STATE_DIR


@click.command()
@ENVIRONMENTS_OPTION
@click.option("--env", "environment", required=True, help="The environment this daemon runs in.")
@STORE_OPTION
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"The spool and the undo journal (default {DEFAULT_STATE_DIR} when writable, else "
    f"{FALLBACK_STATE_DIR}); without --store, also the results (results.db).",
)
@click.option(
    "--every",
    default="1h",
    show_default=True,
    callback=_duration,
    help="How often scenarios without a schedule of their own run.",
)
@click.option(
    "--misfire-grace",
    default="5m",
    show_default=True,
    callback=_duration,
    help="A run due longer ago than this (the daemon was busy or down) is recorded as missed.",
)
@click.option(
    "--kill-switch",
    type=click.Path(dir_okay=False, path_type=Path),
    help="While this file exists, nothing is probed (also: PARITYPROBE_PAUSED=1 at start).",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    callback=_listen,
    help="HOST:PORT for /healthz, /readyz and /metrics ('off': none).",
)
@click.option("--retention", callback=_duration, help="Delete stored runs older than this (30d), hourly.")
@click.option("--once", is_flag=True, help="Run every scenario once, store the runs and exit (a CronJob).")
@ALLOW_BREAK_GLASS_OPTION
@click.option(
    "--step-timeout",
    type=click.FloatRange(min=0.1, max=3600),
    default=30.0,
    show_default=True,
    help="Seconds before a step without its own timeout gives up.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=64),
    default=4,
    show_default=True,
    help="Scenarios run at once (with --once).",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def daemon(ctx: click.Context, /, **options: Any) -> None:
    """Run one environment's scenarios on their schedules and keep every run in the result store.

    SIGTERM finishes the step in progress, runs the cleanups, stores the runs and exits 0; SIGHUP reloads
    the environments file and the scenarios (a broken file is rejected and the old schedule kept)."""
    with handle_errors(ctx.obj["verbose"]):
        from parityprobe.daemon.run import start_daemon
        from parityprobe.redact import Redactor

        redactor = Redactor()
        setup_logging(redactor, ctx.obj["verbose"], level="INFO")
        start_daemon(options, redactor)
