"""Two daemons, one per lab environment, writing to one PostgreSQL store, then ``compare --store``: the lab's
planted gaps are found exactly as one ``parityprobe run`` over both environments finds them. This is how
the per-environment daemons are meant to be compared, after the fact."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from parityprobe.daemon.records import ScheduleOutcome
from parityprobe.lab.postgres import PostgresServer
from parityprobe.lab.state import LabState
from tests.daemon_support import postgres_url, running_daemon, stored_events, stored_runs, wait_for
from tests.integration.test_end_to_end import SCENARIOS, cli
from tests.postgres_support import admin

pytestmark = pytest.mark.lab

ENVIRONMENTS = ("staging", "production")
# The first runs come one interval after the daemons start; the interval is longer than the slowest
# scenario (forbidden-calls waits for SIEM evidence that never comes), so both daemons are stopped between
# their first and second runs. A run still going at SIGTERM would be stored cut short (its remaining steps
# skipped) and be the latest one compare pairs: the test checks that none was.
EVERY = "45s"


@pytest.fixture
def shared_store(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database in the session's cluster: the store both daemons write to."""
    name = "daemons_" + secrets.token_hex(4)
    with admin(postgres) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url(postgres, name)
    with admin(postgres) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def key(document: dict[str, object]) -> list[tuple[object, ...]]:
    """The findings that must agree, as sorted tuples. Latency findings are left out: they compare timings
    of runs made at different moments, on a loaded machine, so they are noise here, not a planted gap."""
    findings = document["findings"]
    assert isinstance(findings, list)
    return sorted(
        (f["scenario"], f["step"], f["category"], f["severity"], f["field"])
        for f in findings
        if f["category"] != "latency_mismatch"
    )


def test_two_daemons_sharing_a_postgresql_store_compare_as_one_run_does(
    lab: LabState, postgres: PostgresServer, shared_store: str, tmp_path: Path
) -> None:
    scenario_ids = {path.stem for path in SCENARIOS}
    # The reference: one run over both environments, made while the daemons wait for their first runs.
    reference = subprocess.Popen(
        [sys.executable, "-m", "parityprobe", "run", "--format", "json",
         "--environments", str(lab.environments_file), *map(str, SCENARIOS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with ExitStack() as stack:
        options = ("--store", shared_store, "--every", EVERY)
        daemons = [
            stack.enter_context(
                running_daemon(lab.environments_file, env, SCENARIOS, tmp_path / env, *options)
            )
            for env in ENVIRONMENTS
        ]
        out, err = reference.communicate(timeout=300)
        assert reference.returncode == 1, err  # the lab's gaps are findings
        for daemon in daemons:
            wait_for(daemon.ready, "/readyz 200")

        def each_scenario_ran_everywhere() -> bool:
            ran = {(run.scenario, run.environment) for run in stored_runs(shared_store)}
            return ran >= {(s, e) for s in scenario_ids for e in ENVIRONMENTS}

        wait_for(each_scenario_ran_everywhere, "a run of each scenario in each environment", timeout=240)
        for daemon in daemons:
            daemon.send(signal.SIGTERM)  # to both at once
        assert [daemon.wait() for daemon in daemons] == [0, 0]

    cut_short = stored_events(shared_store, ScheduleOutcome.STOPPED)
    assert cut_short == [], f"a run was still going at SIGTERM (raise EVERY): {cut_short}"
    runs = stored_runs(shared_store)
    assert {run.scenario for run in runs} == scenario_ids
    assert {run.environment for run in runs} == set(ENVIRONMENTS)
    assert sorted(r.run_id for d in daemons for r in d.runs_logged()) == sorted(run.id for run in runs)

    compared = cli("compare", "--store", shared_store, "--since", "1h", "--format", "json")
    assert compared.code == 1, compared.err
    document = json.loads(compared.out)
    expected = key(json.loads(out))
    assert expected  # the lab's planted gaps
    assert key(document) == expected
    assert len(document["runs"]) == 2 * len(scenario_ids)
    password = postgres.admin_password.reveal()
    assert all(password not in text for text in (compared.out, compared.err, *(d.log() for d in daemons)))
