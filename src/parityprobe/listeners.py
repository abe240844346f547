"""What the runner tells as it goes. Progress output, telemetry and the result store listen; the runner
knows none of them.

A listener that raises is logged and otherwise ignored: watching a run must never change its result.
Listeners are called from the environments' worker threads, possibly several at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from parityprobe.model import Observation, Run
from parityprobe.spec import EnvironmentFacts, ScenarioSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run that has begun: which scenario, where, and how many steps and cleanup steps it plans."""

    run_id: str
    spec: ScenarioSpec
    env: EnvironmentFacts
    started_at: datetime

    @property
    def planned(self) -> int:
        return len(self.spec.steps) + len(self.spec.cleanup)


class RunListener:
    """Base of listeners: every hook does nothing, so a listener overrides only what it needs."""

    def run_started(self, run: RunStarted) -> None:
        """A scenario has started in one environment."""

    def step_finished(self, run: RunStarted, observation: Observation) -> None:
        """One of the scenario's steps has an observation."""

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        """A cleanup step or an undo has an observation."""

    def run_finished(self, run: Run) -> None:
        """The run is complete: steps, cleanup steps and undos."""


class Listeners(RunListener):
    """Many listeners as one; each call reaches every listener even when one of them fails."""

    def __init__(self, listeners: Iterable[RunListener] = ()) -> None:
        self._listeners = tuple(listeners)

    def run_started(self, run: RunStarted) -> None:
        for listener in self._listeners:
            _safely(listener.run_started, run)

    def step_finished(self, run: RunStarted, observation: Observation) -> None:
        for listener in self._listeners:
            _safely(listener.step_finished, run, observation)

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        for listener in self._listeners:
            _safely(listener.cleanup_finished, run, observation)

    def run_finished(self, run: Run) -> None:
        for listener in self._listeners:
            _safely(listener.run_finished, run)


def _safely(hook: Callable[..., None], *args: object) -> None:
    try:
        hook(*args)
    except Exception:  # a broken listener is its own problem, never the run's
        log.warning("run listener %r failed", hook, exc_info=True)
