"""The daemon: one environment's scenarios on their schedules, every run kept in the result store.

Each environment runs its own daemon (production is often reachable only from inside production); the
comparison happens later, from the store they share (``parityprobe compare --store``).

- **Schedule**: APScheduler's ``BlockingScheduler`` in UTC, a job per scenario (its ``schedule``, else
  ``--every``), ``max_instances=1`` (a run still going when the next is due is *skipped_overlap*),
  ``coalesce`` (runs missed while busy or down collapse into one), an explicit ``misfire_grace_time`` (a run
  due longer ago than that is *missed*). What the schedule did besides running is a
  :class:`~parityprobe.daemon.records.ScheduleEvent`: logged, stored, counted.
- **Signals**: SIGTERM (and SIGINT) finish the step in progress, skip the rest, run the cleanups, store the
  runs, exit 0. SIGHUP reloads the environments file and the scenarios; a broken file is rejected with its
  located errors and the old schedule keeps running. Signal handlers only queue the signal; a control
  thread acts on it, so the scheduler is never changed from inside a handler.
- **Holding back**: the kill switch pauses all probing at once (:class:`KillSwitch`); the environment's
  ``safety.calls_per_hour`` bounds its probe calls (:class:`CallBudget`).
- **Nothing lost**: runs reach the store through its spool (:class:`~parityprobe.store.SpooledStore`); undos
  are journalled in a local SQLite file before each action, and the undos of runs a crash interrupted are
  run when the daemon starts again.
- **Never dies**: a due run that fails in parityprobe itself is a *failed* event; a target, SIEM or store
  that is down is an observation or a spooled run, never an exception out of a job.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from parityprobe.config.plan import Plan, PlannedScenario
from parityprobe.daemon.controls import CallBudget, KillSwitch
from parityprobe.daemon.records import ScheduleEvent, ScheduleOutcome
from parityprobe.daemon.schedule import describe, trigger_for
from parityprobe.errors import InputError, ParityProbeError, StoreError
from parityprobe.listeners import RunListener
from parityprobe.model import Outcome, Run
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner, utc_now
from parityprobe.spec import scenario_spec
from parityprobe.store import ResultStore, SpooledStore, StoreListener
from parityprobe.store.events import record_event
from parityprobe.store.journal import StoreJournal

log = logging.getLogger(__name__)

STOPPING = "stopped: the daemon is shutting down"
_RETENTION_JOB = "retention"
_READINESS_CACHE = 5.0  # seconds a store check answers /readyz before the store is asked again


@dataclass(frozen=True)
class DaemonSettings:
    """What ``parityprobe daemon`` was started with."""

    environments_file: Path
    environment: str
    paths: tuple[Path, ...]
    state_dir: Path
    store_url: str | None = None
    every: int = 3600
    misfire_grace: int = 300
    kill_switch: Path | None = None
    retention: int | None = None
    step_timeout: float = 30.0
    concurrency: int = 4
    allow_break_glass: bool = False


class Daemon:
    """One environment's daemon, from its checked ``plan`` (``load`` makes it again at each reload: an
    InputError, located, for bad input); then :meth:`serve` or :meth:`run_once`."""

    def __init__(
        self,
        settings: DaemonSettings,
        plan: Plan,
        load: Callable[[], Plan],
        redactor: Redactor,
        registry: ProbeRegistry,
        *,
        environ: Mapping[str, str],
        listeners: tuple[RunListener, ...] = (),
        on_event: Callable[[ScheduleEvent], None] = lambda event: None,
    ) -> None:
        self.settings = settings
        self.redactor = redactor
        self._load = load
        self.plan = plan
        self._scenarios = {s.id: s for s in self.plan.scenarios}
        state = settings.state_dir
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.journal = StoreJournal(ResultStore(f"sqlite:///{state / 'journal.sqlite'}"))
        self.store = ResultStore(settings.store_url or f"sqlite:///{state / 'results.db'}")
        self.spooled = SpooledStore(self.store, state / "spool")
        self.kill_switch = KillSwitch.from_environ(settings.kill_switch, dict(environ))
        self.budget = CallBudget(self.env.safety.calls_per_hour)
        self._on_event = on_event
        self._stop_reason: str | None = None
        self._active = 0
        self._idle = threading.Condition()
        self._control: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._scheduler: Any = None
        self._started = threading.Event()
        self._store_checked: tuple[float, str | None] = (float("-inf"), None)
        self.runner = Runner(
            registry,
            redactor,
            step_timeout=settings.step_timeout,
            concurrency=settings.concurrency,
            listeners=(StoreListener(self.spooled), *listeners),
            journal=self.journal,
            allow_break_glass=settings.allow_break_glass,
            stopping=self.stopping,
            forget_secrets=True,
        )

    @property
    def env(self) -> Any:
        return self.plan.environments[0]

    # --- the two ways to run ---------------------------------------------------------------------------

    def run_once(self) -> None:
        """Resume interrupted cleanups, then run every scenario once (as a due run: kill switch and budget
        apply), store, and return (``--once``, for a Kubernetes CronJob)."""
        self._start_up()
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="pp-once") as pool:
            list(pool.map(self.due, list(self._scenarios)))
        self._flush()

    def serve(self, on_ready: Callable[[], None] = lambda: None) -> None:
        """Run the schedule until SIGTERM or SIGINT; then finish, clean up, flush and return."""
        from apscheduler.events import (  # type: ignore[import-untyped]  # ships no hints
            EVENT_JOB_ERROR,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )
        from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]

        self._start_up()
        self._scheduler = BlockingScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.settings.misfire_grace,
            },
            # Threads start only when needed; room for scenarios a reload adds, so none waits for a worker.
            executors={"default": {"type": "threadpool", "max_workers": max(16, 2 * len(self._scenarios))}},
        )
        self._scheduler.add_listener(
            self._scheduler_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )
        self._schedule({})
        if self.settings.retention is not None:
            self._scheduler.add_job(
                self._retain, "interval", hours=1, id=_RETENTION_JOB, next_run_time=datetime.now(UTC)
            )
        # Signals reach only the main thread's handlers; a daemon served from another thread (an embedding
        # program) is stopped and reloaded by calling stop() and reload().
        in_main = threading.current_thread() is threading.main_thread()
        previous = {
            signum: signal.signal(signum, lambda signum, _frame: self._control.put(signum))
            for signum in ((signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if in_main else ())
        }
        control = threading.Thread(target=self._control_loop, name="pp-control", daemon=True)
        control.start()
        try:
            self._scheduler.add_job(self._started.set, id="started")  # runs at once: the loop is up
            on_ready()
            self._scheduler.start()  # blocks until the control thread shuts it down
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0)
        self._flush()
        log.info("daemon for %s stopped", self.env.name)

    # --- one due run ------------------------------------------------------------------------------------

    def due(self, scenario_id: str) -> Run | None:
        """Run one scenario now, unless the kill switch, the budget or a stop holds it back. Never raises."""
        planned = self._scenarios.get(scenario_id)
        if planned is None or self._stop_reason is not None:
            return None
        paused = self.kill_switch.engaged()
        if paused is not None:
            self._event(ScheduleOutcome.PAUSED, scenario_id, paused)
            return None
        calls = len(planned.steps) + len(planned.cleanup)
        reservation = self.budget.reserve(calls)
        if reservation is None:
            used, limit = self.budget.used(), self.budget.per_hour
            self._event(
                ScheduleOutcome.OVER_BUDGET,
                scenario_id,
                f"{used} of {limit} calls used in the last hour; this run plans {calls}",
            )
            return None
        with self._running():
            try:
                (result,) = self.runner.run(Plan(self.plan.environments_file, (self.env,), (planned,)))
            except Exception as exc:  # parityprobe's own failure: an event, never the daemon's end
                log.error("run of %s failed", scenario_id, exc_info=True)
                self._event(ScheduleOutcome.FAILED, scenario_id, f"{type(exc).__name__}: {exc}")
                return None
            # Still counted as running: a stop waits for this run's event and log line too.
            run = result.runs[0]
            self.budget.settle(reservation, calls_made(run))
            stopped = next((o.reason for o in run.observations if o.held_back), None)
            if stopped is not None:
                self._event(ScheduleOutcome.STOPPED, scenario_id, f"run {run.id}: {stopped}")
            else:
                self._on_event(ScheduleEvent(utc_now(), self.env.name, scenario_id, ScheduleOutcome.RAN))
            log.info("%s in %s: run %s, %d steps", scenario_id, self.env.name, run.id, len(run.observations))
            return run

    def stopping(self) -> str | None:
        """Why the steps not yet begun must not run (the daemon stops, the kill switch is on), or None."""
        return self._stop_reason or self.kill_switch.engaged()

    # --- control ----------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Load the environments file and scenarios again and reschedule what changed; a broken file is
        rejected (its located problems logged, a reload_rejected event) and the old schedule kept."""
        try:
            new = self._load()
        except (InputError, ParityProbeError) as exc:
            problems = [str(p) for p in exc.problems] if isinstance(exc, InputError) else [str(exc)]
            for problem in problems:
                log.error("reload rejected, the old schedule keeps running: %s", problem)
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self._event(ScheduleOutcome.RELOAD_REJECTED, "", problems[0] + more)
            return False
        old = self._scenarios
        self.plan = new
        self._scenarios = {s.id: s for s in new.scenarios}
        self.budget.per_hour = self.env.safety.calls_per_hour
        if self._scheduler is not None:
            self._schedule(old)
        log.info("reloaded: %d scenario(s) in %s", len(self._scenarios), self.env.name)
        return True

    def stop(self) -> None:
        """Stop after the steps in progress (what SIGTERM does)."""
        self._control.put(signal.SIGTERM)

    def readiness(self) -> str | None:
        """None when ready (the scheduler runs, the store answers), else why not; the store is asked at most
        every few seconds."""
        if self._scheduler is None or not self._scheduler.running:
            return "the scheduler is not running"
        checked_at, why = self._store_checked
        now = time.monotonic()
        if now - checked_at >= _READINESS_CACHE:
            try:
                self.store.ping()
                why = None
            except StoreError as exc:
                why = self.redactor.redact(str(exc))
            self._store_checked = (now, why)
        return why

    # --- inside -----------------------------------------------------------------------------------------

    def _start_up(self) -> None:
        """Before the first run: the undos interrupted runs left, and the runs waiting in the spool."""
        entries = self._safely(
            "read the undo journal", lambda: self.journal.pending(environment=self.env.name)
        )
        for obs in self.runner.resume(self.env, entries or []):
            self._event(ScheduleOutcome.CLEANUP_RESUMED, "", f"{obs.probe}: {obs.describe()}")
        self._safely("replay the spool", self.spooled.replay)

    def _flush(self) -> None:
        """Replay what the spool holds; what the store still cannot take stays there for the next start."""
        self._safely("replay the spool", self.spooled.replay)
        waiting = self.spooled.pending()
        if waiting:
            log.warning("%d run(s) wait in the spool %s for the store", waiting, self.spooled.spool_dir)

    def _schedule(self, old: Mapping[str, PlannedScenario]) -> None:
        """Add a job for each new or changed scenario, remove those of scenarios that are gone; unchanged
        scenarios keep their next run time."""
        for scenario_id in old.keys() - self._scenarios.keys():
            self._scheduler.remove_job(scenario_id)
        for scenario_id, planned in self._scenarios.items():
            before = old.get(scenario_id)
            if before is not None and scenario_spec(before).digest == scenario_spec(planned).digest:
                continue
            schedule = planned.source.scenario.schedule
            self._scheduler.add_job(
                self.due,
                trigger_for(schedule, self.settings.every),
                args=[scenario_id],
                id=scenario_id,
                name=scenario_id,
                replace_existing=True,
            )
            log.info(
                "scheduled %s in %s: %s", scenario_id, self.env.name, describe(schedule, self.settings.every)
            )

    def _control_loop(self) -> None:
        while True:
            signum = self._control.get()
            if signum == signal.SIGHUP:
                self.reload()
                continue
            log.info("daemon for %s stopping: finishing the steps in progress", self.env.name)
            self._stop_reason = STOPPING
            self._started.wait()
            self._scheduler.shutdown(wait=False)
            return

    def _scheduler_event(self, event: Any) -> None:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED

        if event.job_id not in self._scenarios:
            return
        # A job-submission event (max instances) carries every due time it skipped; the others, one.
        times = getattr(event, "scheduled_run_times", None) or [getattr(event, "scheduled_run_time", None)]
        due = ", ".join(str(t) for t in times)
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self._event(
                ScheduleOutcome.SKIPPED_OVERLAP, event.job_id, f"due {due}: the previous run is going"
            )
        elif event.code == EVENT_JOB_MISSED:
            grace = self.settings.misfire_grace
            self._event(ScheduleOutcome.MISSED, event.job_id, f"due {due}, more than {grace}s ago")
        else:
            self._event(ScheduleOutcome.FAILED, event.job_id, f"due {due}: {type(event.exception).__name__}")

    def _event(self, outcome: ScheduleOutcome, scenario: str, detail: str) -> None:
        event = ScheduleEvent(utc_now(), self.env.name, scenario, outcome, self.redactor.redact(detail))
        log.warning(
            "%s %s%s: %s", self.env.name, outcome.value, f" {scenario}" if scenario else "", event.detail
        )
        self._safely("record a schedule event", lambda: record_event(self.store, event))
        self._on_event(event)

    def _retain(self) -> None:
        retention = self.settings.retention
        if retention is not None:
            cutoff = utc_now() - timedelta(seconds=retention)
            deleted = self._safely("apply retention", lambda: self.store.retain(cutoff))
            log.info("retention: %s run(s) older than %s deleted", deleted, cutoff.isoformat())

    @contextmanager
    def _running(self) -> Iterator[None]:
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _safely(self, what: str, action: Callable[[], Any]) -> Any:
        """``action()``; a StoreError (or any failure) is logged, never raised: the daemon goes on."""
        try:
            return action()
        except Exception as exc:
            log.warning("could not %s: %s", what, self.redactor.redact(str(exc)))
            return None


def calls_made(run: Run) -> int:
    """The probe calls a run made: one per step and cleanup that acted (more for a step that waited)."""
    return sum(
        obs.attempts or 1 for obs in (*run.observations, *run.cleanup) if obs.outcome is not Outcome.SKIPPED
    )
