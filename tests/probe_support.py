"""Calling a probe in a test the way the runner does: a fresh context, run, translate what is raised."""

from __future__ import annotations

import time
from collections.abc import Mapping

from parityprobe.config.environments import Environment
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
