"""``parityprobe daemon`` as a real subprocess against the lab (real OpenBao and moto; PostgreSQL where the
store must go down and come back), on schedules of a second or two: runs land in the store, health
endpoints answer, SIGTERM leaves nothing behind, a ``kill -9`` is cleaned up at the next start, a store
outage loses and duplicates nothing, SIGHUP rejects a broken file and takes a fixed one, the kill switch
and the call budget hold probing back, and bad input is refused with a located message.

Every wait polls the store, the journal, the log or ``/readyz`` with a generous deadline (``wait_for``);
nothing asserts on how long anything took.
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import psycopg
import pytest

from parityprobe.daemon.records import ScheduleOutcome
from parityprobe.lab.postgres import start_postgres
from parityprobe.lab.state import LabState
from parityprobe.model import Outcome
from parityprobe.store.spool import SPOOL_FILE
from tests.daemon_support import (
    at_least,
    lab_environments,
    pause_postgres,
    pending_undos,
    postgres_url,
    resume_postgres,
    run_daemon,
    running_daemon,
    stored_events,
    stored_runs,
    wait_for,
)
from tests.integration.test_end_to_end import REPO

pytestmark = pytest.mark.lab

TOKEN_FETCH = REPO / "scenarios" / "token-fetch.yaml"
# A read the lab's staging workload may make: one quick step.
KEEP = """\
id: keep
steps:
  - {id: read, probe: vault.kv_read, with: {path: payments/db}, expect: {outcome: allowed}}
"""
# Line 6 names a field that does not exist.
BROKEN = """\
id: added
steps:
  - id: read
    probe: vault.kv_read
    with: {path: payments/db}
    expect: {outcom: allowed}
"""
FIXED = BROKEN.replace("outcom:", "outcome:")


@dataclass(frozen=True)
class VaultRoles:
    """Staging's OpenBao as root: throw-away AppRole roles, and an environments file acting as root there
    with write effects allowed (so a scenario may generate secret ids, whose undo destroys them)."""

    admin: Any
    root_token: str
    environments: Path
    roles: list[str] = field(default_factory=list)

    def role(self) -> str:
        name = f"pp-daemon-{secrets.token_hex(4)}"
        self.admin.auth.approle.create_or_update_approle(name, mount_point="approle", token_ttl="5m")
        self.roles.append(name)
        return name

    def secret_ids(self, role: str) -> list[str]:
        """The accessors of the role's secret ids (hvac's list is None when there is none)."""
        listed = self.admin.list(f"auth/approle/role/{role}/secret-id")
        return [] if listed is None else list(listed["data"]["keys"])

    def scenario(self, directory: Path, role: str, wait: str) -> Path:
        """A scenario that generates a secret id, then waits ``wait`` for a secret that never appears (so a
        run is long enough to be interrupted), then would generate another."""
        path = directory / "secret-ids.yaml"
        path.write_text(
            "id: secret-ids\nsteps:\n"
            f"  - {{id: create, probe: vault.approle_secret_id, with: {{role: {role}}}}}\n"
            "  - id: wait\n    probe: vault.kv_read\n    with: {path: parityprobe-daemon/never-written}\n"
            f"    expect: {{outcome: allowed, within: {wait}}}\n"
            f"  - {{id: again, probe: vault.approle_secret_id, with: {{role: {role}}}}}\n"
        )
        return path


@pytest.fixture(scope="module")
def vault(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultRoles]:
    root = lab.directory / "staging" / "secrets" / "root-token"
    address = lab.server("staging", "openbao").url
    environments = tmp_path_factory.mktemp("daemon-vault") / "environments.yaml"
    environments.write_text(
        "environments:\n  staging:\n    tier: staging\n    safety: {allow_effects: [read, write]}\n"
        f"    vault:\n      address: {address}\n      auth: {{method: token, token: {{file: {root}}}}}\n"
    )
    admin = hvac.Client(url=address, token=root.read_text().strip())
    roles = VaultRoles(admin, root.read_text().strip(), environments)
    yield roles
    for name in roles.roles:
        admin.auth.approle.delete_role(name, mount_point="approle")
    admin.adapter.close()


def with_accessor(state_dir: Path) -> list[dict[str, Any]]:
    """The journal's pending undos that know which secret id they destroy (recorded before the request,
    amended with the accessor from the reply)."""
    return [row for row in pending_undos(state_dir) if '"accessor"' in row["params"]]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- runs land; the store goes down and comes back --------------------------------------------------------


def test_runs_land_the_endpoints_answer_and_a_store_outage_loses_and_duplicates_nothing(
    lab: LabState, tmp_path: Path
) -> None:
    server = start_postgres(tmp_path / "pg")
    url = postgres_url(server)
    password = server.admin_password.reveal()
    state = tmp_path / "state"
    spool = state / "spool" / SPOOL_FILE
    try:
        with running_daemon(
            lab.environments_file, "staging", [TOKEN_FETCH], state, "--store", url, "--every", "1s"
        ) as daemon:
            wait_for(at_least(2, lambda: stored_runs(url)), "two runs in the store")
            assert daemon.get("/healthz") == (200, "ok\n")
            wait_for(daemon.ready, "/readyz 200")

            pause_postgres(server)
            why = wait_for(daemon.not_ready, "/readyz 503")
            assert "result store" in why and "127.0.0.1" in why and password not in why
            # Runs go on while the store is down, each kept in the spool.
            wait_for(lambda: daemon.log().count(f"spooled in {spool}") >= 2, "two runs spooled")
            assert daemon.get("/healthz")[0] == 200 and daemon.alive()

            server = resume_postgres(server)
            wait_for(daemon.ready, "/readyz 200 once the store is back")
            wait_for(lambda: not spool.exists(), "the spool replayed into the store")
            assert daemon.stop() == 0

        logged = daemon.runs_logged()
        stored = stored_runs(url)
        assert {run.environment for run in stored} == {"staging"}
        assert sorted(r.run_id for r in logged) == sorted(run.id for run in stored)
        assert len({r.run_id for r in logged}) == len(logged) >= 4  # some before, some during the outage
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT run_id, count(*) FROM observations GROUP BY run_id").fetchall()
        assert dict(rows) == {r.run_id: r.steps for r in logged}  # each run's steps stored once
        assert "replayed" in daemon.log() and "Traceback" not in daemon.log()
        assert password not in daemon.log()
    finally:
        server.stop()


# --- SIGTERM, and kill -9 then restart --------------------------------------------------------------------


def test_sigterm_finishes_the_step_runs_the_undos_stores_and_exits_0(
    vault: VaultRoles, tmp_path: Path
) -> None:
    role = vault.role()
    scenario = vault.scenario(tmp_path, role, "6s")
    state, store = tmp_path / "state", f"sqlite:///{tmp_path / 'results.db'}"
    with running_daemon(
        vault.environments, "staging", [scenario], state, "--store", store, "--every", "1s"
    ) as d:
        wait_for(lambda: with_accessor(state), "a secret id generated and journalled")
        assert vault.secret_ids(role)  # it exists in OpenBao while its run goes on
        assert d.stop() == 0

    assert pending_undos(state) == []
    assert vault.secret_ids(role) == []  # every secret id the runs generated is destroyed
    (last,) = stored_runs(store)[-1:]
    assert [o.outcome for o in last.cleanup] == [Outcome.ALLOWED]  # the undo destroyed its secret id
    waited, again = [o for o in last.observations if o.step in ("wait", "again")]
    # A stop does not wait out expect.within: the waiting step ends at once, skipped like the rest.
    assert waited.held_back and waited.reason == "stopped: the daemon is shutting down"
    assert (
        again.outcome is Outcome.SKIPPED and again.reason is not None and again.reason.startswith("stopped")
    )
    assert last.interrupted
    assert [e.scenario for e in stored_events(store, ScheduleOutcome.STOPPED)] == ["secret-ids"]
    assert "Traceback" not in d.log() and vault.root_token not in d.log()


def test_a_killed_daemon_resumes_the_pending_undo_when_it_starts_again(
    vault: VaultRoles, tmp_path: Path
) -> None:
    role = vault.role()
    scenario = vault.scenario(tmp_path, role, "60s")  # the run is still waiting when it is killed
    state, store = tmp_path / "state", f"sqlite:///{tmp_path / 'results.db'}"
    with running_daemon(
        vault.environments, "staging", [scenario], state, "--store", store, "--every", "1s"
    ) as d:
        (entry,) = wait_for(lambda: with_accessor(state), "a secret id generated and journalled")
        d.kill()
    assert pending_undos(state) == [entry]
    assert len(vault.secret_ids(role)) == 1  # left behind by the killed run

    # Started again with probing paused: only the undo the crash left runs.
    switch = write(tmp_path / "paused", "")
    with running_daemon(
        vault.environments, "staging", [scenario], state, "--store", store, "--kill-switch", switch
    ) as again:
        (resumed,) = wait_for(
            lambda: stored_events(store, ScheduleOutcome.CLEANUP_RESUMED), "cleanup_resumed"
        )
        wait_for(again.ready, "/readyz 200 after the resumption")
        assert again.stop() == 0
    assert "vault.approle_secret_id_destroy" in resumed.detail and resumed.environment == "staging"
    assert pending_undos(state) == []
    assert vault.secret_ids(role) == []
    assert stored_runs(store) == []  # the killed run was never finished, and nothing ran since


# --- SIGHUP ------------------------------------------------------------------------------------------------


def test_sighup_rejects_a_broken_file_keeps_the_schedule_and_takes_the_fixed_file(
    lab: LabState, tmp_path: Path
) -> None:
    scenarios = tmp_path / "scenarios"
    write(scenarios / "keep.yaml", KEEP)
    state, store = tmp_path / "state", f"sqlite:///{tmp_path / 'results.db'}"
    with running_daemon(
        lab.environments_file, "staging", [scenarios], state, "--store", store, "--every", "1s"
    ) as daemon:
        wait_for(lambda: stored_runs(store, "keep"), "a run of keep")
        added = write(scenarios / "added.yaml", BROKEN)
        daemon.send(signal.SIGHUP)
        (rejected,) = wait_for(
            lambda: stored_events(store, ScheduleOutcome.RELOAD_REJECTED), "reload_rejected"
        )
        located = f"{added}:6: steps[0].expect.outcom"
        assert located in rejected.detail and located in daemon.log()
        # The old schedule runs on.
        wait_for(
            lambda: [r for r in stored_runs(store, "keep") if r.started_at > rejected.at],
            "keep after the reject",
        )
        assert daemon.alive() and stored_runs(store, "added") == []

        added.write_text(FIXED)
        daemon.send(signal.SIGHUP)
        wait_for(lambda: stored_runs(store, "added"), "a run of the fixed scenario")
        assert daemon.stop() == 0
    assert len(stored_events(store, ScheduleOutcome.RELOAD_REJECTED)) == 1
    assert "Traceback" not in daemon.log()


# --- holding back: the kill switch, the call budget --------------------------------------------------------


def test_the_kill_switch_pauses_new_runs_and_removing_it_resumes(lab: LabState, tmp_path: Path) -> None:
    keep = write(tmp_path / "keep.yaml", KEEP)
    switch = tmp_path / "pause-probing"
    state, store = tmp_path / "state", f"sqlite:///{tmp_path / 'results.db'}"
    with running_daemon(
        lab.environments_file, "staging", [keep], state,
        "--store", store, "--every", "1s", "--kill-switch", switch,
    ) as daemon:  # fmt: skip
        wait_for(lambda: stored_runs(store), "a first run")
        switch.touch()
        paused = wait_for(at_least(2, lambda: stored_events(store, ScheduleOutcome.PAUSED)), "two paused")
        # No run began after the first paused one (one scenario: its due runs never overlap).
        assert [r.id for r in stored_runs(store) if r.started_at > paused[0].at] == []
        assert str(switch) in paused[0].detail
        switch.unlink()
        latest = stored_events(store, ScheduleOutcome.PAUSED)[-1].at
        wait_for(lambda: [r for r in stored_runs(store) if r.started_at > latest], "a run once it is removed")
        assert daemon.stop() == 0


def test_the_call_budget_skips_runs_as_over_budget(lab: LabState, tmp_path: Path) -> None:
    # token-fetch plans 3 calls: the first run fits in 4 an hour, the next do not.
    environments = lab_environments(lab, tmp_path / "environments.yaml", "staging", {"calls_per_hour": 4})
    state, store = tmp_path / "state", f"sqlite:///{tmp_path / 'results.db'}"
    with running_daemon(
        environments, "staging", [TOKEN_FETCH], state, "--store", store, "--every", "1s"
    ) as daemon:
        over = wait_for(
            at_least(2, lambda: stored_events(store, ScheduleOutcome.OVER_BUDGET)), "two over budget"
        )
        assert daemon.stop() == 0
    assert len(stored_runs(store)) == 1
    assert all(e.scenario == "token-fetch" and "of 4 calls used in the last hour" in e.detail for e in over)


# --- --once, and bad input ---------------------------------------------------------------------------------


def test_once_runs_each_scenario_once_and_exits_0(lab: LabState, tmp_path: Path) -> None:
    keep = write(tmp_path / "keep.yaml", KEEP)
    store = f"sqlite:///{tmp_path / 'results.db'}"
    common = ("--environments", lab.environments_file, "--env", "staging", "--store", store, "--once")
    done = run_daemon(*common, "--state-dir", tmp_path / "state", keep, TOKEN_FETCH)
    assert done.returncode == 0, done.stderr
    runs = stored_runs(store)
    assert sorted(r.scenario for r in runs) == ["keep", "token-fetch"]
    assert all(o.outcome is Outcome.ALLOWED for r in runs for o in r.observations)
    assert pending_undos(tmp_path / "state") == []

    # Paused from the start (PARITYPROBE_PAUSED): each scenario is due, none runs.
    paused = run_daemon(
        *common, "--state-dir", tmp_path / "paused", keep, TOKEN_FETCH, environ={"PARITYPROBE_PAUSED": "1"}
    )
    assert paused.returncode == 0, paused.stderr
    assert len(stored_runs(store)) == 2
    events = stored_events(store, ScheduleOutcome.PAUSED)
    assert sorted(e.scenario for e in events) == ["keep", "token-fetch"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ("--env", "staging", "--environments", "{bad_env}"),
            "bad-environments.yaml:4: environments.staging",
        ),
        (("--env", "nowhere", "--environments", "{lab_env}"), "no environment named 'nowhere'"),
        (("--env", "staging", "--environments", "{lab_env}", "--every", "0s"), "'--every'"),
        (("--env", "staging", "--environments", "{lab_env}", "--listen", "nowhere"), "'--listen'"),
        (
            ("--env", "staging", "--environments", "{lab_env}", "{broken}"),
            "added.yaml:6: steps[0].expect.outcom",
        ),
    ],
    ids=["environments-file", "environment", "every", "listen", "scenario"],
)
def test_bad_input_exits_2_with_a_located_message(
    lab: LabState, tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    files = {
        "bad_env": write(
            tmp_path / "bad-environments.yaml",
            "environments:\n  staging:\n    vault:\n      adress: http://127.0.0.1:1\n",
        ),
        "lab_env": lab.environments_file,
        "broken": write(tmp_path / "added.yaml", BROKEN),
    }
    filled = [a.format(**files) for a in arguments]
    paths = [] if any(a.endswith("added.yaml") for a in filled) else [TOKEN_FETCH]
    state = tmp_path / "state"
    done = run_daemon("--state-dir", state, "--listen", "127.0.0.1:0", *filled, *paths)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (state / "journal.sqlite").exists()  # refused before anything was set up
