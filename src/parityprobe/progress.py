"""Progress on standard error while a run goes: one line per scenario and environment, steps done of planned
and the step now running. A :class:`~parityprobe.listeners.RunListener`; the runner does not know it.

Shown only on a terminal (a CI log or a redirected stream gets nothing, so reports stay clean), and never
with ``--quiet``. It prints names and counts only: scenario ids, environment names and step ids, which are
configuration, never results or secrets.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from parityprobe.listeners import RunListener, RunStarted
from parityprobe.model import Observation, Run


class ProgressDisplay(RunListener):
    """A live progress display; use it as a context manager around the run."""

    def __init__(self, stream: TextIO | None = None) -> None:
        console = Console(file=stream or sys.stderr, highlight=False, markup=False, emoji=False)
        self._progress = Progress(
            TextColumn("{task.fields[label]}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def run_started(self, run: RunStarted) -> None:
        label = f"{run.spec.id} · {run.env.name}"
        with self._lock:
            self._tasks[run.run_id] = self._progress.add_task(
                label, total=run.planned or None, label=label, current=""
            )

    def step_finished(self, run: RunStarted, observation: Observation) -> None:
        self._advance(run.run_id, observation)

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        self._advance(run.run_id, observation)

    def run_finished(self, run: Run) -> None:
        task = self._tasks.get(run.id)
        if task is not None:
            self._progress.update(task, current="done")

    def _advance(self, run_id: str, observation: Observation) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            self._progress.update(task, advance=1, current=observation.step)


def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """True when progress should show: not quiet, and standard error is a terminal."""
    target = stream or sys.stderr
    return not quiet and target.isatty()
