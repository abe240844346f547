"""Pairing stored runs on their heads: each rule of :func:`pair_heads` on its own, the same choice as an
independent brute-force reading of the rules over arbitrary heads, and :func:`pair_runs` choosing exactly
what :func:`pair_heads` chooses."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from parityprobe.model import Run, Tier
from parityprobe.spec import EnvironmentFacts, ScenarioSpec
from parityprobe.store import RunHead, pair_heads, pair_runs

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def head(
    env: str, seconds: float, scenario: str = "s", digest: str = "d1", run_id: str | None = None
) -> RunHead:
    return RunHead(run_id or f"r{next(_ids):05d}", scenario, digest, env, T0 + timedelta(seconds=seconds))


def ids(paired: list[list[RunHead]]) -> list[list[str]]:
    return [[h.id for h in chosen] for chosen in paired]


def test_the_reference_is_the_first_environments_latest_run_and_the_others_the_nearest() -> None:
    staging = [head("staging", 0), head("staging", 100), head("staging", 200)]
    production = [head("production", 90), head("production", 150), head("production", 400)]
    (chosen,) = pair_heads([*staging, *production], ["staging", "production"])
    assert chosen == [staging[2], production[1]]  # 150s is 50s from 200s; 400s is 200s away
    (chosen,) = pair_heads([*staging, *production], ["production", "staging"])
    assert chosen == [production[2], staging[2]]


def test_a_tie_in_distance_goes_to_the_later_run_and_a_tie_in_time_to_the_smaller_id() -> None:
    reference = head("staging", 1010)
    before, after = head("dev", 1000), head("dev", 1020)
    (chosen,) = pair_heads([before, after, reference], ["staging", "dev"])
    assert chosen == [reference, after]
    # Two reference runs at one moment: the larger id is the latest; two others at one moment: the smaller.
    twins = [head("staging", 50, run_id="a"), head("staging", 50, run_id="b")]
    others = [head("dev", 60, run_id="y"), head("dev", 60, run_id="x")]
    (chosen,) = pair_heads([*twins, *others], ["staging", "dev"])
    assert [h.id for h in chosen] == ["b", "x"]


def test_versions_of_a_scenario_are_groups_of_their_own_newest_first_and_scenarios_by_id() -> None:
    old = [head("staging", 10, digest="d-old"), head("production", 12, digest="d-old")]
    new = [head("staging", 500, digest="d-new"), head("production", 20, digest="d-new")]
    other = [head("staging", 5, scenario="a-first")]
    paired = pair_heads([*old, *new, *other], ["staging", "production"])
    assert ids(paired) == [[other[0].id], [new[0].id, new[1].id], [old[0].id, old[1].id]]


def test_environments_choose_and_order_and_a_group_without_them_is_left_out() -> None:
    runs = [head("staging", 0), head("production", 1), head("dev", 2), head("dev", 3, scenario="dev-only")]
    (chosen,) = pair_heads(runs, ["production", "staging"])
    assert [h.environment for h in chosen] == ["production", "staging"]
    # The reference is the first *present* environment: missing ones are skipped, not fatal.
    (chosen,) = pair_heads(runs[1:3], ["staging", "dev", "production"])
    assert [h.environment for h in chosen] == ["dev", "production"]
    assert pair_heads(runs, []) == []


def test_by_default_environments_come_in_the_order_they_first_appear() -> None:
    # production appears first (in another scenario): it is the reference of scenario s too.
    runs = [head("production", 0, scenario="x"), head("staging", 1), head("production", 2)]
    assert ids(pair_heads(runs)) == [[runs[2].id, runs[1].id], [runs[0].id]]


# --- against a brute-force reading of the rules ------------------------------------------------------------


def brute(heads: Sequence[RunHead], environments: Sequence[str] | None) -> list[list[str]]:
    """The rules read literally, by sorting instead of max/min, one group at a time."""
    order = list(environments) if environments is not None else []
    if environments is None:
        for h in heads:
            if h.environment not in order:
                order.append(h.environment)
    # Versions whose reference runs started together keep the order they first appear in.
    groups = list(dict.fromkeys((h.scenario, h.digest) for h in heads))
    out: list[tuple[tuple[str, float], list[str]]] = []
    for scenario, digest in groups:
        members = [h for h in heads if (h.scenario, h.digest) == (scenario, digest)]
        present = [env for env in order if any(h.environment == env for h in members)]
        if not present:
            continue
        latest_first = sorted(
            (h for h in members if h.environment == present[0]), key=lambda h: (h.started_at, h.id)
        )
        reference = latest_first[-1]
        chosen = [reference.id]
        for env in present[1:]:
            candidates = [h for h in members if h.environment == env]
            distance = min(abs((h.started_at - reference.started_at).total_seconds()) for h in candidates)
            nearest = [
                h
                for h in candidates
                if abs((h.started_at - reference.started_at).total_seconds()) == distance
            ]
            latest = max(h.started_at for h in nearest)
            chosen.append(min(h.id for h in nearest if h.started_at == latest))
        out.append(((scenario, -reference.started_at.timestamp()), chosen))
    return [chosen for _, chosen in sorted(out, key=lambda item: item[0])]


HEADS = st.lists(
    st.builds(
        RunHead,
        id=st.text("abcdef", min_size=1, max_size=4),
        scenario=st.sampled_from(["s1", "s2"]),
        digest=st.sampled_from(["d1", "d2"]),
        environment=st.sampled_from(["staging", "production", "dev"]),
        started_at=st.integers(0, 40).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    max_size=25,
    unique_by=lambda h: h.id,
)
ORDERS = st.none() | st.permutations(["staging", "production", "dev"]).flatmap(
    lambda envs: st.integers(0, 3).map(lambda n: envs[:n])
)


@settings(max_examples=300, deadline=None)
@given(HEADS, ORDERS)
def test_pairing_chooses_what_the_rules_read_literally_choose(
    heads: list[RunHead], environments: list[str] | None
) -> None:
    assert ids(pair_heads(heads, environments)) == brute(heads, environments)


def run_of(h: RunHead) -> Run:
    return Run(h.id, ScenarioSpec(h.scenario, h.digest), EnvironmentFacts(h.environment, Tier.STAGING),
               h.started_at, h.started_at + timedelta(seconds=1), ())  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(HEADS, ORDERS)
def test_pairing_runs_chooses_what_pairing_their_heads_chooses(
    heads: list[RunHead], environments: list[str] | None
) -> None:
    runs = [run_of(h) for h in heads]
    paired = pair_runs(runs, environments)
    assert [[r.id for r in chosen] for _, chosen in paired] == ids(pair_heads(heads, environments))
    assert all(spec == chosen[0].spec for spec, chosen in paired)
    assert [RunHead.of(r) for r in runs] == heads


def test_an_interrupted_run_is_chosen_only_when_its_environment_has_no_other() -> None:
    staging = [head("staging", 100), head("staging", 200)]
    production = [head("production", 190), head("production", 210)]
    heads = [*staging, *production]
    # The latest staging run and the production run nearest it were stopped midway (a daemon restart).
    avoid = {staging[1].id, production[1].id}
    (chosen,) = pair_heads(heads, ["staging", "production"], avoid)
    assert chosen == [staging[0], production[0]]
    (chosen,) = pair_heads([staging[1], *production], ["staging", "production"], avoid)
    assert chosen == [staging[1], production[0]]  # staging has nothing else: it is compared, inconclusive
