"""The runner: each scenario in every environment, environments in parallel, steps in order.

A probe's failure never aborts a run: the plane's ``translate`` turns a foreign exception into a verdict
(denied, not found) or an ERROR with its kind; anything it does not know becomes ``harness_error``. A step
whose inputs were not produced (the login it needs was denied) is SKIPPED. Cleanup steps always run.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from pydantic import ValidationError

from parityprobe.config.environments import Environment
from parityprobe.config.plan import Plan, PlannedScenario, PlannedStep
from parityprobe.config.template import MissingOutput, Scope, TemplateError, render
from parityprobe.model import ErrorKind, Grant, Observation, Outcome, OutputValue, Run
from parityprobe.probe import ClientCache, Failure, ProbeContext, ProbeResult, Timer
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret

log = logging.getLogger(__name__)

DEFAULT_STEP_TIMEOUT = 30.0
_DETAIL_LIMIT = 300


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class ScenarioRuns:
    """One planned scenario and its run in each environment, in the plan's environment order."""

    scenario: PlannedScenario
    runs: tuple[Run, ...]


class Runner:
    """Executes a :class:`Plan`. Clients are built once per environment and shared by its scenarios."""

    def __init__(
        self,
        registry: ProbeRegistry,
        redactor: Redactor,
        *,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
        run_id: Callable[[], str] = new_run_id,
    ) -> None:
        self._registry = registry
        self._redactor = redactor
        self._step_timeout = step_timeout
        self._clock = clock
        self._run_id = run_id

    def run(self, plan: Plan) -> list[ScenarioRuns]:
        caches = {env.name: ClientCache() for env in plan.environments}
        # Probe calls run on their own threads so a hung call can be abandoned at its deadline.
        with (
            ThreadPoolExecutor(
                max_workers=max(4, 4 * len(plan.environments)), thread_name_prefix="pp-probe"
            ) as calls,
            ThreadPoolExecutor(max_workers=len(plan.environments), thread_name_prefix="pp-env") as envs,
        ):
            try:
                results = []
                for scenario in plan.scenarios:
                    futures = [
                        envs.submit(self._run_scenario, scenario, env, caches[env.name], calls)
                        for env in plan.environments
                    ]
                    results.append(ScenarioRuns(scenario, tuple(f.result() for f in futures)))
                return results
            finally:
                for cache in caches.values():
                    cache.close()

    def _run_scenario(
        self, planned: PlannedScenario, env: Environment, cache: ClientCache, calls: ThreadPoolExecutor
    ) -> Run:
        run_id = self._run_id()
        started = self._clock()
        outputs: dict[str, Mapping[str, OutputValue]] = {}
        outcomes: dict[str, Observation] = {}
        scope = Scope(env.name, env.vars, outputs)
        observations: list[Observation] = []
        cleanup: list[Observation] = []
        try:
            for step in planned.steps:
                obs = self._step(step, env, scope, outcomes, outputs, run_id, cache, calls)
                observations.append(obs)
        finally:
            for step in planned.cleanup:
                cleanup.append(self._step(step, env, scope, outcomes, outputs, run_id, cache, calls))
        return Run(
            id=run_id,
            scenario=planned.id,
            environment=env.name,
            started_at=started,
            finished_at=self._clock(),
            observations=tuple(observations),
            cleanup=tuple(cleanup),
        )

    def _step(
        self,
        planned: PlannedStep,
        env: Environment,
        scope: Scope,
        outcomes: dict[str, Observation],
        outputs: dict[str, Mapping[str, OutputValue]],
        run_id: str,
        cache: ClientCache,
        calls: ThreadPoolExecutor,
    ) -> Observation:
        step = planned.step
        base = _ObservationFactory(step.id, step.probe, env.name, f"pp-{run_id}-{step.id}", self._clock())
        obs = self._attempt(planned, env, scope, outcomes, base, cache, calls)
        outcomes[step.id] = obs
        outputs[step.id] = obs.outputs
        log.debug("%s %s %s: %s", env.name, base.correlation_id, step.probe, obs.describe())
        return obs

    def _attempt(
        self,
        planned: PlannedStep,
        env: Environment,
        scope: Scope,
        outcomes: Mapping[str, Observation],
        base: _ObservationFactory,
        cache: ClientCache,
        calls: ThreadPoolExecutor,
    ) -> Observation:
        step = planned.step
        if not env.safety.allows(planned.effect):
            return base.make(Outcome.SKIPPED, reason=f"effect {planned.effect.value} not allowed here")
        try:
            rendered = render(step.with_, scope)
        except MissingOutput as exc:
            source = outcomes.get(exc.ref.step)
            why = source.describe() if source is not None else "not run"
            return base.make(
                Outcome.SKIPPED, reason=f"needs steps.{exc.ref.step}.outputs.{exc.ref.output} ({why})"
            )
        except TemplateError as exc:
            return base.error(ErrorKind.HARNESS_ERROR, str(exc))
        try:
            probe = self._registry.probe(step.probe)
            params = probe.Params.model_validate(rendered)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            return base.error(ErrorKind.HARNESS_ERROR, f"invalid parameters: {first['loc']}: {first['msg']}")
        timeout = float(step.timeout) if step.timeout is not None else self._step_timeout
        ctx = ProbeContext(
            env, base.correlation_id, time.monotonic() + timeout, Timer(), self._redactor, cache
        )
        start = time.perf_counter_ns()
        future: Future[ProbeResult] = calls.submit(probe.run, params, ctx)
        try:
            result = future.result(timeout=timeout)
        except FutureTimeout:
            return base.error(ErrorKind.TIMEOUT, f"no answer within {timeout:g}s")
        except Exception as exc:  # the probe boundary: every foreign exception is translated here
            elapsed = ctx.timer.elapsed_ms if ctx.timer.used else (time.perf_counter_ns() - start) / 1e6
            return self._failed(probe.translate, exc, base, elapsed)
        elapsed = ctx.timer.elapsed_ms if ctx.timer.used else (time.perf_counter_ns() - start) / 1e6
        for value in result.outputs.values():
            if isinstance(value, Secret):
                self._redactor.register(value)
        return base.make(
            result.outcome,
            reason=result.reason,
            latency_ms=elapsed,
            grant=result.grant,
            outputs=result.outputs,
        )

    def _failed(
        self,
        translate: Callable[[BaseException], Failure | None],
        exc: Exception,
        base: _ObservationFactory,
        latency_ms: float,
    ) -> Observation:
        detail = self._redactor.redact(f"{type(exc).__name__}: {exc}")[:_DETAIL_LIMIT]
        try:
            failure = translate(exc)
        except Exception as translate_exc:  # a broken translator must not take the run down either
            failure = Failure.error(ErrorKind.HARNESS_ERROR, f"error translation failed: {translate_exc!r}")
        if failure is None:
            failure = Failure.error(ErrorKind.HARNESS_ERROR, f"unexpected {type(exc).__name__}")
        # A timeout or unreachable target never produced a decision, so its latency is not reported.
        latency = latency_ms if failure.outcome.is_verdict else None
        return base.make(
            failure.outcome,
            error_kind=failure.error_kind,
            reason=self._redactor.redact(failure.reason),
            detail=detail,
            latency_ms=latency,
        )


@dataclass(frozen=True)
class _ObservationFactory:
    step: str
    probe: str
    environment: str
    correlation_id: str
    started_at: datetime

    def make(
        self,
        outcome: Outcome,
        *,
        reason: str | None = None,
        error_kind: ErrorKind | None = None,
        detail: str | None = None,
        latency_ms: float | None = None,
        grant: Grant | None = None,
        outputs: Mapping[str, OutputValue] | None = None,
    ) -> Observation:
        return Observation(
            step=self.step,
            probe=self.probe,
            environment=self.environment,
            correlation_id=self.correlation_id,
            outcome=outcome,
            started_at=self.started_at,
            error_kind=error_kind,
            reason=reason,
            detail=detail,
            latency_ms=latency_ms,
            grant=grant or Grant(),
            outputs=MappingProxyType(dict(outputs or {})),
        )

    def error(self, kind: ErrorKind, reason: str) -> Observation:
        return self.make(Outcome.ERROR, error_kind=kind, reason=reason)
