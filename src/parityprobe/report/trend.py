"""The trend over a store's history: what ``compare --store`` would have found at each point of a window.

For each point in time T, the runs stored in the window and started before T are paired exactly as
``compare --store`` pairs them (:func:`~parityprobe.store.pairing.pair_heads`: per scenario version, the
reference environment's latest run and each other environment's run nearest to it), compared, their findings
filtered by the accepted divergences in force on T's day (:mod:`parityprobe.report.divergences`), grouped by
cause (:mod:`parityprobe.report.causes`) and counted by severity, as a report's summary counts them.

The points (:func:`points`) are the ends of UTC days: each midnight after the window's start, then the
window's end itself (a day not over yet counts as it stands). A window under two days has a point per hour
instead, on the hour. A window so long that it would have more than :data:`MAX_POINTS` points takes a point
every few days (or hours), so a chart stays readable and a trend stays cheap. A point before the window's
first run is **left out**, not drawn as zero: nothing compared is not "no gaps".

Latency is judged on each point's compared runs alone: the store's latency history as it stood then is not
read (``compare --store`` reads today's), so a latency mismatch only that history shows is not in the trend.

Cost: the heads (id, scenario, digest, environment, start) of the window are read once; each run chosen at
some point is read whole once, however many points pair it; a comparison of the same runs is made once.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from parityprobe.compare.comparator import compare
from parityprobe.compare.explain import explain
from parityprobe.model import Comparison, Run, Severity
from parityprobe.report.causes import actions, group_causes
from parityprobe.report.divergences import Declaration, apply
from parityprobe.report.view import TrendPoint

if TYPE_CHECKING:
    from parityprobe.store.pairing import RunHead
    from parityprobe.store.store import ResultStore

MAX_POINTS = 90
# Below this, days are too few to show a trend: points are hours.
HOURLY_BELOW = timedelta(days=2)
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)


def points(since: datetime, until: datetime) -> tuple[datetime, ...]:
    """The points of a trend over ``[since, until)``, in UTC, oldest first: period boundaries after ``since``
    (midnights, or hours for a window under :data:`HOURLY_BELOW`), every ``k``-th one when there would be
    more than :data:`MAX_POINTS`, and ``until`` last. Empty when ``until`` is not after ``since``."""
    start, end = since.astimezone(UTC), until.astimezone(UTC)
    if end <= start:
        return ()
    unit = _HOUR if end - start < HOURLY_BELOW else _DAY
    step = unit * max(1, math.ceil((end - start) / unit / MAX_POINTS))
    if unit is _DAY:
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = start.replace(minute=0, second=0, microsecond=0)
    found: list[datetime] = []
    at = first + step
    while at < end:
        found.append(at)
        at += step
    found.append(end)
    return tuple(found)


def stored_trend(
    store_url: str,
    window: timedelta,
    scenario: str | None = None,
    environments: Sequence[str] | None = None,
    divergences: Sequence[Declaration] = (),
) -> tuple[TrendPoint, ...]:
    """For ``parityprobe report``: the :func:`trend` of the store at ``store_url`` over the last ``window``,
    what ``compare --store`` would have found day by day. StoreError when the store cannot be read."""
    from parityprobe.runner import utc_now
    from parityprobe.store import ResultStore  # SQLAlchemy: only when a store is used

    store = ResultStore(store_url)
    try:
        now = utc_now()
        return trend(store, now - window, now, scenario, environments, divergences)
    finally:
        store.close()


def trend(
    store: ResultStore,
    since: datetime,
    until: datetime,
    scenario: str | None = None,
    environments: Sequence[str] | None = None,
    divergences: Sequence[Declaration] = (),
) -> tuple[TrendPoint, ...]:
    """The trend of the runs ``store`` holds from ``since`` to ``until`` (of ``scenario``, in
    ``environments``, in that order, as ``compare --store`` takes them): one :class:`TrendPoint` per point
    of :func:`points` that has runs, oldest first. StoreError when the store cannot be read."""
    names = list(environments) if environments is not None else None
    heads = [h for h in store.run_heads(since, scenario, names) if h.started_at < until]
    history = _History(store, names)
    found: list[TrendPoint] = []
    starts = [head.started_at for head in heads]  # the store returns heads by start time
    for at in points(since, until):
        before = heads[: bisect.bisect_left(starts, at)]
        if not before:
            continue
        comparisons = history.compared(before)
        found.append(_point(at, comparisons, divergences))
    return tuple(found)


def _point(
    at: datetime, comparisons: tuple[Comparison, ...], divergences: Sequence[Declaration]
) -> TrendPoint:
    """The causes of ``comparisons`` at ``at``, with the divergences accepted on the period's last day."""
    findings = tuple(f for c in comparisons for f in c.findings)
    day = (at - timedelta(microseconds=1)).date()
    grouped = group_causes(apply(findings, divergences, day).counted, actions(comparisons))
    severities = Counter(cause.severity for cause in grouped)
    return TrendPoint(
        at=at,
        runs=sum(len(c.runs) for c in comparisons),
        causes=len(grouped),
        by_severity=MappingProxyType({s: severities[s] for s in Severity}),
    )


class _History:
    """Pairing and comparing at successive points, each run read whole once and each set of runs compared
    once. What a run's record alone tells (it was interrupted) and what reading tells (it was deleted since
    its head was read, by retention) is learnt once and holds for every later point."""

    def __init__(self, store: ResultStore, environments: list[str] | None) -> None:
        self._store = store
        self._environments = environments
        self._runs: dict[str, Run] = {}
        self._interrupted: set[str] = set()
        self._gone: set[str] = set()
        self._compared: dict[tuple[str, ...], Comparison] = {}

    def compared(self, heads: Sequence[RunHead]) -> tuple[Comparison, ...]:
        """The comparisons ``compare --store`` makes of these heads' runs; config drift explained across them
        as in every report."""
        chosen = self._paired(heads)
        comparisons = []
        for group in chosen:
            ids = tuple(head.id for head in group)
            comparison = self._compared.get(ids)
            if comparison is None:
                runs = tuple(self._runs[i] for i in ids)
                comparison = self._compared[ids] = compare(runs[0].spec, runs)
            comparisons.append(comparison)
        return explain(comparisons)

    def _paired(self, heads: Sequence[RunHead]) -> list[list[RunHead]]:
        from parityprobe.store.pairing import pair_heads  # SQLAlchemy's package: only with a store

        # Each pass either settles or learns a run to avoid or to forget, of finitely many: it ends.
        while True:
            live = [head for head in heads if head.id not in self._gone]
            chosen = pair_heads(live, self._environments, self._interrupted)
            wanted = [head.id for group in chosen for head in group if head.id not in self._runs]
            read = {run.id: run for run in self._store.runs_by_id(wanted)} if wanted else {}
            self._runs.update(read)
            gone = set(wanted) - set(read)
            interrupted = {i for i, run in read.items() if run.interrupted} - self._interrupted
            if not gone and not interrupted:
                return chosen
            self._gone |= gone
            self._interrupted |= interrupted
