"""The wait phase: after a run's steps, what each environment's SIEM shows for the steps' expectations.

Every step with ``siem`` expectations adds one :class:`Pending` per expectation once it has acted. After
the run's steps (and cleanup), :meth:`EvidenceWait.wait` polls: each poll asks each connector ONE
question for all of its pending correlation ids at once, never one per id, then matches what came back.
It pauses ``poll_interval`` at first, 1.5 times longer each poll up to ``max_poll_interval``, never past the
next deadline, and at least as long as a throttling SIEM's Retry-After. It ends as soon as nothing is left
to decide:

- ``present`` and a matching event found: RECEIVED (settled at once; time to receipt recorded);
- ``absent`` and a matching event found: RECEIVED, which breaks the expectation (settled at once);
- a deadline passed: MISSING, but only from a successful poll that started after that deadline (so it
  searched the whole window); while the SIEM keeps failing, the expectation waits up to one more
  ``max_poll_interval`` (at least one more poll) and then has NO_VERDICT with the SIEM's last reason.

A SIEM that is down, slow or throttling therefore never yields a false MISSING, nor a false RECEIVED.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from parityprobe.model import Evidence, EvidenceStatus
from parityprobe.redact import Redactor
from parityprobe.siem.connector import (
    ConnectorSettings,
    SiemConnector,
    SiemEvent,
    SiemQuery,
    SiemThrottled,
    SiemUnavailable,
)

log = logging.getLogger(__name__)

_BACKOFF = 1.5
# Past a deadline, a SIEM that never answers is given up on after this many more longest pauses.
_GIVE_UP = 4


@dataclass(frozen=True, slots=True)
class Pending:
    """One expectation of one step that acted: what to look for, and by when."""

    step: str
    index: int
    connector: str
    correlation_id: str
    expect: str
    match: Mapping[str, str]
    within: float
    action_at: datetime  # wall clock, for the query window and the event times
    acted: float  # monotonic, for deadlines and the time until seen

    @property
    def deadline(self) -> float:
        return self.acted + self.within

    def evidence(
        self, status: EvidenceStatus, window_start: datetime, window_end: datetime, **found: Any
    ) -> Evidence:
        """This expectation's evidence: what was looked for, where, and what was ``found`` (events, times,
        reason, polls)."""
        return Evidence(
            step=self.step,
            index=self.index,
            connector=self.connector,
            correlation_id=self.correlation_id,
            expect=self.expect,
            match=MappingProxyType(dict(self.match)),
            status=status,
            action_at=self.action_at,
            window_start=window_start,
            window_end=window_end,
            **found,
        )


def matches(event: SiemEvent, match: Mapping[str, str]) -> bool:
    """Whether an event's fields satisfy a step's ``match``: each named field present, its value equal to
    the one given or fitting it as a shell pattern (``secret/data/*``); ``"*"`` asks only that it exists."""
    for name, wanted in match.items():
        value = event.fields.get(name)
        if value is None or not (value == wanted or fnmatch.fnmatchcase(value, wanted)):
            return False
    return True


@dataclass
class _Connection:
    """One connector of the run, its state across polls."""

    name: str
    settings: ConnectorSettings
    connector: SiemConnector | None = None
    polls: int = 0
    failure: str | None = None  # the last poll's failure (None: it answered)
    last_attempt: float | None = None  # when the last poll (or attempt to connect) started (monotonic)
    last_success: float | None = None  # when the last successful poll started (monotonic)
    not_before: float = 0.0  # a throttling SIEM's Retry-After, as a monotonic time


@dataclass
class _Found:
    events: int = 0
    event_at: datetime | None = None
    seen_after: float | None = None


@dataclass
class EvidenceWait:
    """The SIEM side of one run in one environment: connectors begun before the steps, the pending
    expectations the steps add, and the wait after them."""

    connectors: Mapping[str, ConnectorSettings]
    redactor: Redactor
    poll_interval: float = 2.0
    max_poll_interval: float = 30.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    pending: list[Pending] = field(default_factory=list)
    _connections: dict[str, _Connection] = field(default_factory=dict)

    def begin(self, names: Iterable[str]) -> None:
        """Connect the connectors the run's expectations name, before its first step (a connector that
        follows a stream notes where it stands). A connector that cannot be made now is tried again at the
        wait."""
        for name in dict.fromkeys(names):
            connection = _Connection(name, self.connectors[name])
            self._connections[name] = connection
            self._connect(connection)

    def add(self, pending: Pending) -> None:
        self.pending.append(pending)

    def wait(self) -> list[Evidence]:
        """Poll until every pending expectation is settled; their evidence, in the order they were added."""
        found: dict[int, _Found] = {}
        settled: dict[int, Evidence] = {}
        pause = self.poll_interval
        try:
            while len(settled) < len(self.pending):
                open_ = [i for i in range(len(self.pending)) if i not in settled]
                for name in sorted({self.pending[i].connector for i in open_}):
                    self._poll(name, [i for i in open_ if self.pending[i].connector == name], found, settled)
                self._settle_deadlines(found, settled)
                if len(settled) == len(self.pending):
                    break
                pause = self._pause(pause, [i for i in range(len(self.pending)) if i not in settled])
        finally:
            self.close()
        return [settled[i] for i in range(len(self.pending))]

    def close(self) -> None:
        for connection in self._connections.values():
            if connection.connector is not None:
                try:
                    connection.connector.close()
                except Exception as exc:  # closing must never cost the run its evidence
                    log.debug("closing SIEM connector %s: %s", connection.name, type(exc).__name__)
                connection.connector = None

    # --- one poll ---

    def _poll(
        self, name: str, indexes: list[int], found: dict[int, _Found], settled: dict[int, Evidence]
    ) -> None:
        connection = self._connections[name]
        now = self.monotonic()
        if now < connection.not_before:
            return  # the SIEM asked us to wait: its Retry-After is honoured, not hammered
        ids = frozenset(self.pending[i].correlation_id for i in indexes)
        since = min(self.pending[i].action_at for i in indexes)
        skew = timedelta(seconds=connection.settings.clock_skew_seconds)
        query = SiemQuery(ids, since - skew, self.clock() + skew)
        events = self._search(connection, query, now)
        if events is None:
            return
        for i in indexes:
            item = self.pending[i]
            hits = [e for e in events if e.correlation_id == item.correlation_id and matches(e, item.match)]
            if not hits:
                continue
            record = found.setdefault(i, _Found())
            record.events = len(hits)
            times = [e.time for e in hits if e.time is not None]
            record.event_at = min(times) if times else None
            if record.seen_after is None:
                record.seen_after = round(self.monotonic() - item.acted, 3)
            settled[i] = self._evidence(i, EvidenceStatus.RECEIVED, found, query.since)

    def _search(
        self, connection: _Connection, query: SiemQuery, started: float
    ) -> Sequence[SiemEvent] | None:
        connection.last_attempt = started
        if connection.connector is None:
            self._connect(connection)
            if connection.connector is None:
                return None
        connection.polls += 1
        try:
            events = connection.connector.search(query)
        except SiemThrottled as exc:
            connection.failure = f"throttled: {exc.reason}"
            if exc.retry_after is not None:
                connection.not_before = self.monotonic() + min(exc.retry_after, self.max_poll_interval * 4)
            return None
        except SiemUnavailable as exc:
            connection.failure = exc.reason
            return None
        except Exception as exc:  # a connector's bug or an SDK's surprise: no answer, never an absence
            connection.failure = f"{type(exc).__name__}: {self.redactor.redact(str(exc))[:200]}"
            return None
        connection.failure = None
        connection.last_success = started
        return events

    def _connect(self, connection: _Connection) -> None:
        try:
            connector = connection.settings.connect()
            connector.begin()
        except SiemUnavailable as exc:
            connection.failure = exc.reason
            return
        except Exception as exc:
            connection.failure = f"{type(exc).__name__}: {self.redactor.redact(str(exc))[:200]}"
            return
        connection.connector = connector

    # --- deadlines and pauses ---

    def _settle_deadlines(self, found: dict[int, _Found], settled: dict[int, Evidence]) -> None:
        now = self.monotonic()
        for i, item in enumerate(self.pending):
            if i in settled or now < item.deadline:
                continue
            connection = self._connections[item.connector]
            if connection.last_success is not None and connection.last_success >= item.deadline:
                settled[i] = self._evidence(i, EvidenceStatus.MISSING, found, None)
                continue
            tried = connection.last_attempt is not None and connection.last_attempt >= item.deadline
            grace = item.deadline + self.max_poll_interval
            if (tried and now >= grace) or now >= grace + _GIVE_UP * self.max_poll_interval:
                settled[i] = self._evidence(i, EvidenceStatus.NO_VERDICT, found, None)

    def _pause(self, pause: float, open_: list[int]) -> float:
        """Sleep until the next poll is due; the next pause."""
        now = self.monotonic()
        wait = pause
        upcoming = [self.pending[i].deadline - now for i in open_ if self.pending[i].deadline > now]
        if upcoming:
            wait = min(wait, max(0.05, min(upcoming)))
        throttled = [
            c.not_before - now for c in self._connections.values() if c.not_before > now and c.failure
        ]
        if throttled:
            wait = max(wait, min(throttled))
        self.sleep(wait)
        return min(pause * _BACKOFF, self.max_poll_interval)

    def _evidence(
        self, i: int, status: EvidenceStatus, found: dict[int, _Found], since: datetime | None
    ) -> Evidence:
        item = self.pending[i]
        connection = self._connections[item.connector]
        record = found.get(i, _Found())
        skew = timedelta(seconds=connection.settings.clock_skew_seconds)
        return item.evidence(
            status,
            since if since is not None else item.action_at - skew,
            self.clock(),
            events=record.events,
            event_at=record.event_at,
            seen_after_seconds=record.seen_after,
            reason=connection.failure if status is EvidenceStatus.NO_VERDICT else None,
            polls=connection.polls,
        )


def no_verdict(item: Pending, reason: str, clock: Callable[[], datetime]) -> Evidence:
    """The evidence of an expectation whose step did not act (skipped, or no verdict of its own)."""
    return item.evidence(EvidenceStatus.NO_VERDICT, item.action_at, clock(), reason=reason)
