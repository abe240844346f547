"""Time as probes see it: ``ProbeContext.now()`` is the runner's injected clock; ``poll`` waits for a
condition within its budget and the step's deadline, and says how long and how often it asked."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from parityprobe.config.environments import Environment
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import ClientCache, ProbeContext, Timer
from parityprobe.probes.aws.identity import sts_moment
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from tests.plugins import build, registry

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ENVS = """\
environments:
  staging: {vars: {team: payments}}
  production: {vars: {team: payments}}
"""


class Ticking:
    """A clock that moves one second each time it is read, from any thread; remembers what it told."""

    def __init__(self) -> None:
        self._ticks = itertools.count()
        self._lock = threading.Lock()
        self.told: list[datetime] = []

    def __call__(self) -> datetime:
        with self._lock:
            moment = NOW + timedelta(seconds=next(self._ticks))
            self.told.append(moment)
            return moment


def test_now_and_every_timestamp_of_a_run_come_from_the_runner_s_clock(tmp_path: Path) -> None:
    clock = Ticking()
    plan = build(
        tmp_path,
        ENVS,
        "id: t\nsteps:\n  - {id: a, probe: test.track}\n  - {id: b, probe: test.track}\n"
        "cleanup:\n  - {id: c, probe: test.track}\n",
    )
    (result,) = Runner(registry(), Redactor(), clock=clock).run(plan)
    told = set(clock.told)
    for run in result.runs:
        assert run.started_at in told and run.finished_at in told
        for obs in (*run.observations, *run.cleanup):
            seen = datetime.fromisoformat(str(obs.outputs["now"]))  # what ctx.now() gave the probe
            assert seen in told and obs.started_at in told
            # One clock, read in order: the run starts, the step starts, the probe asks, the run ends.
            assert run.started_at < obs.started_at < seen < run.finished_at
        steps = [datetime.fromisoformat(str(o.outputs["now"])) for o in (*run.observations, *run.cleanup)]
        assert steps == sorted(steps)


def context(
    env: Environment,
    *,
    seconds: float = 60,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    clock: Callable[[], datetime] = lambda: NOW,
) -> ProbeContext:
    return ProbeContext(
        env,
        "pp-r-s",
        monotonic() + seconds,
        Timer(),
        Redactor(),
        ClientCache(),
        clock=clock,
        sleep=sleep,
        monotonic=monotonic,
    )


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    return build(tmp_path, ENVS, "id: t\nsteps:\n  - {id: a, probe: test.echo}\n").environments[0]


def holds_on(attempt: int) -> Callable[[], str | None]:
    """A condition that holds from the ``attempt``-th time it is asked (0: never)."""
    asked = itertools.count(1)
    return lambda: "done" if attempt and next(asked) >= attempt else None


def test_now_is_the_context_s_clock(env: Environment) -> None:
    assert context(env).now() == NOW
    clock = Ticking()
    ctx = context(env, clock=clock)
    assert [ctx.now(), ctx.now()] == clock.told == [NOW, NOW + timedelta(seconds=1)]


def test_poll_returns_the_value_once_the_condition_holds_waiting_with_backoff(env: Environment) -> None:
    slept: list[float] = []
    polled = context(env, sleep=slept.append).poll(holds_on(4), within=30, interval=0.2, backoff=1.5)
    assert (polled.value, polled.attempts) == ("done", 4)
    assert slept == pytest.approx([0.2, 0.3, 0.45])
    assert polled.waited_seconds >= 0


def test_poll_does_not_wait_when_the_condition_already_holds(env: Environment) -> None:
    slept: list[float] = []
    polled = context(env, sleep=slept.append).poll(holds_on(1), within=30)
    assert (polled.value, polled.attempts, slept) == ("done", 1, [])


def test_poll_waits_no_longer_than_max_interval_between_attempts(env: Environment) -> None:
    slept: list[float] = []
    context(env, sleep=slept.append).poll(holds_on(8), within=30, interval=1, backoff=3, max_interval=2)
    assert slept == [1, 2, 2, 2, 2, 2, 2]


@pytest.mark.parametrize(("within", "seconds"), [(0.2, 60), (60, 0.2)], ids=["budget", "deadline"])
def test_poll_gives_none_when_the_condition_never_holds_and_never_sleeps_past_its_limit(
    env: Environment, within: float, seconds: float
) -> None:
    overshoot: list[float] = []
    limit = 0.0

    def sleep(duration: float) -> None:
        # Every wait poll asks for ends by its limit: its budget, or the step's deadline if sooner.
        overshoot.append(time.monotonic() + duration - limit)
        time.sleep(min(duration, 0.005))  # a little real time passes, so the loop is not a busy spin

    ctx = context(env, seconds=seconds, sleep=sleep)
    limit = min(time.monotonic() + within, ctx.deadline)
    polled = ctx.poll(holds_on(0), within=within, interval=0.01)
    assert polled.value is None
    assert polled.attempts == len(overshoot) + 1 >= 2
    # A broken limit would show as a wait of up to max_interval (2s) past it; poll starts a moment after
    # ``limit`` was taken, which the margin allows for.
    assert max(overshoot) <= 0.05


def test_poll_through_the_runner_reports_what_it_saw(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        ENVS,
        "id: t\nsteps:\n  - {id: ready, probe: test.poll, with: {ready_at: 3}}\n"
        "  - {id: never, probe: test.poll, with: {ready_at: 0, within: 0.05}}\n",
    )
    (result,) = Runner(registry(), Redactor(), step_timeout=10).run(plan)
    for run in result.runs:
        ready, never = run.observations
        assert (ready.outcome, ready.outputs["value"], ready.outputs["attempts"]) == (
            Outcome.ALLOWED,
            "ready",
            "3",
        )
        assert (never.outcome, never.reason, never.outputs["value"]) == (Outcome.NOT_FOUND, "never held", "")
        assert int(str(never.outputs["attempts"])) >= 1


class FakeTime:
    """A clock and a sleep that makes it pass without waiting: what a test of ``poll`` needs."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def test_poll_keeps_time_by_the_context_so_a_fake_clock_is_enough(env: Environment) -> None:
    fake = FakeTime()
    polled = context(env, sleep=fake.sleep, monotonic=fake.monotonic).poll(
        holds_on(3), within=30, interval=0.2, backoff=1.5
    )
    assert polled.waited_seconds == pytest.approx(sum(fake.slept)) == pytest.approx(0.5)
    fake = FakeTime()
    never = context(env, sleep=fake.sleep, monotonic=fake.monotonic).poll(
        holds_on(0), within=0.5, interval=0.2, backoff=1.5
    )
    # 0.2s, then 0.3s: the budget is spent after three attempts.
    assert (never.value, never.attempts) == (None, 3)
    assert fake.slept == pytest.approx([0.2, 0.3])


def test_a_poll_that_runs_into_the_step_deadline_still_reports_its_own_verdict(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        ENVS,
        "id: t\nsteps:\n"
        "  - id: wait\n    probe: test.poll\n    timeout: 1\n"
        "    with: {ready_at: 0, within: 60, interval: 0.05, check: 0.3}\n",
    )
    (result,) = Runner(registry(), Redactor(), step_timeout=10).run(plan)
    for run in result.runs:
        (wait,) = run.observations
        assert wait.error_kind is not ErrorKind.TIMEOUT
        assert (wait.outcome, wait.reason) == (Outcome.NOT_FOUND, "never held")


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles", "UTC"])
def test_an_sts_timestamp_without_a_zone_is_utc_whatever_the_machine_s_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        naive = sts_moment(datetime(2026, 11, 30, 12, 0))
        aware = sts_moment(datetime(2026, 11, 30, 21, 0, tzinfo=timezone(timedelta(hours=9))))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert naive == datetime(2026, 11, 30, 12, 0, tzinfo=UTC) and naive.utcoffset() == timedelta(0)
    assert aware == naive and aware.utcoffset() == timedelta(0)


def test_a_wait_counts_until_the_seeing_attempt_began_not_its_latency(env: Environment) -> None:
    """A condition that held at the first look took 0s, however slow that request was: the latency varies
    with load, not with the change awaited; a later hold counts the attempts and pauses before it."""
    fake = FakeTime()

    def slow(attempt: int) -> Callable[[], str | None]:
        check = holds_on(attempt)

        def ask() -> str | None:
            fake.now += 2.0  # every request takes 2s
            return check()

        return ask

    ctx = context(env, sleep=fake.sleep, monotonic=fake.monotonic)
    at_once = ctx.poll(slow(1), within=30)
    assert at_once.attempts == 1 and at_once.waited_seconds == 0
    polled = ctx.poll(slow(2), within=30, interval=0.2)
    assert polled.attempts == 2 and polled.waited_seconds == pytest.approx(2.0 + 0.2)
