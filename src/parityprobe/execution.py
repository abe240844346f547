"""One scenario in one environment: the steps in order, then the cleanup steps and the pending undos.

Each step is prepared (safety, render, bind) and then invoked (deadline, call, translate) through the probe
boundary (:mod:`~parityprobe.calls`), where every foreign exception becomes an outcome. A probe's failure
never aborts the run. When the runner is told to stop (the daemon's SIGTERM, its kill switch), the steps not
yet begun are SKIPPED with the reason, and the cleanup steps and undos still run.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from parityprobe.calls import DeclaredCheck, EnvironmentCalls, ObservationFactory, VersionCheck
from parityprobe.compare.declared import skipped_note
from parityprobe.config.environments import Environment
from parityprobe.config.plan import PlannedScenario, PlannedStep
from parityprobe.config.template import MissingOutput, Scope, TemplateError, render
from parityprobe.listeners import RunStarted
from parityprobe.model import (
    NEEDS_BREAK_GLASS,
    NOT_ALLOWED_HERE,
    Effect,
    ErrorKind,
    Evidence,
    Observation,
    Outcome,
    OutputValue,
    Run,
)
from parityprobe.probe import (
    ClientCache,
    Declaring,
    Probe,
    Targeting,
)
from parityprobe.siem.wait import EvidenceWait, Pending, no_verdict
from parityprobe.spec import ScenarioSpec, environment_facts

if TYPE_CHECKING:
    from parityprobe.runner import Runner, Shared

log = logging.getLogger(__name__)

# Waiting for an expected outcome (expect.within): first pause, growth, longest pause, in seconds.
_FIRST_PAUSE = 0.1
_BACKOFF = 1.5
_MAX_PAUSE = 2.0
# Asking a server its version is one small request.
_VERSION_TIMEOUT = 10.0


class Execution(EnvironmentCalls):
    """One scenario in one environment: its run id, clients, template scope and what it has observed."""

    def __init__(
        self,
        runner: Runner,
        planned: PlannedScenario,
        spec: ScenarioSpec,
        env: Environment,
        cache: ClientCache,
        shared: Shared,
    ) -> None:
        super().__init__(runner, env, cache, shared, runner.new_run_id())
        self.planned = planned
        self.started = RunStarted(self.run_id, spec, environment_facts(env), runner.clock())
        self.outputs: dict[str, Mapping[str, OutputValue]] = {}
        self.observed: dict[str, Observation] = {}
        self.scope = Scope(env.name, env.vars, self.outputs)
        self._default_connector = ""
        self.siem = self._evidence_wait()
        self.evidence: list[Evidence] = []  # expectations of steps that did not act: no verdict at once

    def run(self) -> Run:
        """Every step in order, then every cleanup step and pending undo, whatever happened before."""
        listeners = self.shared.listeners
        listeners.run_started(self.started)
        observations: list[Observation] = []
        cleanup: list[Observation] = []
        if self.siem is not None:
            self.siem.begin(
                self._connector_name(e.connector) for s in self.planned.steps for e in s.step.siem
            )
        try:
            for planned in self.planned.steps:
                observations.append(self.step(planned, stoppable=True))
                listeners.step_finished(self.started, observations[-1])
            servers = self._server_versions(observations)
        finally:
            for planned in self.planned.cleanup:
                cleanup.append(self.step(planned))
                listeners.cleanup_finished(self.started, cleanup[-1])
            pending = self.journal.pending()
            running = self.still_running() if pending else set()
            for index, entry in enumerate(reversed(pending), start=1):
                cleanup.append(self.undo(entry, index, entry.recorded_by in running))
                listeners.cleanup_finished(self.started, cleanup[-1])
        if self.siem is not None:
            self.evidence.extend(self.siem.wait())
        order = {planned.step.id: i for i, planned in enumerate(self.planned.steps)}
        run = Run(
            id=self.run_id,
            spec=self.started.spec,
            env=self.started.env,
            started_at=self.started.started_at,
            finished_at=self.runner.clock(),
            observations=tuple(observations),
            cleanup=tuple(cleanup),
            evidence=tuple(sorted(self.evidence, key=lambda e: (order.get(e.step, len(order)), e.index))),
            servers=servers,
        )
        listeners.run_finished(run)
        self.forget_secrets()
        return run

    def step(self, planned: PlannedStep, stoppable: bool = False) -> Observation:
        """One step: prepare (safety, render, bind), then invoke (deadline, call, translate); then its SIEM
        expectations are left to the wait after the run's steps. A ``stoppable`` step (not a cleanup step)
        is SKIPPED, with the reason, when the runner is stopping."""
        acted = time.monotonic()
        obs = self._step(planned, stoppable)
        if planned.step.siem and self.siem is not None:
            self._expect_evidence(planned, obs, acted)
        return obs

    def _step(self, planned: PlannedStep, stoppable: bool) -> Observation:
        step = planned.step
        base = self.factory(step.id, step.probe)
        stopping = self.runner.stopping() if stoppable else None
        if stopping is not None:
            prepared: Any = base.make(Outcome.SKIPPED, reason=stopping)
        else:
            prepared = self._prepare(planned, base)
        if isinstance(prepared, Observation):
            obs = prepared
        else:
            timeout = float(step.timeout) if step.timeout is not None else self.runner.step_timeout
            probe = self.probe(planned.probe)
            expected = step.expect.outcome
            if step.expect.within is not None and expected is not None:
                obs = self._until(probe, prepared, base, timeout, expected.outcome, step.expect.within)
            else:
                obs = self.invoke(probe, prepared, base, timeout)
                if step.repeat is not None and obs.outcome.is_verdict:
                    obs = self._repeated(obs, step.repeat, probe, prepared, base, timeout)
            if step.crosscheck is not None and obs.outcome.is_verdict and isinstance(probe, Declaring):
                obs = self._crosschecked(obs, step.crosscheck, probe, prepared, base, timeout)
            if isinstance(probe, Targeting):
                obs = replace(obs, target=probe.target(prepared))
        self.observed[step.id] = obs
        self.outputs[step.id] = obs.outputs
        log.debug("%s %s %s: %s", self.env.name, base.correlation_id, step.probe, obs.describe())
        return obs

    def _server_versions(self, observations: list[Observation]) -> Mapping[str, str]:
        """Once per run, after the steps: the version of each plane's server they reached (a section's
        ``server_version``), by section name; a plane whose steps were all skipped is not asked. A plane
        that cannot say, an answer that failed, or a run being stopped records nothing: a missing version
        is no difference."""
        found: dict[str, str] = {}
        asked: set[str] = set()
        for planned, obs in zip(self.planned.steps, observations, strict=True):
            name = planned.probe.section if obs.outcome is not Outcome.SKIPPED else None
            section = self.env.sections().get(name) if name is not None else None
            if name is None or section is None or name in asked or self.runner.stopping() is not None:
                continue
            asked.add(name)
            check = VersionCheck(section, self.probe(planned.probe))
            answer = self.invoke(
                check, None, self.factory(f"server-{name}", planned.probe.name), _VERSION_TIMEOUT
            )
            version = answer.outputs.get("version")
            if answer.outcome is Outcome.ALLOWED and isinstance(version, str):
                found[name] = version
            else:
                log.info("%s: no %s server version: %s", self.env.name, name, answer.describe())
        return MappingProxyType(found)

    def _evidence_wait(self) -> EvidenceWait | None:
        """The run's SIEM side, when a step expects evidence (the plan has checked that the environment has
        every connector the expectations name)."""
        if not any(p.step.siem for p in self.planned.steps):
            return None
        from parityprobe.siem.settings import SiemSettings  # loads the connector types: only when used

        section = self.env.section("siem", SiemSettings)
        if section is None:
            return None
        self._default_connector = str(section.default)
        return EvidenceWait(
            section.connectors,
            self.runner.redactor,
            poll_interval=float(section.poll_interval),
            max_poll_interval=float(section.max_poll_interval),
            clock=self.runner.clock,
        )

    def _connector_name(self, name: str | None) -> str:
        return name if name is not None else self._default_connector

    def _expect_evidence(self, planned: PlannedStep, obs: Observation, acted: float) -> None:
        assert self.siem is not None
        for index, expectation in enumerate(planned.step.siem):
            item = Pending(
                step=obs.step,
                index=index,
                connector=self._connector_name(expectation.connector),
                correlation_id=obs.correlation_id,
                expect=expectation.expect,
                match=MappingProxyType(dict(expectation.match)),
                within=float(expectation.within),
                action_at=obs.started_at,
                acted=acted,
            )
            if obs.outcome.is_verdict:
                self.siem.add(item)
            else:
                why = f"the step did not act ({obs.describe()})"
                self.evidence.append(no_verdict(item, why, self.runner.clock))

    def _crosschecked(
        self,
        obs: Observation,
        kind: str,
        probe: Declaring,
        params: Any,
        base: ObservationFactory,
        timeout: float,
    ) -> Observation:
        """``obs`` with what the target declares for the step's action, asked through the same boundary
        (deadline, translation) as the action itself: ALLOWED or DENIED; SKIPPED, with the probe's reason
        noted, when the target cannot answer such a question (no policy simulator); ERROR when it could not
        be asked."""
        check = self.invoke(DeclaredCheck(probe), params, base, timeout)
        if check.outcome is Outcome.SKIPPED:
            return replace(obs, declared=Outcome.SKIPPED, declared_reason=skipped_note(kind, check.reason))
        declared = check.outcome if check.outcome in (Outcome.ALLOWED, Outcome.DENIED) else Outcome.ERROR
        return replace(obs, declared=declared)

    def _repeated(
        self,
        first: Observation,
        times: int,
        probe: Probe,
        params: Any,
        base: ObservationFactory,
        timeout: float,
    ) -> Observation:
        """``first`` with the latencies of ``times`` repetitions of its action (``repeat: N``, read steps
        only): every repetition that reached the first one's decision is a sample, and ``latency_ms`` becomes
        their median. A repetition that decides otherwise, or gives no verdict, is no sample of this latency
        (it is logged); the runner being stopped ends the repetitions."""
        samples = [first.latency_ms] if first.latency_ms is not None else []
        for repetition in range(2, times + 1):
            if self.runner.stopping() is not None:
                break
            again = self.invoke(probe, params, base, timeout)
            if again.outcome is first.outcome and again.latency_ms is not None:
                samples.append(again.latency_ms)
            else:
                log.info(
                    "%s %s repetition %d of %d: %s, not a latency sample of %s",
                    self.env.name,
                    base.correlation_id,
                    repetition,
                    times,
                    again.describe(),
                    first.describe(),
                )
        if not samples:
            return first
        return replace(first, latency_ms=statistics.median(samples), latency_samples_ms=tuple(samples))

    def _until(
        self, probe: Probe, params: Any, base: ObservationFactory, timeout: float, want: Outcome, within: int
    ) -> Observation:
        """Invoke until the outcome is ``want`` or ``within`` seconds have passed (``expect.within``).

        The observation is the last attempt's, with how long the outcome took to hold (from the first
        attempt's start to the answer of the one that saw it; None when it never did) and the number of
        attempts. An attempt without a verdict ends the wait: an error proves nothing about when access
        changed. So does the runner being stopped (the step is then SKIPPED, with the reason). The last
        attempt starts before ``within`` runs out, so the step can take up to one attempt longer.
        """
        start = time.monotonic()
        pause = _FIRST_PAUSE
        attempts = 0
        while True:
            attempts += 1
            began = time.monotonic()
            obs = self.invoke(probe, params, base, timeout)
            waited = time.monotonic() - start
            if obs.outcome is want:
                # Until the successful request answered: the wait before the attempt, plus the request's
                # own latency (not the client's set-up around it, which differs from one process to the next).
                answered = obs.latency_ms / 1000 if obs.latency_ms is not None else time.monotonic() - began
                took = began - start + answered
                return replace(obs, waited_seconds=round(took, 3), attempts=attempts)
            if not obs.outcome.is_verdict or waited >= within:
                return replace(obs, attempts=attempts)
            stopping = self.runner.stopping()
            if stopping is not None:  # held back while waiting: no verdict on how long it takes
                return replace(base.make(Outcome.SKIPPED, reason=stopping), attempts=attempts)
            time.sleep(min(pause, within - waited))
            pause = min(pause * _BACKOFF, _MAX_PAUSE)

    def _prepare(self, planned: PlannedStep, base: ObservationFactory) -> Any:
        """The bound parameters, or the observation that says why the step cannot run."""
        if not self.env.safety.allows(planned.effect):
            return base.make(Outcome.SKIPPED, reason=NOT_ALLOWED_HERE.format(effect=planned.effect.value))
        if planned.effect is Effect.PRIVILEGED and not self.runner.allow_break_glass:
            return base.make(Outcome.SKIPPED, reason=NEEDS_BREAK_GLASS)
        try:
            rendered = render(planned.step.with_, self.scope)
        except MissingOutput as exc:
            source = self.observed.get(exc.ref.step)
            if source is not None and source.skipped_by_choice:
                return base.make(Outcome.SKIPPED, reason=source.reason)  # left out with the step it needs
            why = source.describe() if source is not None else "not run"
            return base.make(
                Outcome.SKIPPED, reason=f"needs steps.{exc.ref.step}.outputs.{exc.ref.output} ({why})"
            )
        except TemplateError as exc:
            return base.error(ErrorKind.HARNESS_ERROR, str(exc))
        try:
            return planned.probe.Params.model_validate(rendered)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            return base.error(ErrorKind.HARNESS_ERROR, f"invalid parameters: {first['loc']}: {first['msg']}")
