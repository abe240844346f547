"""The result store against real databases: SQLite in a temporary file and the ``postgres`` fixture's
PostgreSQL (a fresh database for this module). Runs are produced by the real Runner over the test probes."""

from __future__ import annotations

import itertools
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from parityprobe.codec import to_record
from parityprobe.errors import StoreError
from parityprobe.lab.servers import free_port
from parityprobe.listeners import RunListener
from parityprobe.model import Outcome, Run
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from parityprobe.store import ResultStore, SpooledStore, StoreListener, pair_runs
from parityprobe.store.schema import SCHEMA_VERSION
from parityprobe.store.spool import REJECTED_FILE, SPOOL_FILE
from tests.plugins import build, registry
from tests.store_support import plain

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# No secret output: a run read back compares equal to the run itself.
PLAIN = """\
id: {id}
steps:
  - {{id: first, probe: test.track, with: {{key: k}}}}
  - {{id: decide, probe: test.declare, with: {{live: {{production: denied}}}}, expect: {{outcome: allowed}}}}
cleanup:
  - {{id: tidy, probe: test.track}}
"""
# The same id, another text: another scenario version (digest).
EDITED = """\
id: {id}
steps:
  - {{id: first, probe: test.track, with: {{key: changed}}}}
"""


# --- databases ----------------------------------------------------------------------------------------------


@pytest.fixture
def store(url: str) -> Iterator[ResultStore]:
    store = ResultStore(url)
    yield store
    store.close()


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    """Rows of ``statement``, on a connection of our own (not the store's)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def insertion_order(url: str) -> list[str]:
    """Run ids in the order their rows were committed: SQLite's rowid; PostgreSQL's inserting transaction."""
    order = "rowid" if url.startswith("sqlite") else "xmin::text::bigint"
    return [str(row[0]) for row in sql(url, f"SELECT id FROM runs ORDER BY {order}")]


def down_url(password: str) -> str:
    """A PostgreSQL URL, with a password, on a loopback port nothing listens on."""
    return f"postgresql+psycopg://pp:{password}@127.0.0.1:{free_port()}/results"


# --- runs, from the real runner -----------------------------------------------------------------------------


def produce(
    tmp_path: Path,
    scenario: str,
    at: datetime,
    environments: tuple[str, ...] = ("staging", "production"),
    listeners: tuple[RunListener, ...] = (),
) -> list[Run]:
    """One run per environment of ``scenario``, by the Runner, with a clock starting at ``at``."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    envs = "environments:\n" + "".join(f"  {env}: {{vars: {{team: payments}}}}\n" for env in environments)
    plan = build(folder, envs, scenario)
    ticks = itertools.count()

    def clock() -> datetime:
        return at + timedelta(milliseconds=next(ticks))

    (result,) = Runner(registry(), Redactor(), clock=clock, listeners=listeners).run(plan)
    return list(result.runs)


def by_start(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (r.started_at, r.id))


# --- the store ----------------------------------------------------------------------------------------------


def test_a_run_reads_back_equal_and_its_steps_are_rows(store: ResultStore, url: str, tmp_path: Path) -> None:
    made = produce(tmp_path, PLAIN.format(id="round-trip"), T0)
    for run in made:
        assert store.write(run) is True
    back = store.runs(EPOCH)
    assert back == by_start(made)
    assert (
        next(r for r in back if r.environment == "production").observation("decide").outcome is Outcome.DENIED
    )
    rows = sql(url, "SELECT r.environment, o.seq, o.step, o.probe, o.outcome FROM observations o "
               "JOIN runs r ON r.id = o.run_id ORDER BY r.environment, o.seq")  # fmt: skip
    assert rows == [
        ("production", 0, "first", "test.track", "allowed"),
        ("production", 1, "decide", "test.declare", "denied"),
        ("staging", 0, "first", "test.track", "allowed"),
        ("staging", 1, "decide", "test.declare", "allowed"),
    ]
    (digest,) = {row[0] for row in sql(url, "SELECT scenario_digest FROM runs")}
    assert digest == made[0].spec.digest


def test_a_secret_output_is_stored_masked(store: ResultStore, url: str, tmp_path: Path) -> None:
    made = produce(
        tmp_path, "id: secretive\nsteps:\n  - {id: login, probe: test.echo, with: {value: hush42}}\n", T0
    )
    for run in made:
        store.write(run)
    back = store.runs(EPOCH)
    assert [to_record(r) for r in back] == [to_record(r) for r in by_start(made)]
    assert str(back[0].observations[0].outputs["token"]) == "***"
    stored = " ".join(str(row) for row in sql(url, "SELECT record FROM runs"))
    assert "tok-hush42" not in stored and '"token":"***"' in stored


def test_writing_a_run_twice_stores_it_once(store: ResultStore, url: str, tmp_path: Path) -> None:
    run, _ = produce(tmp_path, PLAIN.format(id="twice"), T0)
    assert store.write(run) is True
    assert store.write(run) is False
    other = ResultStore(url)  # another process's store object
    try:
        assert other.write(run) is False
    finally:
        other.close()
    assert sql(url, "SELECT count(*) FROM runs") == [(1,)]
    assert sql(url, "SELECT count(*) FROM observations") == [(len(run.observations),)]
    assert store.runs(EPOCH) == [run]


def test_since_scenario_and_environment_filters(store: ResultStore, tmp_path: Path) -> None:
    early = produce(tmp_path, PLAIN.format(id="alpha"), T0)
    late_alpha = produce(tmp_path, PLAIN.format(id="alpha"), T0 + timedelta(hours=2))
    late_beta = produce(tmp_path, PLAIN.format(id="beta"), T0 + timedelta(hours=3))
    for run in (*late_beta, *early, *late_alpha):
        store.write(run)
    since = T0 + timedelta(hours=1)
    assert store.runs(EPOCH) == by_start([*early, *late_alpha, *late_beta])
    assert store.runs(since) == by_start([*late_alpha, *late_beta])
    # since is inclusive, and its time zone is honoured.
    first = by_start(late_alpha)[0]
    zoned = first.started_at.astimezone(datetime.now().astimezone().tzinfo)
    assert store.runs(zoned, scenario="alpha") == by_start(late_alpha)
    assert store.runs(since, scenario="alpha") == by_start(late_alpha)
    assert store.runs(EPOCH, scenario="alpha", environments=["production"]) == [
        r for r in by_start([*early, *late_alpha]) if r.environment == "production"
    ]
    assert store.runs(EPOCH, environments=["staging", "production"]) == store.runs(EPOCH)
    assert store.runs(EPOCH, environments=[]) == []
    assert store.runs(EPOCH, scenario="nope") == []


def test_retention_deletes_older_runs_and_their_observations(
    store: ResultStore, url: str, tmp_path: Path
) -> None:
    old = produce(tmp_path, PLAIN.format(id="kept"), T0 - timedelta(days=40))
    new = produce(tmp_path, PLAIN.format(id="kept"), T0)
    for run in (*old, *new):
        store.write(run)
    assert store.retain(T0 - timedelta(days=30)) == 2
    assert store.runs(EPOCH) == by_start(new)
    assert sql(url, "SELECT count(*) FROM observations") == [(sum(len(r.observations) for r in new),)]
    assert store.retain(T0 - timedelta(days=30)) == 0


def test_a_newer_schema_is_refused(store: ResultStore, url: str) -> None:
    store.ping()
    assert sql(url, "SELECT id, version FROM schema_version") == [(1, SCHEMA_VERSION)]
    sql(url, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    later = ResultStore(url)
    try:
        with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1}, newer than .*{SCHEMA_VERSION}"):
            later.ping()
        with pytest.raises(StoreError, match="newer"):
            later.runs(EPOCH)
    finally:
        later.close()
    assert sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION + 1,)]


def test_stores_starting_together_create_the_schema_once(url: str) -> None:
    stores = [ResultStore(url) for _ in range(4)]
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def start(store: ResultStore) -> None:
        barrier.wait()
        try:
            store.ping()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert failures == []
    assert sql(url, "SELECT id, version FROM schema_version") == [(1, SCHEMA_VERSION)]


def test_a_store_that_is_down_is_a_store_error_without_the_password(tmp_path: Path) -> None:
    password = "pw-" + secrets.token_hex(8)
    store = ResultStore(down_url(password))  # made without connecting
    run, _ = produce(tmp_path, PLAIN.format(id="down"), T0)
    for call in (store.ping, lambda: store.write(run), lambda: store.runs(EPOCH), lambda: store.retain(T0)):
        with pytest.raises(StoreError) as caught:
            call()
        message = str(caught.value)
        assert password not in message and password not in repr(caught.value)
        assert "pp:***@127.0.0.1" in message and "connection failed" in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    store.close()


def test_a_refused_login_is_a_store_error_without_the_password(pg_database: URL) -> None:
    password = "wrong-" + secrets.token_hex(8)
    store = ResultStore(plain(pg_database.set(password=password)))
    with pytest.raises(StoreError, match="authentication failed") as caught:
        store.ping()
    assert password not in str(caught.value)
    store.close()


def test_an_unsupported_or_broken_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="supports sqlite and postgresql"):
        ResultStore("mysql://u:secretpw@localhost/db")
    with pytest.raises(StoreError, match=r"unusable URL|no SQLAlchemy dialect") as caught:
        ResultStore("not a url at all")
    assert "secretpw" not in str(caught.value)


# --- the spool: nothing lost, nothing twice -----------------------------------------------------------------


def test_runs_spooled_while_down_are_replayed_in_order_exactly_once(url: str, tmp_path: Path) -> None:
    password = "pw-" + secrets.token_hex(8)
    spool_dir = tmp_path / "spool"
    # Spooled out of start order: replay follows the spool, not the clock.
    third = produce(tmp_path, PLAIN.format(id="spooled"), T0 + timedelta(minutes=2))
    first = produce(tmp_path, PLAIN.format(id="spooled"), T0)
    second = produce(tmp_path, PLAIN.format(id="spooled"), T0 + timedelta(minutes=1))
    spooled = [*third, *first, *second]
    down = SpooledStore(ResultStore(down_url(password)), spool_dir)
    for run in spooled:
        assert down.write(run) is False
    spool = spool_dir / SPOOL_FILE
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    assert down.pending() == len(spooled)
    assert password not in spool.read_text()

    back = ResultStore(url)
    # A crash after the first line's write committed, before the spool moved past it: it is written again.
    assert back.write(spooled[0]) is True
    again = SpooledStore(back, spool_dir)
    assert again.replay() == len(spooled)
    assert insertion_order(url) == [r.id for r in spooled]
    assert back.runs(EPOCH) == by_start(spooled)
    assert again.pending() == 0 and not spool.exists()
    assert again.replay() == 0
    later = produce(tmp_path, PLAIN.format(id="spooled"), T0 + timedelta(minutes=3))
    for run in later:
        assert again.write(run) is True
    assert insertion_order(url) == [r.id for r in (*spooled, *later)]
    assert sql(url, "SELECT count(*), count(DISTINCT id) FROM runs") == [(8, 8)]
    back.close()


def test_a_write_replays_the_spool_first(url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    waiting = produce(tmp_path, PLAIN.format(id="order"), T0)
    down = SpooledStore(ResultStore(down_url("x")), spool_dir)
    for run in waiting:
        down.write(run)
    back = ResultStore(url)
    fresh = produce(tmp_path, PLAIN.format(id="order"), T0 - timedelta(hours=1))  # older, but made later
    assert SpooledStore(back, spool_dir).write(fresh[0]) is True
    assert insertion_order(url) == [*(r.id for r in waiting), fresh[0].id]
    back.close()


def test_a_torn_or_bad_line_is_set_aside_and_the_rest_replayed(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    one, two = produce(tmp_path, PLAIN.format(id="torn"), T0)
    down = SpooledStore(ResultStore(down_url("x")), spool_dir)
    down.write(one)
    with (spool_dir / SPOOL_FILE).open("ab") as spool:
        spool.write(b'{"id": "cut sh')  # a crash in the middle of an append
    down.write(two)
    with (spool_dir / SPOOL_FILE).open("ab") as spool:
        spool.write(b'{"id": "not a run"}\n')
    back = ResultStore(url)
    assert SpooledStore(back, spool_dir).replay() == 2
    assert insertion_order(url) == [one.id, two.id]
    rejected = spool_dir / REJECTED_FILE
    assert rejected.read_bytes() == b'{"id": "cut sh\n{"id": "not a run"}\n'
    assert stat.S_IMODE(rejected.stat().st_mode) == 0o600
    back.close()


# --- the listener -------------------------------------------------------------------------------------------


def test_the_listener_stores_every_finished_run(url: str, tmp_path: Path) -> None:
    store = ResultStore(url)
    made = produce(
        tmp_path,
        PLAIN.format(id="listened"),
        T0,
        listeners=(StoreListener(SpooledStore(store, tmp_path / "sp")),),
    )
    assert store.runs(EPOCH) == by_start(made)
    store.close()


def test_the_listener_spools_when_the_store_is_down_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spooled = SpooledStore(ResultStore(down_url("x")), tmp_path / "sp")
    made = produce(tmp_path, PLAIN.format(id="listened"), T0, listeners=(StoreListener(spooled),))
    assert len(made) == 2 and all(len(r.observations) == 2 for r in made)
    assert spooled.pending() == 2
    # The spool cannot be written either (its directory is gone, a file in its place): logged, never raised.
    shutil.rmtree(tmp_path / "sp")
    (tmp_path / "sp").write_text("")
    again = produce(tmp_path, PLAIN.format(id="listened"), T0, listeners=(StoreListener(spooled),))
    assert len(again) == 2 and all(len(r.observations) == 2 for r in again)
    failed = [r for r in caplog.records if "could not be stored nor spooled" in r.getMessage()]
    assert sorted(r.getMessage() for r in failed) == sorted(
        f"run {r.id} could not be stored nor spooled" for r in again
    )


# --- pairing stored runs ------------------------------------------------------------------------------------


def test_pairing_takes_the_nearest_run_of_each_environment_and_keeps_versions_apart(
    store: ResultStore, tmp_path: Path
) -> None:
    def at(seconds: int, env: str, scenario: str = PLAIN) -> Run:
        (run,) = produce(tmp_path, scenario.format(id="paired"), T0 + timedelta(seconds=seconds), (env,))
        return run

    staging = [at(0, "staging"), at(100, "staging"), at(200, "staging")]
    production = [at(90, "production"), at(230, "production"), at(400, "production")]
    tie = [at(1000, "dev"), at(1020, "dev")]  # both 10s from staging's latest run, at 1010s
    staging.append(at(1010, "staging"))
    edited = [at(50, "staging", EDITED), at(60, "production", EDITED)]
    for run in (*staging, *production, *tie, *edited):
        store.write(run)

    paired = pair_runs(store.runs(EPOCH), ["staging", "production", "dev"])
    assert [spec.digest for spec, _ in paired] == [staging[0].spec.digest, edited[0].spec.digest]
    (spec, chosen), (edited_spec, edited_chosen) = paired
    assert spec.id == edited_spec.id == "paired" and spec.digest != edited_spec.digest
    # Reference: staging's latest (1010s); production's nearest is 400s; dev's tie goes to the later run.
    assert [r.id for r in chosen] == [staging[3].id, production[2].id, tie[1].id]
    assert [r.id for r in edited_chosen] == [edited[0].id, edited[1].id]

    # Another order, another reference: production's latest (400s) is nearest to staging's 200s run.
    (_, chosen), _ = pair_runs(store.runs(EPOCH), ["production", "staging"])
    assert [r.id for r in chosen] == [production[2].id, staging[2].id]
    # Only the named environments; by default, in the order they first appear.
    (_, chosen), _ = pair_runs(store.runs(EPOCH, environments=["staging", "production"]))
    assert [r.environment for r in chosen] == ["staging", "production"]
