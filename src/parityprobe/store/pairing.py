"""Which stored runs compare with which: comparing after the fact (``compare --store``).

Daemons in different environments run the same scenario on their own schedules, so their runs never start
together. :func:`pair_runs` picks, for each scenario version, one run per environment: the latest run of the
reference environment (the first in the given environment order that ran it), and in every other
environment the run nearest in time to it. Runs are grouped by scenario id *and* scenario digest: a run of
an edited scenario is a different experiment, compared only with runs of the same text, and reported as its
own group rather than mixed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from parityprobe.model import Run
from parityprobe.spec import ScenarioSpec


def pair_runs(
    runs: Iterable[Run], environments: Sequence[str] | None = None
) -> list[tuple[ScenarioSpec, list[Run]]]:
    """For each (scenario, digest) among ``runs``: its spec and one run per environment, in environment order.

    ``environments`` orders the environments and chooses them (runs of others are left out); by default
    they are taken in the order they first appear in ``runs``. The first environment in that order that has
    runs of a group is its reference: its latest run is taken, and in each other environment the run whose
    start is nearest to that run's start (on a tie, the later run). Groups come ordered by scenario id, and
    the versions of one scenario newest first (by their reference run).
    """
    every = list(runs)
    order = (
        list(environments) if environments is not None else list(dict.fromkeys(r.environment for r in every))
    )
    groups: dict[tuple[str, str], dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in every:
        groups[(run.spec.id, run.spec.digest)][run.environment].append(run)
    paired: list[tuple[ScenarioSpec, list[Run]]] = []
    for by_env in groups.values():
        present = [env for env in order if env in by_env]
        if not present:
            continue
        reference = max(by_env[present[0]], key=lambda r: (r.started_at, r.id))
        chosen = [reference]
        for env in present[1:]:
            chosen.append(
                min(
                    by_env[env],
                    key=lambda r: (abs(r.started_at - reference.started_at), -r.started_at.timestamp(), r.id),
                )
            )
        paired.append((reference.spec, chosen))
    paired.sort(key=lambda pair: (pair[0].id, -pair[1][0].started_at.timestamp()))
    return paired
