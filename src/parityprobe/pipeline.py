"""The flow of one invocation, as four visible steps: **plan** (load and validate everything), **run**
(runs carry their recorded facts), **compare** (``compare(spec, runs)``, from those facts alone) and
**report**. :func:`execute` composes them for ``run`` and ``demo``; the daemon runs and persists, and
``compare --store`` compares what daemons in different environments stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from parityprobe.compare.comparator import compare
from parityprobe.compare.explain import explain
from parityprobe.compare.latency import NO_HISTORY, LatencyHistory
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.errors import StoreError
from parityprobe.listeners import RunListener
from parityprobe.model import Comparison, Effect, Report, Run
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import DEFAULT_CONCURRENCY, DEFAULT_STEP_TIMEOUT, Runner, ScenarioRuns, utc_now
from parityprobe.spec import ScenarioSpec

if TYPE_CHECKING:
    from parityprobe.store import ResultStore

log = logging.getLogger(__name__)


def plan(
    environments_file: Path,
    scenario_paths: Sequence[Path],
    redactor: Redactor,
    registry: ProbeRegistry,
    only: Sequence[str] | None = None,
) -> Plan:
    """Everything loaded and checked; raises InputError (every problem, located) before any action."""
    environments = load_environments(environments_file, redactor, only or None)
    scenarios = load_scenarios(scenario_paths)
    return build_plan(environments, scenarios, registry)


# How far back the latency judge looks in a store for a step's earlier latencies.
HISTORY_WINDOW = timedelta(days=7)

# A scenario's spec and the runs being compared → the latency history to judge them with.
HistorySource = Callable[[ScenarioSpec, tuple[Run, ...]], LatencyHistory]


def compare_all(
    results: Iterable[ScenarioRuns], history: HistorySource | None = None
) -> tuple[Comparison, ...]:
    """Each scenario's runs compared, in the order given (the latency judge weighing ``history`` too, when
    given); then every behavioural finding names the configuration drift (from any scenario) that may
    explain it."""
    return explain(
        tuple(
            compare(r.spec, r.runs, history(r.spec, r.runs) if history is not None else NO_HISTORY)
            for r in results
        )
    )


def store_history(store: ResultStore, now: datetime) -> HistorySource:
    """The latency history of each scenario in ``store``: its runs of the last :data:`HISTORY_WINDOW`
    before ``now``, less the runs being compared. A store that cannot be read gives no history (a warning):
    the judge then says it has too few samples rather than the comparison failing."""
    from parityprobe.store.history import latency_history

    def history(spec: ScenarioSpec, compared: tuple[Run, ...]) -> LatencyHistory:
        try:
            return latency_history(store, spec.id, now - HISTORY_WINDOW, {run.id for run in compared})
        except StoreError as exc:
            log.warning("no latency history for %s: %s", spec.id, exc)
            return NO_HISTORY

    return history


def compare_stored(
    store_url: str, window: timedelta, scenario: str | None = None, environments: list[str] | None = None
) -> Report:
    """Compare what the store holds from the last ``window``: per scenario version, each environment's run
    nearest in time to the first environment's latest (:func:`~parityprobe.store.pair_heads`), compared
    exactly as a live run's; only the chosen runs are read whole. StoreError when the store cannot be
    read."""
    from parityprobe.store import ResultStore, read_paired  # SQLAlchemy: only when a store is used

    store = ResultStore(store_url)
    try:
        now = utc_now()
        paired = read_paired(store, now - window, scenario, environments)
        comparisons = compare_all(
            (ScenarioRuns(spec, tuple(runs)) for spec, runs in paired), store_history(store, now)
        )
    finally:
        store.close()
    return Report(generated_at=now, comparisons=comparisons)


def execute(
    the_plan: Plan,
    redactor: Redactor,
    registry: ProbeRegistry,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    listeners: tuple[RunListener, ...] = (),
    allow_break_glass: bool = False,
    history: HistorySource | None = None,
) -> Report:
    """Run the plan in every environment, compare the runs scenario by scenario (the latency judge weighing
    ``history`` too), and make the report."""
    runner = Runner(
        registry,
        redactor,
        step_timeout=step_timeout,
        concurrency=concurrency,
        listeners=listeners,
        allow_break_glass=allow_break_glass,
    )
    return Report(generated_at=utc_now(), comparisons=compare_all(runner.run(the_plan), history))


def describe(the_plan: Plan, allow_break_glass: bool = False) -> str:
    """The plan in words, for ``--dry-run`` and ``validate``: what would run where, touching nothing.

    A privileged step (a break-glass drill) says where it is skipped, and why."""
    envs = ", ".join(f"{e.name} ({e.effective_tier.value})" for e in the_plan.environments)
    lines = [f"environments: {envs}"]
    for scenario in the_plan.scenarios:
        lines.append(f"scenario {scenario.id} ({scenario.source.path})")
        for label, steps in (("step", scenario.steps), ("cleanup", scenario.cleanup)):
            for planned in steps:
                expect = planned.step.expect.outcome
                expected = f", expect {expect.value}" if expect else ""
                lines.append(
                    f"  {label} {planned.step.id}: {planned.step.probe} [{planned.effect.value}{expected}]"
                    + _skipped(the_plan, planned.effect, allow_break_glass)
                )
    return "\n".join(lines)


def _skipped(the_plan: Plan, effect: Effect, allow_break_glass: bool) -> str:
    if effect is not Effect.PRIVILEGED:
        return ""
    refused = [env.name for env in the_plan.environments if not env.safety.allows(effect)]
    notes = [f"skipped in {', '.join(refused)}: safety.allow_effects has no privileged"] if refused else []
    if not allow_break_glass:
        notes.append("skipped everywhere without --allow-break-glass")
    return "".join(f"\n      {note}" for note in notes)
