"""The runner: each scenario in every environment, environments in parallel, steps in order (each
scenario in each environment is an :class:`~parityprobe.execution.Execution`).

A probe's failure never aborts a run: the plane's ``translate`` turns a foreign exception into a verdict
(denied, not found) or an ERROR with its kind; anything it does not know becomes ``harness_error``. A step
whose inputs were not produced (the login it needs was denied) is SKIPPED. Cleanup steps always run, then
the undos probes recorded before their actions, most recent first.

Within one environment, independent scenarios run concurrently up to ``concurrency``; the steps of one
scenario always run in order, and results come back in plan order whatever finishes first.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from parityprobe.calls import Resumption
from parityprobe.config.environments import Environment
from parityprobe.config.plan import Plan, PlannedScenario
from parityprobe.execution import Execution
from parityprobe.listeners import Listeners, RunListener
from parityprobe.model import Observation, Run
from parityprobe.probe import ClientCache, Probe
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.spec import ScenarioSpec, scenario_spec
from parityprobe.undo import JournalEntry, MemoryJournal, UndoJournal

DEFAULT_STEP_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 4


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class ScenarioRuns:
    """One scenario's spec and its run in each environment, in the plan's environment order."""

    spec: ScenarioSpec
    runs: tuple[Run, ...]


@dataclass
class Shared:
    """What every execution of one :meth:`Runner.run` shares."""

    calls: ThreadPoolExecutor
    listeners: Listeners
    journal: UndoJournal
    probes: dict[type[Probe], Probe] = field(default_factory=dict)


class Runner:
    """Executes a :class:`Plan`. Clients are built once per environment and shared by its scenarios."""

    def __init__(
        self,
        registry: ProbeRegistry,
        redactor: Redactor,
        *,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], datetime] = utc_now,
        run_id: Callable[[], str] = new_run_id,
        listeners: tuple[RunListener, ...] = (),
        journal: UndoJournal | None = None,
        allow_break_glass: bool = False,
        stopping: Callable[[], str | None] = lambda: None,
        forget_secrets: bool = False,
    ) -> None:
        self.registry = registry
        self.redactor = redactor
        # Privileged (break-glass drill) steps run only where the environment allows them and this is set.
        self.allow_break_glass = allow_break_glass
        self.step_timeout = step_timeout
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self.new_run_id = run_id
        self._listeners = Listeners(listeners)
        self._journal = journal if journal is not None else MemoryJournal()
        # Asked before each step: a reason to stop (the remaining steps are skipped with it), or None.
        self.stopping = stopping
        # Forget each run's secrets once it is over and its listeners are told (a daemon that runs one
        # scenario per call: secrets an environment's shared clients hold then live only as long as a run).
        self.forget_secrets = forget_secrets

    def run(self, plan: Plan) -> list[ScenarioRuns]:
        envs = plan.environments
        specs = [scenario_spec(s) for s in plan.scenarios]
        caches = {env.name: ClientCache() for env in envs}
        workers = len(envs) * self.concurrency
        # Probe calls run on their own threads so a hung call can be abandoned at its deadline.
        with ThreadPoolExecutor(max(4, 2 * workers), thread_name_prefix="pp-probe") as calls:
            shared = Shared(calls, self._listeners, self._journal)
            pools = {env.name: ThreadPoolExecutor(self.concurrency, f"pp-{env.name}") for env in envs}
            try:
                futures = [
                    [
                        pools[env.name].submit(self._execute, planned, spec, env, caches[env.name], shared)
                        for env in envs
                    ]
                    for planned, spec in zip(plan.scenarios, specs, strict=True)
                ]
                return [
                    ScenarioRuns(spec, tuple(f.result() for f in row))
                    for spec, row in zip(specs, futures, strict=True)
                ]
            finally:
                for pool in pools.values():
                    pool.shutdown(wait=True)
                for cache in caches.values():
                    cache.close()

    def resume(self, env: Environment, entries: Sequence[JournalEntry]) -> tuple[Observation, ...]:
        """Run the undos that interrupted runs left pending in ``env`` (each resolved once its thing is
        gone), under a run id of their own; their observations, most recent entry first."""
        if not entries:
            return ()
        cache = ClientCache()
        try:
            with ThreadPoolExecutor(4, thread_name_prefix="pp-resume") as calls:
                shared = Shared(calls, self._listeners, self._journal)
                return Resumption(self, env, cache, shared, self.new_run_id()).run(entries)
        finally:
            cache.close()

    def _execute(
        self,
        planned: PlannedScenario,
        spec: ScenarioSpec,
        env: Environment,
        cache: ClientCache,
        shared: Shared,
    ) -> Run:
        return Execution(self, planned, spec, env, cache, shared).run()
