"""The latency judge's history: a scenario's earlier step latencies, read from the store's observation rows.

Only decisions are kept (allowed, denied, not found: an error's latency says nothing about the control), by
step, environment and decision, oldest first, at most the judge's ``max_samples`` most recent of each. A step
that ran with ``repeat: N`` contributes every repetition's latency.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Collection
from datetime import UTC, datetime
from types import MappingProxyType

from sqlalchemy import select

from parityprobe.compare.latency import HistoryKey, LatencyHistory
from parityprobe.compare.latency_judge import DEFAULT_SETTINGS
from parityprobe.errors import StoreError
from parityprobe.model import Outcome
from parityprobe.store.schema import observations, runs
from parityprobe.store.store import ResultStore

_DECISIONS = tuple(o.value for o in Outcome if o.is_verdict)


def latency_history(
    store: ResultStore,
    scenario: str,
    since: datetime,
    exclude: Collection[str] = (),
    keep: int = DEFAULT_SETTINGS.max_samples,
) -> LatencyHistory:
    """The latencies of ``scenario``'s steps in runs started at or after ``since``, leaving out the runs
    ``exclude`` names (those being compared, whose samples the comparison adds itself). StoreError when the
    store cannot be read or holds samples that are not latencies."""
    query = (
        select(
            runs.c.id,
            runs.c.environment,
            observations.c.step,
            observations.c.outcome,
            observations.c.latency_ms,
            observations.c.latency_samples,
        )
        .join(runs, runs.c.id == observations.c.run_id)
        .where(
            runs.c.scenario == scenario,
            runs.c.started_at >= since.astimezone(UTC),
            observations.c.outcome.in_(_DECISIONS),
        )
        .order_by(runs.c.started_at, runs.c.id, observations.c.seq)
    )
    if exclude:
        query = query.where(runs.c.id.notin_(list(exclude)))
    kept: dict[HistoryKey, deque[float]] = {}
    with store.transaction("read latency history") as connection:
        for run_id, environment, step, outcome, latency_ms, samples in connection.execute(query):
            values = (
                _samples(str(run_id), samples) if samples else [latency_ms] if latency_ms is not None else []
            )
            key = (str(step), str(environment), Outcome(outcome))
            kept.setdefault(key, deque(maxlen=keep)).extend(values)
    return LatencyHistory(MappingProxyType({key: tuple(values) for key, values in kept.items()}))


def _samples(run_id: str, text: str) -> list[float]:
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf for v in values
    ):
        raise StoreError(f"run {run_id}: its latency samples are not a list of milliseconds")
    return [float(v) for v in values]
