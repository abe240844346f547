"""The latency judge's history in real result stores (SQLite, and PostgreSQL as the ``postgres`` user): each
step's earlier latencies of the same decision, every repetition of a repeated step, oldest first, the runs
being compared left out; ``compare --store`` judges with it; a version-2 store gains the samples column."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from parityprobe.model import Category, JudgeOutcome, Observation, Outcome, Run, Tier
from parityprobe.pipeline import compare_stored
from parityprobe.runner import utc_now
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec
from parityprobe.store import ResultStore
from parityprobe.store.history import latency_history
from parityprobe.store.schema import SCHEMA_VERSION

SPEC = ScenarioSpec(
    "tokens", "d1", steps=(StepSpec("lookup", "vault.token_lookup"), StepSpec("read", "test.read"))
)
TIERS = {"staging": Tier.STAGING, "production": Tier.PRODUCTION}
NOW = utc_now()


def made(env: str, minutes_ago: float, lookup_ms: float, *, samples: tuple[float, ...] = (),
         outcome: Outcome = Outcome.ALLOWED) -> Run:  # fmt: skip
    at = NOW - timedelta(minutes=minutes_ago)
    run_id = f"{env}-{minutes_ago}"
    steps = (
        Observation("lookup", "vault.token_lookup", env, f"c-{run_id}-0", outcome, at, latency_ms=lookup_ms,
                    latency_samples_ms=samples),
        Observation("read", "test.read", env, f"c-{run_id}-1", Outcome.DENIED, at, latency_ms=2.0),
    )  # fmt: skip
    return Run(run_id, SPEC, EnvironmentFacts(env, TIERS[env]), at, at + timedelta(seconds=1), steps)


def test_history_holds_each_decision_oldest_first_with_every_repetition(url: str) -> None:
    store = ResultStore(url)
    try:
        store.write(made("staging", 30, 5.0))
        store.write(made("staging", 20, 6.0, samples=(6.0, 7.0, 5.5)))
        store.write(made("staging", 10, 9.0, outcome=Outcome.ERROR))  # no decision: no sample
        store.write(made("staging", 5, 4.0))
        store.write(made("production", 5, 40.0))
        history = latency_history(store, "tokens", NOW - timedelta(hours=1), exclude={"staging-5"})
        assert history.of("lookup", "staging", Outcome.ALLOWED) == (5.0, 6.0, 7.0, 5.5)
        assert history.of("lookup", "staging", Outcome.ERROR) == ()
        assert history.of("read", "staging", Outcome.DENIED) == (2.0, 2.0, 2.0)
        assert history.of("lookup", "production", Outcome.ALLOWED) == (40.0,)
        recent = latency_history(store, "tokens", NOW - timedelta(minutes=25), keep=2)
        assert recent.of("lookup", "staging", Outcome.ALLOWED) == (5.5, 4.0)  # the two most recent
    finally:
        store.close()


def test_compare_store_judges_latency_over_the_stored_history(url: str) -> None:
    rng = random.Random(7)
    store = ResultStore(url)
    try:
        for i in range(12):
            store.write(made("staging", 60 - i * 4, round(5 * rng.lognormvariate(0, 0.2), 3)))
            store.write(made("production", 59 - i * 4, round(50 * rng.lognormvariate(0, 0.2), 3)))
    finally:
        store.close()
    report = compare_stored(url, timedelta(hours=2), environments=["staging", "production"])
    (comparison,) = report.comparisons
    judged = {j.step: j for j in comparison.latency}
    assert judged["lookup"].outcome is JudgeOutcome.MISMATCH
    assert len(judged["lookup"].samples["production"]) == 12  # 11 earlier runs, then the compared one
    assert judged["read"].outcome is JudgeOutcome.NO_DIFFERENCE
    (finding,) = [f for f in comparison.findings if f.category is Category.LATENCY_MISMATCH]
    assert finding.step == "lookup" and "production's median latency" in finding.message


def test_a_version_2_store_gains_the_samples_column(url: str) -> None:
    ResultStore(url).ping()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE observations DROP COLUMN latency_samples"))
            conn.execute(text("UPDATE schema_version SET version = 2"))
    finally:
        engine.dispose()
    store = ResultStore(url)
    try:
        store.write(made("staging", 1, 5.0, samples=(5.0, 6.0)))
        assert latency_history(store, "tokens", NOW - timedelta(hours=1)).of(
            "lookup", "staging", Outcome.ALLOWED
        ) == (5.0, 6.0)
    finally:
        store.close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION == 3
    finally:
        engine.dispose()


@pytest.mark.parametrize("stored", ["[1, -2]", "not json", '{"a": 1}'])
def test_samples_that_are_not_latencies_are_a_store_error(url: str, stored: str) -> None:
    from parityprobe.errors import StoreError

    store = ResultStore(url)
    try:
        store.write(made("staging", 1, 5.0, samples=(5.0,)))
        with store.transaction("tamper") as conn:
            conn.execute(text("UPDATE observations SET latency_samples = :s"), {"s": stored})
        with pytest.raises(StoreError, match="staging-1: its latency samples are not a list of milliseconds"):
            latency_history(store, "tokens", NOW - timedelta(hours=1))
    finally:
        store.close()
