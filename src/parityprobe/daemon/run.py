"""Starting a daemon from the command line's options: its settings, its plan, its telemetry (the
environment's ``telemetry`` section, else the ``OTEL_*`` variables) and its health endpoints, then the
schedule (or one pass, ``--once``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from parityprobe.config.plan import Plan
from parityprobe.daemon.daemon import Daemon, DaemonSettings
from parityprobe.daemon.health import HealthServer
from parityprobe.daemon.records import ScheduleEvent
from parityprobe.errors import ParityProbeError
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.telemetry.listener import TelemetryListener
from parityprobe.telemetry.providers import PROMETHEUS_CONTENT_TYPE, Telemetry, build_telemetry
from parityprobe.telemetry.settings import TelemetrySettings

log = logging.getLogger(__name__)


def settings_from(options: Mapping[str, Any]) -> DaemonSettings:
    """The daemon's settings from the command's parsed options."""
    from parityprobe.cli_daemon import default_state_dir

    return DaemonSettings(
        environments_file=options["env_file"],
        environment=options["environment"],
        paths=tuple(options["paths"]),
        state_dir=options["state_dir"] or default_state_dir(),
        store_url=options["store"],
        every=options["every"],
        misfire_grace=options["misfire_grace"],
        kill_switch=options["kill_switch"],
        retention=options["retention"],
        step_timeout=options["step_timeout"],
        concurrency=options["concurrency"],
        allow_break_glass=options["allow_break_glass"],
    )


def plan_loader(settings: DaemonSettings, redactor: Redactor, registry: ProbeRegistry) -> Callable[[], Plan]:
    """Loads and checks the environments file (this environment only) and the scenarios: InputError, with
    every problem located, when anything is wrong. Called at start and at each SIGHUP."""
    from parityprobe.pipeline import plan

    def load() -> Plan:
        return plan(settings.environments_file, settings.paths, redactor, registry, [settings.environment])

    return load


def start_daemon(options: Mapping[str, Any], redactor: Redactor) -> None:
    """Build the daemon and run it until it is stopped (or once). InputError for bad input at start."""
    settings = settings_from(options)
    registry = ProbeRegistry()
    load = plan_loader(settings, redactor, registry)
    plan = load()
    section = plan.environments[0].section("telemetry", TelemetrySettings)
    telemetry = build_telemetry(section, os.environ, redactor)
    traced = TelemetryListener(telemetry, redactor)

    def count(event: ScheduleEvent) -> None:
        traced.record_schedule_event(event.environment, event.scenario, event.outcome)

    daemon = Daemon(
        settings, plan, load, redactor, registry, environ=os.environ, listeners=(traced,), on_event=count
    )
    try:
        if options["once"]:
            daemon.run_once()
        else:
            _serve(daemon, options["listen"], telemetry)
    finally:
        traced.close()
        telemetry.shutdown()


def _serve(daemon: Daemon, listen: tuple[str, int] | None, telemetry: Telemetry) -> None:
    def metrics() -> tuple[bytes, str] | None:
        text = telemetry.prometheus_text()
        return None if text is None else (text, PROMETHEUS_CONTENT_TYPE)

    health = None
    if listen is not None:
        try:
            health = HealthServer(listen[0], listen[1], daemon.readiness, metrics).start()
        except OSError as exc:
            where = f"{listen[0]}:{listen[1]}"
            raise ParityProbeError(f"cannot serve health endpoints on {where}: {exc}") from None
        log.info("health endpoints on http://%s:%d (/healthz, /readyz, /metrics)", listen[0], health.port)
    try:
        daemon.serve()
    finally:
        if health is not None:
            health.close()
