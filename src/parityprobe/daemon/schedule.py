"""A scenario's schedule as an APScheduler trigger (times in UTC)."""

from __future__ import annotations

from typing import Any

from parityprobe.config.scenario import Schedule


def trigger_for(schedule: Schedule | None, default_every: int) -> Any:
    """The trigger that fires ``schedule``; a scenario without one runs every ``default_every`` seconds.

    Jitter delays each run by up to that many seconds (never earlier: APScheduler adds 0..jitter).
    """
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]  # ships no hints
    from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

    if schedule is None:
        return IntervalTrigger(seconds=default_every, timezone="UTC")
    jitter = int(schedule.jitter) if schedule.jitter else None
    if schedule.cron is not None:
        # from_crontab takes no jitter: the same five fields, by name (as the scenario loader checked them).
        minute, hour, day, month, day_of_week = schedule.cron.split()
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone="UTC",
            jitter=jitter,
        )
    return IntervalTrigger(seconds=int(schedule.every or default_every), timezone="UTC", jitter=jitter)


def describe(schedule: Schedule | None, default_every: int) -> str:
    """The schedule in words, for the daemon's log."""
    if schedule is None:
        return f"every {default_every}s (no schedule of its own)"
    when = f"cron {schedule.cron!r}" if schedule.cron is not None else f"every {schedule.every}s"
    return when + (f", jitter {schedule.jitter}s" if schedule.jitter else "")
