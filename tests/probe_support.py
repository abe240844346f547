"""Calling a probe in a test the way the runner does: a fresh context, run, translate what is raised."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from parityprobe.config.environments import (
    CORE_FIELDS,
    Environment,
    EnvironmentsFile,
    SectionRegistry,
    environment_model,
    environments_model,
)
from parityprobe.probe import ClientCache, Failure, Probe, ProbeContext, ProbeResult, Timer
from parityprobe.redact import Redactor


def probe_context(
    env: Environment, step: str, clients: ClientCache | None = None, seconds: float = 30, *, run: str = "test"
) -> ProbeContext:
    """A context for ``step`` with correlation id ``pp-<run>-<step>``."""
    return ProbeContext(
        environment=env,
        correlation_id=f"pp-{run}-{step}",
        deadline=time.monotonic() + seconds,
        timer=Timer(),
        redactor=Redactor(),
        clients=clients if clients is not None else ClientCache(),
    )


def observe(probe: Probe, params: Mapping[str, object], ctx: ProbeContext) -> ProbeResult | Failure:
    """Bind the parameters, run, translate whatever is raised (an untranslated exception fails the test)."""
    bound = probe.Params.model_validate(dict(params))
    try:
        return probe.run(bound, ctx)
    except Exception as exc:
        failure = probe.translate(exc)
        assert failure is not None, f"untranslated {exc!r}"
        return failure


def environment(data: Mapping[str, Any]) -> Environment:
    """An environment from its settings, its sections validated by the registered section plugins."""
    sections = [key for key in data if key not in CORE_FIELDS]
    return environment_model(sections, SectionRegistry()).model_validate(dict(data))


def environments_file(data: Mapping[str, Any]) -> EnvironmentsFile:
    """An environments file's content, validated as ``parityprobe`` loads one (secrets not read)."""
    envs = data.get("environments", {})
    sections = {key for env in envs.values() for key in env if key not in CORE_FIELDS}
    return environments_model(sections, SectionRegistry()).model_validate(dict(data))
