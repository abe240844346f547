"""The daemon in this process, over the test probes, with its stores in SQLite files: due runs land in the
store, the kill switch and the budget hold runs back (recorded as such), a stop skips the steps left and
still cleans up, undos a crash left pending are resumed at start, a broken reload keeps the old plan, and
the schedule runs, skips overlapping runs and stops. The daemon as a real process is tested in
tests/integration/test_daemon.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.daemon.daemon import STOPPING, Daemon, DaemonSettings
from parityprobe.daemon.records import ScheduleEvent, ScheduleOutcome
from parityprobe.errors import InputError
from parityprobe.model import Outcome
from parityprobe.redact import Redactor
from parityprobe.secret import Secret
from parityprobe.store import ResultStore
from parityprobe.store.events import read_events
from parityprobe.store.journal import StoreJournal
from parityprobe.undo import Undo
from tests.plugins import Inventory, registry

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ENVIRONMENTS = """\
environments:
  staging:
    safety: {{allow_effects: [read, write]{budget}}}
"""
CREATES = """\
id: creates
steps:
  - {id: make, probe: test.create, with: {name: thing}}
  - {id: look, probe: test.echo}
"""
HOLDS = """\
id: holds
steps:
  - {id: make, probe: test.create, with: {name: held, hold: true}}
  - {id: after, probe: test.echo}
"""


@pytest.fixture(autouse=True)
def clean_inventory() -> Iterator[None]:
    Inventory.reset()
    yield
    Inventory.gate.set()  # a held create never outlives its test
    Inventory.reset()


def make_daemon(
    tmp_path: Path,
    *scenarios: str,
    budget: int | None = None,
    every: int = 3600,
    kill_switch: Path | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[Daemon, list[ScheduleEvent]]:
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    for index, text in enumerate(scenarios):
        (folder / f"{index:02d}.yaml").write_text(text)
    envs = tmp_path / "environments.yaml"
    envs.write_text(ENVIRONMENTS.format(budget=f", calls_per_hour: {budget}" if budget else ""))
    redactor, probes = Redactor(), registry()

    def load() -> Plan:
        return build_plan(load_environments(envs, redactor), load_scenarios([folder]), probes)

    settings = DaemonSettings(
        environments_file=envs,
        environment="staging",
        paths=(folder,),
        state_dir=tmp_path / "state",
        every=every,
        misfire_grace=60,
        kill_switch=kill_switch,
        step_timeout=15,
    )
    seen: list[ScheduleEvent] = []
    daemon = Daemon(settings, load(), load, redactor, probes, environ=environ or {}, on_event=seen.append)
    return daemon, seen


def stored_events(daemon: Daemon) -> list[tuple[ScheduleOutcome, str]]:
    return [(e.outcome, e.scenario) for e in read_events(daemon.store, EPOCH)]


def pending(daemon: Daemon) -> list[str]:
    return [e.undo.description for e in daemon.journal.pending()]


def test_a_due_run_lands_in_the_store_and_leaves_nothing_pending(tmp_path: Path) -> None:
    daemon, seen = make_daemon(tmp_path, CREATES)
    run = daemon.due("creates")
    assert run is not None and [o.outcome for o in run.observations] == [Outcome.ALLOWED, Outcome.ALLOWED]
    assert [r.id for r in daemon.store.runs(EPOCH)] == [run.id]
    assert Inventory.created == set() and pending(daemon) == []
    assert [e.outcome for e in seen] == [ScheduleOutcome.RAN]
    assert stored_events(daemon) == []  # a run is its own record; only what held it back is an event


def test_the_kill_switch_file_pauses_due_runs_and_is_recorded(tmp_path: Path) -> None:
    switch = tmp_path / "pause"
    daemon, _ = make_daemon(tmp_path, CREATES, kill_switch=switch)
    switch.touch()
    assert daemon.due("creates") is None
    switch.unlink()
    assert daemon.due("creates") is not None
    assert stored_events(daemon) == [(ScheduleOutcome.PAUSED, "creates")]
    assert len(daemon.store.runs(EPOCH)) == 1


def test_paused_by_the_environment_variable_for_the_whole_life(tmp_path: Path) -> None:
    daemon, _ = make_daemon(tmp_path, CREATES, environ={"PARITYPROBE_PAUSED": "1"})
    assert daemon.due("creates") is None and daemon.due("creates") is None
    assert stored_events(daemon) == [(ScheduleOutcome.PAUSED, "creates")] * 2
    assert Inventory.created == set()


def test_the_kill_switch_during_a_run_skips_the_steps_left_and_still_cleans_up(tmp_path: Path) -> None:
    switch = tmp_path / "pause"
    daemon, _ = make_daemon(tmp_path, HOLDS, kill_switch=switch)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(daemon.due("holds")))
    worker.start()
    wait_until(lambda: pending(daemon) != [])  # the create has recorded its undo and waits at the gate
    switch.touch()
    Inventory.gate.set()
    worker.join(timeout=30)
    (run,) = done
    assert run is not None
    make, after = run.observations  # type: ignore[attr-defined]
    assert make.outcome is Outcome.ALLOWED
    assert after.outcome is Outcome.SKIPPED and after.reason.startswith("paused: the kill switch")
    assert Inventory.created == set() and pending(daemon) == []  # the undo ran
    assert stored_events(daemon) == [(ScheduleOutcome.STOPPED, "holds")]


def test_a_run_over_the_hourly_budget_is_skipped_and_recorded(tmp_path: Path) -> None:
    daemon, _ = make_daemon(tmp_path, CREATES, budget=4)
    assert daemon.due("creates") is not None  # 2 planned, 3 made: the create, the echo and the undo
    assert daemon.budget.used() == 3
    assert daemon.due("creates") is None
    ((outcome, scenario, detail),) = [
        (e.outcome, e.scenario, e.detail) for e in read_events(daemon.store, EPOCH)
    ]
    assert (outcome, scenario) == (ScheduleOutcome.OVER_BUDGET, "creates")
    assert detail == "3 of 4 calls used in the last hour; this run plans 2"


def test_undos_a_crash_left_pending_are_resumed_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    dead = StoreJournal(ResultStore(f"sqlite:///{state / 'journal.sqlite'}"))
    Inventory.add("staging/left")
    dead.record(
        "deadrun", "staging", datetime.now(UTC), Undo("remove left", "test.remove", {"name": "staging/left"})
    )
    dead.record("other", "production", datetime.now(UTC), Undo("not ours", "test.remove", {"name": "x"}))
    daemon, _ = make_daemon(tmp_path, CREATES)
    daemon.run_once()
    assert "staging/left" not in Inventory.created
    assert pending(daemon) == ["not ours"]  # another environment's daemon resumes its own
    events = read_events(daemon.store, EPOCH)
    assert [e.outcome for e in events] == [ScheduleOutcome.CLEANUP_RESUMED]
    assert events[0].detail == "test.remove: allowed"
    assert [r.scenario for r in daemon.store.runs(EPOCH)] == ["creates"]


def test_a_failed_resumed_undo_stays_pending_for_the_next_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    dead = StoreJournal(ResultStore(f"sqlite:///{state / 'journal.sqlite'}"))
    dead.record(
        "deadrun", "staging", datetime.now(UTC), Undo("refused", "test.remove", {"name": "y", "refuse": True})
    )
    daemon, _ = make_daemon(tmp_path, CREATES)
    daemon.run_once()
    assert pending(daemon) == ["refused"]
    assert read_events(daemon.store, EPOCH)[0].detail == "test.remove: denied (refused)"


def test_a_broken_reload_is_rejected_and_the_old_plan_kept(tmp_path: Path) -> None:
    daemon, _ = make_daemon(tmp_path, CREATES)
    broken = tmp_path / "scenarios" / "00.yaml"
    broken.write_text("id: creates\nsteps:\n  - {id: make, probe: test.nothing}\n")
    assert daemon.reload() is False
    assert [s.id for s in daemon.plan.scenarios] == ["creates"]
    assert daemon.due("creates") is not None  # the old plan runs on
    ((outcome, detail),) = [(e.outcome, e.detail) for e in read_events(daemon.store, EPOCH)]
    assert outcome is ScheduleOutcome.RELOAD_REJECTED
    assert str(broken) in detail and ":3:" in detail and "test.nothing" in detail
    broken.write_text(HOLDS.replace("hold: true", "hold: false"))
    assert daemon.reload() is True
    assert [s.id for s in daemon.plan.scenarios] == ["holds"]
    assert daemon.due("creates") is None  # gone with the old file


def test_a_bad_start_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        make_daemon(tmp_path, "id: broken\nsteps: []\n")


def test_serve_runs_the_schedule_skips_overlaps_and_stops_cleanly(tmp_path: Path) -> None:
    daemon, seen = make_daemon(tmp_path, HOLDS, every=1)

    def drive() -> None:
        try:
            # The first run holds at the gate while the next ones fall due: they are skipped as overlapping.
            wait_until(lambda: any(e.outcome is ScheduleOutcome.SKIPPED_OVERLAP for e in seen))
            Inventory.gate.set()
            wait_until(lambda: len(daemon.store.runs(EPOCH)) >= 2)
        finally:
            daemon.stop()  # also when a wait failed: the test must end, and then fail below

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    daemon.serve()  # in the main thread, as the command runs it; returns once stopped
    driver.join(timeout=5)
    assert daemon.stopping() == STOPPING
    assert len(daemon.store.runs(EPOCH)) >= 2
    assert pending(daemon) == [] and Inventory.created == set()
    kinds = {kind for kind, _ in stored_events(daemon)}
    assert ScheduleOutcome.SKIPPED_OVERLAP in kinds
    assert daemon.readiness() == "the scheduler is not running"


def wait_until(condition: Callable[[], bool], deadline: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail (never hang) after a generous deadline."""
    end = datetime.now(UTC) + timedelta(seconds=deadline)
    while not condition():
        if datetime.now(UTC) > end:
            raise AssertionError("condition not met in time")
        threading.Event().wait(0.05)


def test_the_daemon_forgets_each_run_s_secrets_once_it_is_stored(tmp_path: Path) -> None:
    daemon, _ = make_daemon(
        tmp_path, "id: tokens\nsteps:\n  - {id: mint, probe: test.echo, with: {value: minted-value}}\n"
    )
    before = daemon.redactor.known()
    for _ in range(3):
        run = daemon.due("tokens")
        assert run is not None
        token = run.observations[0].outputs["token"]
        assert isinstance(token, Secret) and token.reveal() == "tok-minted-value"
    assert daemon.redactor.known() == before  # a months-long daemon does not keep every token it met
    (stored,) = {o.outputs["token"] for r in daemon.store.runs(EPOCH) for o in r.observations}
    assert "tok-minted-value" not in repr(stored)
