"""The SIEM wait phase against a scripted SIEM: one query per connector per poll for every pending id,
deadlines, Retry-After honoured, and a SIEM that is down, slow or throttling never giving a false verdict.

The SIEM here is a stand-in for a vendor's service (it cannot run here); the wait phase, the matching and
the evidence are parityprobe's own code, run as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import ClassVar, Literal

import pytest

from parityprobe.model import ErrorKind, EvidenceStatus
from parityprobe.redact import Redactor
from parityprobe.siem.connector import (
    ConnectorSettings,
    SiemEvent,
    SiemQuery,
    SiemThrottled,
    SiemUnavailable,
    correlation_ids_in,
    flatten,
    parse_time,
)
from parityprobe.siem.wait import EvidenceWait, Pending, matches

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def clock(self) -> datetime:
        return NOW + timedelta(seconds=self.now)


@dataclass
class ScriptedSiem:
    """What the SIEM answers at each poll: events visible from a time on, or a failure for a while."""

    time: FakeTime
    # (correlation id, fields, visible from monotonic second)
    events: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    # A failure to raise while time < until.
    failure: Callable[[], Exception] | None = None
    failing_until: float = 0.0
    queries: list[SiemQuery] = field(default_factory=list)

    def begin(self) -> None:
        pass

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        self.queries.append(query)
        if self.failure is not None and self.time.now < self.failing_until:
            raise self.failure()
        return [
            SiemEvent(cid, NOW + timedelta(seconds=visible), MappingProxyType(fields))
            for cid, fields, visible in self.events
            if cid in query.correlation_ids and visible <= self.time.now
        ]

    def close(self) -> None:
        pass


class ScriptedSettings(ConnectorSettings):
    name: ClassVar[str] = "scripted"
    type: Literal["scripted"] = "scripted"
    siem: ClassVar[ScriptedSiem]

    def connect(self) -> ScriptedSiem:
        return self.siem


def wait_for(siem: ScriptedSiem, *pending: Pending) -> EvidenceWait:
    ScriptedSettings.siem = siem
    waiter = EvidenceWait(
        {"audit": ScriptedSettings()},
        Redactor(),
        poll_interval=1.0,
        max_poll_interval=4.0,
        clock=siem.time.clock,
        monotonic=siem.time.monotonic,
        sleep=siem.time.sleep,
    )
    waiter.begin(["audit"])
    for item in pending:
        waiter.add(item)
    return waiter


def pending(cid: str, *, within: float = 10.0, expect: str = "present", **match: str) -> Pending:
    return Pending("step", 0, "audit", cid, expect, MappingProxyType(match), within, NOW, 0.0)


def test_every_pending_id_goes_into_one_query_per_poll_and_the_wait_ends_when_all_arrived() -> None:
    time = FakeTime()
    siem = ScriptedSiem(time, events=[("pp-r-a", {"type": "response"}, 2.0), ("pp-r-b", {}, 3.0)])
    evidence = wait_for(siem, pending("pp-r-a", type="response"), pending("pp-r-b")).wait()
    assert [e.status for e in evidence] == [EvidenceStatus.RECEIVED, EvidenceStatus.RECEIVED]
    assert all(q.correlation_ids == frozenset({"pp-r-a", "pp-r-b"}) for q in siem.queries[:2])
    # Polls at 0, 1, 2.5 (a is there), 4.75 (b is there): then nothing is left to wait for.
    assert len(siem.queries) == 4
    assert siem.queries[-1].correlation_ids == frozenset({"pp-r-b"})  # a settled: no longer asked for
    assert time.now < 10  # well before the deadline
    # Receipt by the SIEM's own event time; seen by the poll that found it.
    assert evidence[0].receipt_seconds == 2.0 and evidence[0].seen_after_seconds == 2.5
    assert evidence[0].holds is True


def test_an_event_that_never_comes_is_missing_only_after_a_search_that_began_past_its_deadline() -> None:
    time = FakeTime()
    siem = ScriptedSiem(time, events=[("pp-r-a", {"type": "request"}, 1.0)])
    (evidence,) = wait_for(siem, pending("pp-r-a", within=5, type="response")).wait()
    assert evidence.status is EvidenceStatus.MISSING and evidence.holds is False
    assert time.now >= 5 and siem.queries[-1].until >= NOW + timedelta(seconds=5)
    assert evidence.describe().startswith("missing (searched")


def test_absent_holds_when_nothing_came_and_breaks_at_once_when_something_did() -> None:
    time = FakeTime()
    quiet = wait_for(ScriptedSiem(time), pending("pp-r-a", within=3, expect="absent")).wait()
    assert quiet[0].status is EvidenceStatus.MISSING and quiet[0].holds is True
    time = FakeTime()
    noisy = ScriptedSiem(time, events=[("pp-r-a", {}, 1.0)])
    (evidence,) = wait_for(noisy, pending("pp-r-a", within=30, expect="absent")).wait()
    assert evidence.status is EvidenceStatus.RECEIVED and evidence.holds is False
    assert time.now < 30  # no need to wait for the deadline to know it broke


@pytest.mark.parametrize(
    "failure",
    [
        lambda: SiemUnavailable("connection refused", ErrorKind.UNREACHABLE),
        lambda: SiemUnavailable("no answer in 10s", ErrorKind.TIMEOUT),
        lambda: RuntimeError("the SDK fell over"),
    ],
)
def test_a_siem_down_past_the_deadline_gives_no_verdict_never_missing(
    failure: Callable[[], Exception],
) -> None:
    time = FakeTime()
    siem = ScriptedSiem(time, failure=failure, failing_until=1e9)
    (evidence,) = wait_for(siem, pending("pp-r-a", within=5)).wait()
    assert evidence.status is EvidenceStatus.NO_VERDICT and evidence.holds is None
    assert evidence.reason and evidence.describe().startswith("no verdict: ")


def test_a_siem_that_recovers_after_the_deadline_still_decides() -> None:
    time = FakeTime()
    siem = ScriptedSiem(
        time,
        events=[("pp-r-a", {}, 0.0)],
        failure=lambda: SiemUnavailable("502 from the proxy"),
        failing_until=6.0,
    )
    (evidence,) = wait_for(siem, pending("pp-r-a", within=5)).wait()
    assert evidence.status is EvidenceStatus.RECEIVED  # down until after the deadline: not a false gap


def test_a_throttling_siem_is_given_its_retry_after() -> None:
    time = FakeTime()
    siem = ScriptedSiem(
        time,
        events=[("pp-r-a", {}, 0.0)],
        failure=lambda: SiemThrottled("429 Too Many Requests", retry_after=7.0),
        failing_until=0.5,
    )
    (evidence,) = wait_for(siem, pending("pp-r-a", within=30)).wait()
    assert evidence.status is EvidenceStatus.RECEIVED
    assert len(siem.queries) == 2  # throttled at 0, asked again only once its 7 seconds had passed
    assert time.now >= 7.0


def test_a_match_filters_events_by_their_fields() -> None:
    event = SiemEvent("c", None, MappingProxyType({"request.path": "secret/data/billing/db", "error": "x"}))
    assert matches(event, {"request.path": "secret/data/*"})
    assert matches(event, {"error": "*"})
    assert not matches(event, {"request.path": "secret/data/payments/*"})
    assert not matches(event, {"request.operation": "*"})


def test_records_are_flattened_and_ids_found_as_whole_tokens() -> None:
    record = {
        "request": {"headers": {"x-correlation-id": ["pp-1-a"]}, "path": "p"},
        "n": 3,
        "b": True,
        "x": None,
    }
    assert flatten(record) == {
        "request.headers.x-correlation-id": "pp-1-a",
        "request.path": "p",
        "n": "3",
        "b": "true",
    }
    assert correlation_ids_in('{"id":"pp-1-a-2"} pp-1-b', ["pp-1-a", "pp-1-b"]) == ["pp-1-b"]
    assert parse_time("2026-11-22T09:12:43.49575593Z") == datetime(
        2026, 11, 22, 9, 12, 43, 495755, tzinfo=UTC
    )
    assert parse_time(1700000000000) == parse_time(1700000000) == datetime.fromtimestamp(1700000000, UTC)
    assert parse_time("not a time") is None
    assert parse_time(1e20) is None and parse_time(-1e20) is None and parse_time(float("nan")) is None
