"""The daemon's parts on their own: the health endpoints over real HTTP, schedules as triggers, the kill
switch and the sliding-hour call budget (on a clock the test moves)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from parityprobe.config.scenario import Schedule
from parityprobe.daemon.controls import CallBudget, KillSwitch
from parityprobe.daemon.health import HealthServer
from parityprobe.daemon.schedule import describe, trigger_for

MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday


# --- health endpoints ------------------------------------------------------------------------------------


@pytest.fixture
def state() -> dict[str, object]:
    return {"ready": None, "metrics": None}


@pytest.fixture
def health(state: dict[str, object]) -> Iterator[str]:
    def readiness() -> str | None:
        value = state["ready"]
        if isinstance(value, Exception):
            raise value
        return value  # type: ignore[return-value]

    server = HealthServer("127.0.0.1", 0, readiness, lambda: state["metrics"]).start()  # type: ignore[arg-type,return-value]
    yield f"http://127.0.0.1:{server.port}"
    server.close()


def test_healthz_answers_while_the_process_lives(health: str) -> None:
    answer = httpx.get(f"{health}/healthz")
    assert (answer.status_code, answer.text) == (200, "ok\n")


def test_readyz_says_why_not(health: str, state: dict[str, object]) -> None:
    assert httpx.get(f"{health}/readyz").status_code == 200
    state["ready"] = "result store sqlite:///x.db: ping: database unavailable (OperationalError)"
    answer = httpx.get(f"{health}/readyz")
    assert answer.status_code == 503 and "database unavailable" in answer.text
    state["ready"] = RuntimeError("boom inside")
    answer = httpx.get(f"{health}/readyz")
    assert (answer.status_code, answer.text) == (503, "readiness check failed: RuntimeError\n")


def test_metrics_only_when_enabled(health: str, state: dict[str, object]) -> None:
    assert httpx.get(f"{health}/metrics").status_code == 404
    state["metrics"] = (b"parityprobe_up 1\n", "text/plain; version=0.0.4; charset=utf-8")
    answer = httpx.get(f"{health}/metrics")
    assert answer.status_code == 200 and answer.text == "parityprobe_up 1\n"
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert httpx.get(f"{health}/other").status_code == 404


# --- schedules --------------------------------------------------------------------------------------------


def fires(schedule: Schedule | None, count: int = 3, default_every: int = 600) -> list[datetime]:
    trigger = trigger_for(schedule, default_every)
    times: list[datetime] = []
    previous = None
    now = MONDAY_NOON
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        times.append(fire)
        previous, now = fire, fire
    return times


def test_a_crontab_with_day_names_fires_on_those_days() -> None:
    times = fires(Schedule(cron="0 3 * * sun"))
    assert [t.strftime("%a %H:%M") for t in times] == ["Sun 03:00"] * 3
    assert times[1] - times[0] == timedelta(days=7)


def test_an_interval_fires_every_period_and_without_a_schedule_the_default() -> None:
    times = fires(Schedule(every=900))
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=15)] * 2
    default = fires(None, default_every=120)
    assert default[1] - default[0] == timedelta(minutes=2)


def test_jitter_delays_but_never_advances_a_run() -> None:
    for _ in range(20):
        (fire,) = fires(Schedule(cron="*/10 * * * *", jitter=60), count=1)
        assert MONDAY_NOON <= fire <= MONDAY_NOON + timedelta(minutes=1)


def test_a_schedule_in_words() -> None:
    assert (
        describe(Schedule(cron="*/5 * * * mon-fri", jitter=30), 60) == "cron '*/5 * * * mon-fri', jitter 30s"
    )
    assert describe(None, 60) == "every 60s (no schedule of its own)"


# --- kill switch and budget ------------------------------------------------------------------------------


def test_the_kill_switch_follows_its_file(tmp_path: Path) -> None:
    switch = KillSwitch(tmp_path / "pause")
    assert switch.engaged() is None
    (tmp_path / "pause").touch()
    assert switch.engaged() == f"paused: the kill switch {tmp_path / 'pause'} exists"


@pytest.mark.parametrize(("value", "paused"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_pause_variable(value: str, paused: bool) -> None:
    switch = KillSwitch.from_environ(None, {"PARITYPROBE_PAUSED": value})
    assert (switch.engaged() is not None) is paused


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_is_a_sliding_hour_of_calls_made() -> None:
    clock = Clock()
    budget = CallBudget(10, clock)
    first = budget.reserve(6)
    assert first is not None and budget.reserve(5) is None  # 6 + 5 > 10: nothing taken
    budget.settle(first, 2)  # the run made fewer calls than it planned
    clock.now += 1800
    assert budget.reserve(8) is not None and budget.used() == 10
    assert budget.reserve(1) is None
    clock.now += 1800  # the first reservation is an hour old: it no longer counts
    assert budget.used() == 8 and budget.reserve(2) is not None


def test_no_budget_means_no_limit() -> None:
    budget = CallBudget(None)
    assert all(budget.reserve(1000) is not None for _ in range(10))
