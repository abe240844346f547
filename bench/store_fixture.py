"""Stored runs for the store benchmarks: realistic runs built from the model's own types, their rows as
:meth:`ResultStore.write <parityprobe.store.ResultStore.write>` makes them (codec record, one row per step),
and the two databases to hold them: a SQLite file and a throw-away PostgreSQL cluster (started as the lab
starts it, as the ``postgres`` user when root)."""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from parityprobe.grant import Grant
from parityprobe.lab.postgres import PostgresServer, start_postgres
from parityprobe.model import Observation, Outcome, Run, Tier
from parityprobe.spec import Bounds, EnvironmentFacts, ScenarioSpec, StepSpec
from parityprobe.store import ResultStore
from parityprobe.store.schema import observations, runs
from parityprobe.store.store import run_rows

ENVIRONMENTS = (("staging", Tier.STAGING), ("production", Tier.PRODUCTION))
# (probe, expected outcome): a login, reads, and calls that must be refused, as the built-in scenarios do.
PROBES = (
    ("vault.approle_login", Outcome.ALLOWED),
    ("vault.kv_read", Outcome.ALLOWED),
    ("vault.kv_read", Outcome.DENIED),
    ("aws.caller_identity", Outcome.ALLOWED),
    ("aws.secret_read", Outcome.ALLOWED),
    ("aws.assume_role", Outcome.DENIED),
)


@dataclass(frozen=True)
class Shape:
    """How many runs of what: ``per_pair`` runs of ``steps`` steps for each scenario in each environment,
    started evenly (with jitter) over the ``span`` before ``now``."""

    scenarios: int
    steps: int
    per_pair: int
    now: datetime
    span: timedelta = timedelta(hours=23)

    @classmethod
    def for_observations(cls, total: int, scenarios: int = 10, steps: int = 20) -> Shape:
        per_pair = max(1, total // (scenarios * len(ENVIRONMENTS) * steps))
        return cls(scenarios, steps, per_pair, datetime.now(UTC).replace(microsecond=0))

    @property
    def runs(self) -> int:
        return self.scenarios * len(ENVIRONMENTS) * self.per_pair

    @property
    def observations(self) -> int:
        return self.runs * self.steps


def spec(scenario: int, steps: int) -> ScenarioSpec:
    step_specs = tuple(
        StepSpec(
            id=f"step-{i:02d}",
            probe=PROBES[i % len(PROBES)][0],
            expect_outcome=PROBES[i % len(PROBES)][1],
            expect_ttl=Bounds(max=3600) if i == 0 else None,
            ttl_tolerance=60 if i == 0 else None,
        )
        for i in range(steps)
    )
    text = f"bench-{scenario:02d}:{steps}"
    return ScenarioSpec(
        id=f"bench-{scenario:02d}",
        digest=hashlib.sha256(text.encode()).hexdigest(),
        description="The payments workload reads its own secrets and nothing else.",
        steps=step_specs,
        cleanup=("tidy",),
    )


def observation(
    env: str, index: int, step: StepSpec, run_id: str, at: datetime, rng: random.Random
) -> Observation:
    outcome = step.expect_outcome or Outcome.ALLOWED
    grant = Grant()
    if step.probe == "vault.approle_login":
        grant = Grant(
            ttl_seconds=3600,
            max_ttl_seconds=86400,
            policies=frozenset({"default", "payments-read"}),
            identity="auth/approle/role/payments",
            renewable=True,
            issued_at=at,
            expires_at=at + timedelta(hours=1),
        )
    elif step.probe in ("vault.kv_read", "aws.secret_read") and outcome is Outcome.ALLOWED:
        grant = Grant(version=3, stages=frozenset({"AWSCURRENT"}) if step.probe.startswith("aws") else None)
    elif step.probe == "aws.caller_identity":
        grant = Grant(identity=f"arn:aws:sts::111111111111:assumed-role/payments-{env}/<session>")
    return Observation(
        step=step.id,
        probe=step.probe,
        environment=env,
        correlation_id=f"pp-{run_id}-{index:02d}",
        outcome=outcome,
        started_at=at,
        reason="permission denied" if outcome is Outcome.DENIED else None,
        latency_ms=round(rng.uniform(3.0, 120.0), 3),
        grant=grant,
        target="secret/data/billing/db" if step.probe == "vault.kv_read" else None,
    )


def make_runs(shape: Shape, seed: int = 7) -> Iterator[Run]:
    """Every run of ``shape``, in no particular order; the same runs for the same seed (ids aside)."""
    rng = random.Random(seed)
    interval = shape.span / shape.per_pair
    start = shape.now - shape.span - timedelta(minutes=1)
    for scenario in range(shape.scenarios):
        the_spec = spec(scenario, shape.steps)
        for env, tier in ENVIRONMENTS:
            facts = EnvironmentFacts(env, tier, {"team": "payments", "account_id": "111111111111"})
            for n in range(shape.per_pair):
                at = start + interval * n + timedelta(seconds=rng.uniform(0, interval.total_seconds() / 2))
                run_id = secrets.token_hex(6)
                made = tuple(
                    observation(env, i, step, run_id, at + timedelta(milliseconds=40 * i), rng)
                    for i, step in enumerate(the_spec.steps)
                )
                yield Run(run_id, the_spec, facts, at, at + timedelta(milliseconds=40 * shape.steps), made)


def rows(run: Run) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's row and its steps' rows, exactly as ResultStore.write makes them (no evidence here)."""
    row, steps, _ = run_rows(run)
    return row, steps


def bulk_load(urls: list[str], shape: Shape, batch: int = 1000) -> None:
    """Fill the stores at ``urls`` (each schema created by the store itself, indexes included) with
    ``shape``'s runs, made once for all: SQLite by executemany in one transaction, PostgreSQL by COPY, then
    VACUUM ANALYZE (what autovacuum soon does to a live store). Not what the benchmarks measure."""
    stores = [ResultStore(url) for url in urls]
    with ExitStack() as stack:
        writers: list[Callable[[list[tuple[dict[str, Any], list[dict[str, Any]]]]], None]] = []
        finish: list[Callable[[], None]] = []
        for store in stores:
            stack.callback(store.close)
            store.ping()
            if store.dialect == "sqlite":
                connection = stack.enter_context(store.engine.begin())
                writers.append(partial(_insert, connection))
            else:
                raw = store.engine.raw_connection()
                stack.callback(raw.close)
                driver = raw.driver_connection
                assert isinstance(driver, psycopg.Connection)
                writers.append(partial(_copy, driver))
                finish.append(partial(_vacuum, driver))
        pending: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for run in make_runs(shape):
            pending.append(rows(run))
            if len(pending) == batch:
                for write in writers:
                    write(pending)
                pending = []
        for write in writers:
            write(pending)
        for done in finish:
            done()


def _insert(connection: Any, made: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    if made:
        connection.execute(runs.insert(), [row for row, _ in made])
        connection.execute(observations.insert(), [step for _, steps in made for step in steps])


def _copy(driver: psycopg.Connection[Any], made: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    run_columns = [c.name for c in runs.columns]
    step_columns = [c.name for c in observations.columns]
    with driver.cursor() as cursor:
        with cursor.copy(f"COPY runs ({', '.join(run_columns)}) FROM STDIN") as copy:
            for row, _ in made:
                copy.write_row([row[c] for c in run_columns])
        with cursor.copy(f"COPY observations ({', '.join(step_columns)}) FROM STDIN") as copy:
            for _, steps in made:
                for step in steps:
                    copy.write_row([step[c] for c in step_columns])


def _vacuum(driver: psycopg.Connection[Any]) -> None:
    driver.commit()
    driver.autocommit = True
    driver.execute("VACUUM ANALYZE runs")
    driver.execute("VACUUM ANALYZE observations")


@contextmanager
def postgres_database(workdir: Path) -> Iterator[tuple[PostgresServer, str]]:
    """A throw-away cluster and a fresh database in it: (server, store URL with the admin's password)."""
    server = start_postgres(workdir)
    try:
        with psycopg.connect(
            host=server.host,
            port=server.port,
            dbname=server.dbname,
            user=server.admin_user,
            password=server.admin_password.reveal(),
            autocommit=True,
        ) as conn:
            conn.execute('CREATE DATABASE "bench"')
        url = URL.create(
            "postgresql+psycopg",
            username=server.admin_user,
            password=server.admin_password.reveal(),
            host=server.host,
            port=server.port,
            database="bench",
        )
        yield server, url.render_as_string(hide_password=False)
    finally:
        server.stop()
