"""The probe boundary in one environment: a probe call under its deadline, every foreign exception translated
into an outcome, and the recorded undos run the same way.

:class:`EnvironmentCalls` holds what one run (its run id) in one environment calls probes with: the runner's
settings, the environment's clients, the shared thread pool and probe instances, and the run's journal.
:class:`~parityprobe.execution.Execution` adds a scenario's steps to it; :class:`Resumption` runs only the
undos that interrupted runs left pending (the daemon, when it starts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from parityprobe.compare.cleanup import UNDO_PREFIX
from parityprobe.config.environments import Environment, SectionSettings
from parityprobe.model import ErrorKind, Grant, Observation, Outcome, OutputValue
from parityprobe.probe import ClientCache, Declaring, Failure, Probe, ProbeContext, ProbeResult, Timer
from parityprobe.redact import Redacting, RunSecrets
from parityprobe.secret import Secret
from parityprobe.undo import JournalEntry, RunJournal

if TYPE_CHECKING:
    from parityprobe.runner import Runner, Shared

log = logging.getLogger(__name__)

_DETAIL_LIMIT = 300


class EnvironmentCalls:
    """Probe calls of one run (``run_id``) in one environment."""

    def __init__(
        self, runner: Runner, env: Environment, cache: ClientCache, shared: Shared, run_id: str
    ) -> None:
        self.runner = runner
        self.env = env
        self.cache = cache
        self.shared = shared
        self.run_id = run_id
        self.journal = RunJournal(shared.journal, run_id, env.name)
        # The secrets the run's probes meet; forgotten when the run ends if the runner says so (a daemon).
        self.secrets: Redacting = runner.redactor.run_secrets() if runner.forget_secrets else runner.redactor
        # Probe calls abandoned at their deadline, by correlation id: they may still create something.
        self.abandoned: dict[str, Future[ProbeResult]] = {}

    def forget_secrets(self) -> None:
        """The run is over and recorded: its secrets need masking no more (when the runner forgets them)."""
        if isinstance(self.secrets, RunSecrets):
            self.secrets.close()

    def still_running(self) -> set[str]:
        """The abandoned calls that have not ended after a grace period: their actions may yet create
        what their undos would remove, so those undos must not run (and be resolved) now."""
        if self.abandoned:
            wait(self.abandoned.values(), timeout=self.runner.step_timeout)
        return {cid for cid, future in self.abandoned.items() if not future.done()}

    def undo(self, entry: JournalEntry, index: int, in_flight: bool = False) -> Observation:
        """Run a recorded undo like a step. It is not checked against the environment's allowed effects:
        it only removes what an allowed action created. Resolved when the thing is gone; left pending
        (for the daemon to resume) when it fails or its action is still running."""
        base = self.factory(f"{UNDO_PREFIX}{index}", entry.undo.probe)
        if in_flight:
            return base.error(
                ErrorKind.HARNESS_ERROR,
                f"not run: the action it undoes ({entry.recorded_by}) is still running; left pending",
            )
        try:
            probe = self.probe(self.runner.registry.probe_class(entry.undo.probe))
            params = probe.Params.model_validate(entry.undo.arguments())
        except Exception as exc:  # an undo that cannot even be built is reported, never raised
            return base.error(ErrorKind.HARNESS_ERROR, f"undo cannot run: {type(exc).__name__}: {exc}")
        obs = self.invoke(probe, params, base, self.runner.step_timeout)
        if obs.outcome in (Outcome.ALLOWED, Outcome.NOT_FOUND):
            self.journal.journal.resolve(entry.id)
        log.debug("%s undo %s (%s): %s", self.env.name, entry.id, entry.undo.description, obs.describe())
        return obs

    def factory(self, step_id: str, probe: str) -> ObservationFactory:
        return ObservationFactory(
            step_id, probe, self.env.name, f"pp-{self.run_id}-{step_id}", self.runner.clock()
        )

    def probe(self, cls: type[Probe]) -> Probe:
        probes = self.shared.probes
        if cls not in probes:
            probes[cls] = cls()  # probes hold no per-run state: one instance serves every step
        return probes[cls]

    def invoke(
        self,
        probe: Probe | DeclaredCheck | VersionCheck,
        params: Any,
        base: ObservationFactory,
        timeout: float,
    ) -> Observation:
        runner = self.runner
        ctx = ProbeContext(
            self.env,
            base.correlation_id,
            time.monotonic() + timeout,
            Timer(),
            self.secrets,
            self.cache,
            clock=runner.clock,
            journal=self.journal,
        )
        start = time.perf_counter_ns()
        future: Future[ProbeResult] = self.shared.calls.submit(probe.run, params, ctx)
        try:
            result = future.result(timeout=timeout)
        except FutureTimeout:
            self.abandoned[base.correlation_id] = future
            return base.error(ErrorKind.TIMEOUT, f"no answer within {timeout:g}s")
        except Exception as exc:  # the probe boundary: every foreign exception is translated here
            elapsed = ctx.timer.elapsed_ms if ctx.timer.used else (time.perf_counter_ns() - start) / 1e6
            return self._failed(probe.translate, exc, base, elapsed)
        elapsed = ctx.timer.elapsed_ms if ctx.timer.used else (time.perf_counter_ns() - start) / 1e6
        for value in result.outputs.values():
            if isinstance(value, Secret):
                self.secrets.register(value)
        return base.make(
            result.outcome,
            reason=result.reason,
            latency_ms=elapsed,
            grant=result.grant,
            outputs=result.outputs,
            waits=result.waits,
            server=result.server,
        )

    def _failed(
        self,
        translate: Callable[[BaseException], Failure | None],
        exc: Exception,
        base: ObservationFactory,
        latency_ms: float,
    ) -> Observation:
        redact = self.runner.redactor.redact
        detail = redact(f"{type(exc).__name__}: {exc}")[:_DETAIL_LIMIT]
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
            reason=redact(failure.reason),
            detail=detail,
            latency_ms=latency,
        )


class Resumption(EnvironmentCalls):
    """The undos that runs interrupted by a crash left pending in one environment, run under a run id of
    their own. Each is resolved when its thing is gone; one that fails stays pending for the next start."""

    def run(self, entries: Sequence[JournalEntry]) -> tuple[Observation, ...]:
        """Each entry's undo, most recent first (the order a run undoes its own)."""
        try:
            return tuple(
                self.undo(entry, index) for index, entry in enumerate(reversed(list(entries)), start=1)
            )
        finally:
            self.forget_secrets()


class DeclaredCheck:
    """A probe's ``declared`` question, invoked like a probe (its ``run``), translated by the same plane."""

    def __init__(self, probe: Declaring) -> None:
        self._probe = probe

    def run(self, params: Any, ctx: ProbeContext) -> ProbeResult:
        return self._probe.declared(params, ctx)

    def translate(self, exc: BaseException) -> Failure | None:
        return self._probe.translate(exc)


class VersionCheck:
    """A section's ``server_version`` question, invoked like a probe and translated by one of its plane's
    probes: ALLOWED with the version as output ``version``, SKIPPED where the plane cannot say."""

    def __init__(self, section: SectionSettings, probe: Probe) -> None:
        self._section = section
        self._probe = probe

    def run(self, params: Any, ctx: ProbeContext) -> ProbeResult:
        with ctx.timer:
            version = self._section.server_version(ctx)
        if version is None:
            return ProbeResult(Outcome.SKIPPED, reason="the plane does not say its server's version")
        return ProbeResult(outputs=MappingProxyType({"version": version}))

    def translate(self, exc: BaseException) -> Failure | None:
        return self._probe.translate(exc)


@dataclass(frozen=True)
class ObservationFactory:
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
        waits: Mapping[str, float] | None = None,
        server: str | None = None,
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
            waits=MappingProxyType(dict(waits or {})),
            server=server,
        )

    def error(self, kind: ErrorKind, reason: str) -> Observation:
        return self.make(Outcome.ERROR, error_kind=kind, reason=reason)
