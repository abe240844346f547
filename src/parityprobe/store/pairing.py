"""Which stored runs compare with which: comparing after the fact (``compare --store``).

Daemons in different environments run the same scenario on their own schedules, so their runs never start
together. :func:`pair_heads` picks, for each scenario version, one run per environment: the latest run of the
reference environment (the first in the given environment order that ran it), and in every other
environment the run nearest in time to it. Runs are grouped by scenario id *and* scenario digest: a run of
an edited scenario is a different experiment, compared only with runs of the same text, and reported as its
own group rather than mixed in.

Pairing needs five facts of a run, not the run: it works on :class:`RunHead` rows, so a store holding a day
of runs from daemons probing every few minutes reads tens of thousands of small rows, pairs them, and then
reads back only the few chosen runs whole (:func:`read_paired`). :func:`pair_runs` applies the same rules to
runs already in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from parityprobe.errors import StoreError
from parityprobe.model import Run
from parityprobe.spec import ScenarioSpec

if TYPE_CHECKING:
    from parityprobe.store.store import ResultStore

# A run may be deleted (retention, by a daemon) between reading heads and reading the chosen runs: pairing
# is then done again on what is left, this many times at most.
_READ_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RunHead:
    """What pairing needs of a stored run: its id, scenario id and digest, environment and start time."""

    id: str
    scenario: str
    digest: str
    environment: str
    started_at: datetime

    @classmethod
    def of(cls, run: Run) -> RunHead:
        return cls(run.id, run.scenario, run.spec.digest, run.environment, run.started_at)


def pair_heads(
    heads: Iterable[RunHead], environments: Sequence[str] | None = None, avoid: Set[str] = frozenset()
) -> list[list[RunHead]]:
    """For each (scenario, digest) among ``heads``: one run per environment, in environment order.

    Runs whose ids are in ``avoid`` (interrupted runs: stopped or paused midway) are chosen only when their
    environment has no other run of the group: a daemon's restart must not turn the next comparison
    inconclusive while a complete run is there to compare.

    ``environments`` orders the environments and chooses them (runs of others are left out); by default
    they are taken in the order they first appear in ``heads``. The first environment in that order that
    has runs of a group is its reference: its latest run is taken, and in each other environment the run
    whose start is nearest to that run's start (on a tie, the later run). Groups come ordered by scenario
    id, and the versions of one scenario newest first (by their reference run).
    """
    every = list(heads)
    order = (
        list(environments) if environments is not None else list(dict.fromkeys(h.environment for h in every))
    )
    groups: dict[tuple[str, str], dict[str, list[RunHead]]] = defaultdict(lambda: defaultdict(list))
    for head in every:
        groups[(head.scenario, head.digest)][head.environment].append(head)
    for by_env in groups.values():
        for env, candidates in by_env.items():
            by_env[env] = [h for h in candidates if h.id not in avoid] or candidates
    paired: list[list[RunHead]] = []
    for by_env in groups.values():
        present = [env for env in order if env in by_env]
        if not present:
            continue
        reference = max(by_env[present[0]], key=lambda h: (h.started_at, h.id))
        chosen = [reference]
        for env in present[1:]:
            chosen.append(
                min(
                    by_env[env],
                    key=lambda h: (abs(h.started_at - reference.started_at), -h.started_at.timestamp(), h.id),
                )
            )
        paired.append(chosen)
    paired.sort(key=lambda chosen: (chosen[0].scenario, -chosen[0].started_at.timestamp()))
    return paired


def pair_runs(
    runs: Iterable[Run], environments: Sequence[str] | None = None
) -> list[tuple[ScenarioSpec, list[Run]]]:
    """:func:`pair_heads` over runs in memory: for each (scenario, digest), its spec (the reference run's)
    and the chosen runs, in environment order."""
    by_id = {run.id: run for run in runs}
    interrupted = {run.id for run in by_id.values() if run.interrupted}
    paired = pair_heads((RunHead.of(run) for run in by_id.values()), environments, interrupted)
    return [(by_id[chosen[0].id].spec, [by_id[head.id] for head in chosen]) for chosen in paired]


def read_paired(
    store: ResultStore,
    since: datetime,
    scenario: str | None = None,
    environments: Sequence[str] | None = None,
) -> list[tuple[ScenarioSpec, list[Run]]]:
    """The stored runs started at or after ``since`` (of ``scenario``, in ``environments``), paired by
    :func:`pair_heads`: the heads are read and paired, then only the chosen runs are read whole.
    StoreError when the store cannot be read."""
    names = list(environments) if environments is not None else None
    heads = store.run_heads(since, scenario, names)
    # Whether a run was interrupted is in its record: learnt as chosen runs are read, then paired again.
    interrupted: set[str] = set()
    deleted = 0
    while True:
        paired = pair_heads(heads, names, interrupted)
        wanted = [head.id for chosen in paired for head in chosen]
        found = {run.id: run for run in store.runs_by_id(wanted)}
        if len(found) < len(set(wanted)):
            deleted += 1
            if deleted >= _READ_ATTEMPTS:
                raise StoreError(f"{store.where}: runs kept being deleted while they were read; try again")
            heads = store.run_heads(since, scenario, names)
            continue
        newly = {run.id for run in found.values() if run.interrupted} - interrupted
        if not newly:
            return [(found[chosen[0].id].spec, [found[head.id] for head in chosen]) for chosen in paired]
        interrupted |= newly
