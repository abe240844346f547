"""What a daemon's schedule did, as records: every time a scenario was due, it ran or it did not, and why.

Like a scheduler's job outcomes, these are data (kept in the store, counted in metrics), not log lines: an
SRE asking "why is there no run of forbidden-calls in production since 03:00" reads them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class ScheduleOutcome(enum.Enum):
    """What became of one due run."""

    RAN = "ran"
    SKIPPED_OVERLAP = "skipped_overlap"  # the previous run of the scenario was still going
    MISSED = "missed"  # due longer ago than the misfire grace time (the daemon was busy or down)
    PAUSED = "paused"  # the kill switch was on
    OVER_BUDGET = "over_budget"  # the environment's calls per hour would be exceeded
    FAILED = "failed"  # parityprobe itself failed to run it (logged with the reason)
    STOPPED = "stopped"  # the daemon stopped (or the kill switch came on) during the run
    RELOAD_REJECTED = "reload_rejected"  # SIGHUP found a broken scenario: the old schedule runs on
    CLEANUP_RESUMED = "cleanup_resumed"  # an interrupted run's undo, run when the daemon started


@dataclass(frozen=True, slots=True)
class ScheduleEvent:
    """One schedule event: when, where, which scenario ("" for the whole daemon), what, and why."""

    at: datetime
    environment: str
    scenario: str
    outcome: ScheduleOutcome
    detail: str = ""
