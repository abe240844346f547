"""Run listeners: told everything, in order, for every scenario in every environment; never able to change
a result, even when they fail; consistent under concurrency."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from parityprobe.codec import to_record
from parityprobe.config.plan import Plan
from parityprobe.listeners import Listeners, RunListener, RunStarted
from parityprobe.model import Observation, Outcome, Run, Tier
from parityprobe.pipeline import compare_all, execute
from parityprobe.redact import Redactor
from parityprobe.runner import Runner, ScenarioRuns
from parityprobe.spec import EnvironmentFacts, ScenarioSpec
from tests.plugins import Inventory, Track, build, registry

ENVS = """\
environments:
  staging:
    vars: {team: payments}
    safety: {allow_effects: [read, write]}
  production:
    vars: {team: payments}
    safety: {allow_effects: [read, write]}
"""
SCENARIOS = (
    "id: tracked\nsteps:\n"
    "  - {id: a, probe: test.track, with: {sleep: 0.01}}\n"
    "  - {id: b, probe: test.track, with: {sleep: 0.01}}\n"
    "cleanup:\n  - {id: c, probe: test.track}\n",
    "id: undone\nsteps:\n"
    "  - {id: make, probe: test.create, with: {name: a, fail: true}}\n"
    "  - {id: next, probe: test.echo}\n"
    "cleanup:\n  - {id: tidy, probe: test.echo}\n",
    "id: refused\nsteps:\n"
    "  - {id: login, probe: test.echo, with: {refuse: true}}\n"
    "  - {id: use, probe: test.echo, with: {token: '${{ steps.login.outputs.token }}'}}\n",
    "id: many\nsteps:\n" + "".join(f"  - {{id: s{i}, probe: test.track}}\n" for i in range(6)),
)


class Recorder(RunListener):
    """Keeps every call, from whichever thread makes it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []  # (hook, run id, what it was given)
        self._lock = threading.Lock()

    def _add(self, hook: str, run_id: str, what: Any) -> None:
        with self._lock:
            self.events.append((hook, run_id, what))

    def run_started(self, run: RunStarted) -> None:
        self._add("run_started", run.run_id, run)

    def step_finished(self, run: RunStarted, observation: Observation) -> None:
        self._add("step_finished", run.run_id, observation)

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        self._add("cleanup_finished", run.run_id, observation)

    def run_finished(self, run: Run) -> None:
        self._add("run_finished", run.id, run)

    def of(self, run_id: str) -> list[tuple[str, Any]]:
        return [(hook, what) for hook, rid, what in self.events if rid == run_id]


class Broken(RunListener):
    """Fails in every hook."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def _fail(self) -> None:
        with self._lock:
            self.calls += 1
        raise RuntimeError("listener bug")

    def run_started(self, run: RunStarted) -> None:
        self._fail()

    def step_finished(self, run: RunStarted, observation: Observation) -> None:
        self._fail()

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        self._fail()

    def run_finished(self, run: Run) -> None:
        self._fail()


@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    Inventory.reset()
    Track.reset()
    yield
    Inventory.reset()


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return build(tmp_path, ENVS, *SCENARIOS)


def run(plan: Plan, *listeners: RunListener, concurrency: int = 4) -> list[ScenarioRuns]:
    return Runner(registry(), Redactor(), step_timeout=5, concurrency=concurrency, listeners=listeners).run(
        plan
    )


def assert_told_everything(recorder: Recorder, results: list[ScenarioRuns]) -> None:
    """Each run: started first, each step and cleanup observation in order, finished last with the Run."""
    runs = [r for result in results for r in result.runs]
    assert len(runs) == len(SCENARIOS) * 2
    for result in results:
        for r in result.runs:
            events = recorder.of(r.id)
            (first_hook, started), *middle, (last_hook, finished) = events
            assert first_hook == "run_started" and last_hook == "run_finished"
            assert isinstance(started, RunStarted)
            assert (started.spec, started.env, started.started_at) == (result.spec, r.env, r.started_at)
            assert started.planned == len(result.spec.steps) + len(result.spec.cleanup)
            assert finished is r
            steps = [obs for hook, obs in middle if hook == "step_finished"]
            cleanup = [obs for hook, obs in middle if hook == "cleanup_finished"]
            assert len(steps) + len(cleanup) == len(middle)
            # The very observations the run holds, in its order; every step is told before any cleanup.
            assert steps == list(r.observations) and all(
                a is b for a, b in zip(steps, r.observations, strict=True)
            )
            assert cleanup == list(r.cleanup) and all(a is b for a, b in zip(cleanup, r.cleanup, strict=True))
            assert [hook for hook, _ in middle] == ["step_finished"] * len(steps) + [
                "cleanup_finished"
            ] * len(cleanup)
    counts = Counter(hook for hook, _, _ in recorder.events)
    assert counts == {
        "run_started": len(runs),
        "run_finished": len(runs),
        "step_finished": sum(len(r.observations) for r in runs),
        "cleanup_finished": sum(len(r.cleanup) for r in runs),
    }


def test_a_listener_is_told_every_step_cleanup_step_and_undo_of_every_run(plan: Plan) -> None:
    recorder = Recorder()
    results = run(plan, recorder)
    assert_told_everything(recorder, results)
    undone = results[1]
    for r in undone.runs:
        assert [o.step for o in r.cleanup] == ["tidy", "undo.1"]  # the undo is told as a cleanup


@pytest.mark.parametrize("concurrency", [1, 2, 8])
def test_counts_are_consistent_at_any_concurrency(plan: Plan, concurrency: int) -> None:
    recorder = Recorder()
    results = run(plan, recorder, concurrency=concurrency)
    assert_told_everything(recorder, results)


def outcomes(results: list[ScenarioRuns]) -> list[tuple[str, str, str, Outcome, str | None]]:
    """What a run decided, without what differs between two runs of one plan (run ids, latencies)."""
    return [
        (r.scenario, r.environment, o.step, o.outcome, o.reason)
        for result in results
        for r in result.runs
        for o in (*r.observations, *r.cleanup)
    ]


def test_a_listener_that_raises_changes_nothing(plan: Plan, caplog: pytest.LogCaptureFixture) -> None:
    quiet = run(plan)
    Inventory.reset()
    broken, recorder = Broken(), Recorder()
    with caplog.at_level(logging.WARNING, logger="parityprobe.listeners"):
        loud = run(plan, broken, recorder)
    assert outcomes(loud) == outcomes(quiet)
    assert [to_record(f) for c in compare_all(loud) for f in c.findings] == [
        to_record(f) for c in compare_all(quiet) for f in c.findings
    ]
    # The listener after the broken one was still told everything; every failure was logged.
    assert_told_everything(recorder, loud)
    assert broken.calls == len(recorder.events)
    failures = [r for r in caplog.records if r.name == "parityprobe.listeners"]
    assert len(failures) == broken.calls and all(r.exc_info for r in failures)


def test_listeners_reach_every_listener_when_one_fails() -> None:
    first, second = Recorder(), Recorder()
    Listeners([first, Broken(), second]).run_finished(_a_run())
    assert [hook for hook, _, _ in first.events] == [hook for hook, _, _ in second.events] == ["run_finished"]


def test_the_pipeline_passes_listeners_to_its_runner(plan: Plan) -> None:
    recorder = Recorder()
    report = execute(plan, Redactor(), registry(), 5, listeners=(recorder,))
    finished = [what for hook, _, what in recorder.events if hook == "run_finished"]
    assert sorted(r.id for r in finished) == sorted(r.id for c in report.comparisons for r in c.runs)


def _a_run() -> Run:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return Run(
        "r", ScenarioSpec("s", "0" * 64), EnvironmentFacts("staging", Tier.STAGING), moment, moment, ()
    )
