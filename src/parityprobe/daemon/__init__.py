"""The daemon: each environment's scenarios on their schedules, results kept in the shared store.

- :mod:`~parityprobe.daemon.daemon`: :class:`Daemon` (schedule, signals, due runs, reload, stop);
- :mod:`~parityprobe.daemon.controls`: the kill switch and the hourly call budget;
- :mod:`~parityprobe.daemon.schedule`: a scenario's schedule as a trigger;
- :mod:`~parityprobe.daemon.records`: what the schedule did, as records;
- :mod:`~parityprobe.daemon.health`: ``/healthz``, ``/readyz`` and ``/metrics``.

Only :mod:`records` is imported here: the rest needs SQLAlchemy and APScheduler, loaded when a daemon starts.
"""

from __future__ import annotations

from parityprobe.daemon.records import ScheduleEvent, ScheduleOutcome

__all__ = ["ScheduleEvent", "ScheduleOutcome"]
