"""The daemon's schedule events in the result store: runs skipped, missed, paused, over budget, failed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from parityprobe.daemon.records import ScheduleEvent, ScheduleOutcome
from parityprobe.store.schema import schedule_events
from parityprobe.store.store import ResultStore


def record_event(store: ResultStore, event: ScheduleEvent) -> None:
    """Keep ``event``; StoreError when the store cannot."""
    row = {
        "at": event.at.astimezone(UTC),
        "environment": event.environment,
        "scenario": event.scenario,
        "kind": event.outcome.value,
        "detail": event.detail,
    }
    with store.transaction(f"record schedule event {event.outcome.value}") as connection:
        connection.execute(schedule_events.insert(), row)


def read_events(store: ResultStore, since: datetime, environment: str | None = None) -> list[ScheduleEvent]:
    """The events at or after ``since`` (of one environment, when given), oldest first."""
    query = select(schedule_events).where(schedule_events.c.at >= since.astimezone(UTC))
    if environment is not None:
        query = query.where(schedule_events.c.environment == environment)
    with store.transaction("read schedule events") as connection:
        rows = connection.execute(query.order_by(schedule_events.c.at, schedule_events.c.id)).all()
    return [
        ScheduleEvent(
            row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC),
            row.environment,
            row.scenario,
            ScheduleOutcome(row.kind),
            row.detail,
        )
        for row in rows
    ]
