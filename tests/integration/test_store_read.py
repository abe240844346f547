"""Reading the result store for ``compare --store`` against real databases (SQLite in a temporary file,
the ``postgres`` fixture's PostgreSQL): run heads are the runs' own heads, whatever the filter; runs read
by id come back whole, in the order asked, across chunk boundaries; pairing on heads then reading the
chosen runs chooses what pairing every run read whole chooses; SQLite finds heads by the start-time index."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL

from parityprobe.errors import StoreError
from parityprobe.grant import Grant
from parityprobe.lab.postgres import PostgresServer
from parityprobe.lab.servers import free_port
from parityprobe.model import Observation, Outcome, Run, Tier
from parityprobe.secret import Secret
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec
from parityprobe.store import ResultStore, RunHead, pair_runs, read_paired
from parityprobe.store.schema import metadata
from tests.postgres_support import admin

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
TIERS = {"staging": Tier.STAGING, "production": Tier.PRODUCTION, "dev": Tier.DEVELOPMENT}


@pytest.fixture(scope="module")
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    name = "read_" + secrets.token_hex(4)
    with admin(postgres) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = URL.create("postgresql+psycopg", username=postgres.admin_user,
                     password=postgres.admin_password.reveal(), host=postgres.host, port=postgres.port,
                     database=name)  # fmt: skip
    yield url.render_as_string(hide_password=False)
    with admin(postgres) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultStore]:
    """An empty store: a new SQLite file, or the module's PostgreSQL database with every table dropped."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        engine = create_engine(url)
        try:
            metadata.drop_all(engine)
        finally:
            engine.dispose()
    store = ResultStore(url)
    yield store
    store.close()


def made(scenario: str, env: str, seconds: float, digest: str = "d1", token: str = "") -> Run:
    """A run of two steps (a login with a grant, a refused read); ``token`` as a secret output."""
    at = T0 + timedelta(seconds=seconds)
    run_id = secrets.token_hex(6)
    spec = ScenarioSpec(
        scenario, digest, steps=(StepSpec("login", "test.login"), StepSpec("read", "test.read"))
    )
    outputs = {"token": Secret(token, "token")} if token else {}
    steps = (
        Observation("login", "test.login", env, f"c-{run_id}-0", Outcome.ALLOWED, at, latency_ms=4.5,
                    grant=Grant(ttl_seconds=3600, policies=frozenset({"default"})), outputs=outputs),
        Observation("read", "test.read", env, f"c-{run_id}-1", Outcome.DENIED, at + timedelta(seconds=1),
                    reason="permission denied", latency_ms=2.0),
    )  # fmt: skip
    facts = EnvironmentFacts(env, TIERS[env], {"team": "payments"})
    return Run(run_id, spec, facts, at, at + timedelta(seconds=2), steps)


def fill(store: ResultStore) -> list[Run]:
    runs = [
        *(made("alpha", "staging", s) for s in (0, 100, 200, 1010)),
        *(made("alpha", "production", s) for s in (90, 230, 400)),
        *(made("alpha", "dev", s) for s in (1000, 1020)),
        made("alpha", "staging", 50, digest="d2"),
        made("alpha", "production", 60, digest="d2"),
        *(made("beta", env, s) for env, s in (("production", 5), ("staging", 7), ("staging", 3000))),
    ]
    for run in runs:
        store.write(run)
    return runs


def by_start(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (r.started_at, r.id))


FILTERS: list[tuple[datetime, str | None, list[str] | None]] = [
    (EPOCH, None, None),
    (T0 + timedelta(seconds=200), None, None),
    (EPOCH, "alpha", None),
    (EPOCH, None, ["production", "dev"]),
    (T0 + timedelta(seconds=60), "alpha", ["staging"]),
    (EPOCH, None, []),
    (EPOCH, "nope", None),
]


@pytest.mark.parametrize(("since", "scenario", "environments"), FILTERS)
def test_heads_are_the_heads_of_the_runs_the_same_filter_reads(
    store: ResultStore, since: datetime, scenario: str | None, environments: list[str] | None
) -> None:
    fill(store)
    whole = store.runs(since, scenario, environments)
    heads = store.run_heads(since, scenario, environments)
    assert heads == [RunHead.of(run) for run in whole]
    assert all(h.started_at.tzinfo is not None and h.started_at.utcoffset() == timedelta(0) for h in heads)


def test_runs_by_id_come_whole_in_the_order_asked_across_chunks(store: ResultStore) -> None:
    runs = fill(store)
    assert store.runs_by_id([runs[3].id, runs[0].id]) == [runs[3], runs[0]]
    # Over a thousand ids, most with no run, the real ones spread across the IN-list chunks.
    wanted = [secrets.token_hex(6) for _ in range(1200)]
    picked = [runs[5], runs[1], runs[9], runs[0]]
    for place, run in zip((0, 499, 500, 1199), picked, strict=True):
        wanted[place] = run.id
    assert store.runs_by_id(wanted) == picked
    assert store.runs_by_id([runs[2].id, runs[2].id]) == [runs[2]]
    assert store.runs_by_id([]) == []


@pytest.mark.parametrize("environments", [None, ["staging", "production", "dev"], ["production", "staging"]])
@pytest.mark.parametrize("scenario", [None, "alpha"])
def test_pairing_heads_then_reading_chooses_what_reading_everything_chooses(
    store: ResultStore, environments: list[str] | None, scenario: str | None
) -> None:
    fill(store)
    since = T0 + timedelta(seconds=40)
    expected = pair_runs(store.runs(since, scenario, environments), environments)
    assert read_paired(store, since, scenario, environments) == expected
    assert len(expected) == (2 if scenario else 3)


def test_a_secret_output_stays_masked_when_read_by_id(store: ResultStore) -> None:
    run = made("gamma", "staging", 0, token="tok-hush-" + secrets.token_hex(4))
    store.write(run)
    (back,) = store.runs_by_id([run.id])
    assert str(back.observations[0].outputs["token"]) == "***"
    ((_, (paired,)),) = read_paired(store, EPOCH)
    assert str(paired.observations[0].outputs["token"]) == "***"


def test_the_sqlite_heads_query_searches_the_start_index_not_the_whole_table(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path / 'store.db'}")
    sent: list[str] = []

    def capture(_c: object, _k: object, statement: str, *_rest: object) -> None:
        sent.append(statement)

    try:
        store.ping()
        event.listen(store.engine, "before_cursor_execute", capture)
        store.run_heads(EPOCH)
        event.remove(store.engine, "before_cursor_execute", capture)
        (statement,) = [s for s in sent if "FROM runs" in s]
        assert "record" not in statement
        with store.engine.connect() as connection:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, (EPOCH.isoformat(),)).all()
    finally:
        store.close()
    # In start order from the index, never a scan of every run; only runs of one start time are sorted by id.
    assert [str(row[-1]) for row in plan] == [
        "SEARCH runs USING INDEX ix_runs_started (started_at>?)",
        "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY",
    ]


def test_reading_a_store_that_is_down_is_a_store_error_without_the_password() -> None:
    password = "pw-" + secrets.token_hex(8)
    store = ResultStore(f"postgresql+psycopg://pp:{password}@127.0.0.1:{free_port()}/results")
    calls = (
        lambda: store.run_heads(EPOCH),
        lambda: store.runs_by_id(["x"]),
        lambda: read_paired(store, EPOCH),
    )
    for call in calls:
        with pytest.raises(StoreError) as caught:
            call()
        assert password not in str(caught.value) and "pp:***@127.0.0.1" in str(caught.value)
        assert "connection failed" in str(caught.value) and caught.value.__cause__ is None
    store.close()


def test_an_interrupted_run_is_passed_over_for_a_complete_one(store: ResultStore) -> None:
    complete = made("s", "staging", 100)
    latest = made("s", "staging", 200)
    stopped = replace(
        latest,
        observations=(
            latest.observations[0],
            replace(latest.observations[1], outcome=Outcome.SKIPPED, reason="stopped: the daemon stops"),
        ),
    )
    other = made("s", "production", 150)
    for run in (complete, stopped, other):
        store.write(run)
    assert stopped.interrupted and not complete.interrupted
    ((_, runs),) = read_paired(store, T0, None, ["staging", "production"])
    assert [r.id for r in runs] == [complete.id, other.id]
    assert read_paired(store, T0, None, ["staging", "production"]) == pair_runs(store.runs(T0))
