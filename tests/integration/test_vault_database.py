"""vault.database_creds, vault.lease_revoke and postgres.connect against a real OpenBao and a real
PostgreSQL: credentials issued, proven by connecting, revoked, refused afterwards, and cleaned up by the
run's undo."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import hvac
import pytest

from parityprobe.codec import to_record
from parityprobe.config.environments import Environment
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import build_plan
from parityprobe.lab.postgres import PostgresServer, start_postgres
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import ErrorKind, Grant, Outcome, Run
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.postgres.connect import Connect
from parityprobe.probes.vault.database import DatabaseCreds, LeaseRevoke
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner
from parityprobe.secret import Secret
from parityprobe.undo import MemoryJournal, RunJournal
from tests.postgres_support import admin, enable_database_engine, role_exists, roles_like
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
CREDS, REVOKE, CONNECT = DatabaseCreds(), LeaseRevoke(), Connect()
APP, UNDONE, LIMITED = "app", "undone", "limited"


@dataclass(frozen=True)
class Db:
    bao: ServerProcess
    root: Secret
    pg: PostgresServer
    admin: Any
    mount: str
    env: Environment

    def env_with(self, **postgres: Any) -> Environment:
        """An environment with only a ``postgres`` section: the fixture's cluster, with these changes."""
        return environment({"name": "lab", "postgres": postgres_section(self.pg, **postgres)})

    def token(self, *policies: str) -> Secret:
        reply = self.admin.auth.token.create(policies=[*policies, "default"], ttl="1h")
        return Secret(reply["auth"]["client_token"], "vault token")


@pytest.fixture(scope="module")
def db(openbao: tuple[ServerProcess, Secret], postgres: PostgresServer) -> Iterator[Db]:
    """The database engine at a mount of this module's own, connected to the PostgreSQL fixture; roles
    ``app``, ``undone`` (used by the run test only) and ``limited``; policies for a workload that may read
    creds only, and one that may also revoke leases."""
    server, root = openbao
    client = hvac.Client(url=server.url, token=root.reveal())
    mount = f"database-{RUN}"
    enable_database_engine(client, postgres, mount, [APP, UNDONE, LIMITED])
    client.sys.create_or_update_policy(
        f"creds-{RUN}", f'path "{mount}/creds/*" {{ capabilities = ["read"] }}'
    )
    client.sys.create_or_update_policy(
        f"revoke-{RUN}",
        f'path "{mount}/creds/*" {{ capabilities = ["read"] }}\n'
        'path "sys/leases/revoke" { capabilities = ["update"] }',
    )
    vault = {"address": server.url, "auth": {"method": "token", "token": {"env": "PP_TEST_DATABASE_ROOT"}}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PP_TEST_DATABASE_ROOT", root.reveal())
        env = environment({"name": "lab", "vault": vault, "postgres": postgres_section(postgres)})
        assert env.vault is not None and isinstance(env.vault.auth, VaultToken)
        env.vault.auth.token.resolve(Path.cwd(), "vault token")
    yield Db(server, root, postgres, client, mount, env)
    client.adapter.close()


def postgres_section(pg: PostgresServer, **changes: Any) -> dict[str, Any]:
    return {"host": pg.host, "port": pg.port, "dbname": pg.dbname, "sslmode": "disable", **changes}


def context(env: Environment, step: str) -> ProbeContext:
    return probe_context(env, step, run=RUN)


def issued(db: Db, role: str = APP, token: Secret | None = None) -> ProbeResult:
    params: dict[str, object] = {"role": role, "mount": db.mount}
    if token is not None:
        params["token"] = token
    result = observe(CREDS, params, context(db.env, "creds"))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED, result
    return result


def credentials(result: ProbeResult) -> tuple[str, Secret, str]:
    username, password, lease_id = (result.outputs[k] for k in ("username", "password", "lease_id"))
    assert isinstance(username, str) and isinstance(password, Secret) and isinstance(lease_id, str)
    return username, password, lease_id


def connect(env: Environment, user: str, password: Secret, **extra: object) -> ProbeResult | Failure:
    return observe(CONNECT, {"user": user, "password": password, **extra}, context(env, "connect"))


# --- vault.database_creds ---------------------------------------------------------------------------------


def test_credentials_are_issued_with_the_role_s_ttl_and_a_database_role_exists(db: Db) -> None:
    result = issued(db)
    username, password, lease_id = credentials(result)
    # The role's default_ttl (1h); renewable up to its max_ttl.
    assert result.grant == Grant(ttl_seconds=3600, renewable=True)
    assert lease_id.startswith(f"{db.mount}/creds/{APP}/")
    assert username.startswith(f"v-token-{APP}-") and role_exists(db.pg, username)
    assert password.reveal() not in repr(result)
    assert set(CREDS.secret_outputs) == {"password"}


def test_credentials_for_an_unknown_role_or_mount_are_not_found(db: Db) -> None:
    # OpenBao: 400 "unknown role: nope" for the role, 404 for the mount.
    for params in ({"role": "nope", "mount": db.mount}, {"role": APP, "mount": f"nomount-{RUN}"}):
        result = observe(CREDS, params, context(db.env, "creds-unknown"))
        assert isinstance(result, ProbeResult | Failure) and result.outcome is Outcome.NOT_FOUND, result


def test_credentials_without_permission_are_denied_and_the_undo_is_not_needed(db: Db) -> None:
    journal = MemoryJournal()
    ctx = journaled(db.env, "creds-denied", journal)
    result = observe(CREDS, {"role": APP, "mount": db.mount, "token": db.token()}, ctx)
    assert result == Failure(Outcome.DENIED, "permission denied")
    assert journal.pending() == []


def test_the_undo_is_recorded_with_the_lease_id_and_the_step_s_token_held(db: Db) -> None:
    journal = MemoryJournal()
    token = db.token(f"revoke-{RUN}")
    result = observe(
        CREDS, {"role": APP, "mount": db.mount, "token": token}, journaled(db.env, "rec", journal)
    )
    assert isinstance(result, ProbeResult)
    _, _, lease_id = credentials(result)
    (entry,) = journal.pending()
    assert entry.undo.probe == "vault.lease_revoke"
    assert dict(entry.undo.params) == {"lease_id": lease_id}  # plain: an identifier, never a secret
    assert entry.undo.arguments() == {"lease_id": lease_id, "token": token}
    assert token.reveal() not in repr(entry)
    # Undone exactly as the runner would: the undo's own arguments, through the revoke probe.
    undo = observe(REVOKE, entry.undo.arguments(), context(db.env, "undo"))
    assert undo == ProbeResult()


# --- the whole life: issue, connect, revoke, refused ------------------------------------------------------


def test_issued_credentials_connect_until_revoked_then_are_refused(db: Db) -> None:
    username, password, lease_id = credentials(issued(db))
    assert connect(db.env, username, password) == ProbeResult()

    assert observe(REVOKE, {"lease_id": lease_id}, context(db.env, "revoke")) == ProbeResult()
    # Vault ran the plugin's revocation: the database role is dropped.
    assert not role_exists(db.pg, username)
    refused = connect(db.env, username, password)
    assert refused == Failure(Outcome.DENIED, "authentication failed")
    assert password.reveal() not in repr(refused) and username not in repr(refused)

    # OpenBao answers 204 to a second revoke; the lookup before it says the lease is gone.
    again = observe(REVOKE, {"lease_id": lease_id}, context(db.env, "revoke-again"))
    assert again == ProbeResult(Outcome.NOT_FOUND, reason="lease not found")


def test_revoking_a_lease_that_never_existed_is_not_found(db: Db) -> None:
    params = {"lease_id": f"{db.mount}/creds/{APP}/{secrets.token_hex(8)}"}
    result = observe(REVOKE, params, context(db.env, "revoke-never"))
    assert result == ProbeResult(Outcome.NOT_FOUND, reason="lease not found")


def test_revoking_without_permission_is_denied_and_the_lease_survives(db: Db) -> None:
    username, _, lease_id = credentials(issued(db, LIMITED))
    result = observe(REVOKE, {"lease_id": lease_id, "token": db.token(f"creds-{RUN}")}, context(db.env, "rv"))
    assert result == Failure(Outcome.DENIED, "permission denied")
    assert role_exists(db.pg, username)
    db.admin.sys.revoke_lease(lease_id)


# --- postgres.connect -------------------------------------------------------------------------------------


def test_a_wrong_password_is_denied_without_echoing_anything(db: Db) -> None:
    username, password, _ = credentials(issued(db))
    wrong = Secret("wrong-" + secrets.token_urlsafe(12), "database password")
    result = connect(db.env, username, wrong)
    assert result == Failure(Outcome.DENIED, "authentication failed")
    for text in (wrong.reveal(), password.reveal(), username):
        assert text not in repr(result)


def test_an_unknown_role_is_denied_like_a_wrong_password(db: Db) -> None:
    result = connect(db.env, f"ghost_{RUN}", Secret("x" * 16, "database password"))
    assert result == Failure(Outcome.DENIED, "authentication failed")


def test_a_role_without_login_is_denied_as_not_permitted(db: Db) -> None:
    role, password = f"nologin_{RUN}", Secret(secrets.token_urlsafe(16), "database password")
    with admin(db.pg) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN PASSWORD '{password.reveal()}'")
    try:
        assert connect(db.env, role, password) == Failure(Outcome.DENIED, "login not permitted")
    finally:
        with admin(db.pg) as conn:
            conn.execute(f"DROP ROLE {role}")


def test_a_missing_database_is_not_found_and_the_step_s_dbname_wins(db: Db) -> None:
    username, password, _ = credentials(issued(db))
    result = connect(db.env, username, password, dbname=f"nodb_{RUN}")
    assert result == Failure(Outcome.NOT_FOUND, "database not found")
    missing_db = db.env_with(dbname=f"nodb_{RUN}")
    assert connect(missing_db, username, password, dbname="postgres") == ProbeResult()


def test_the_connection_carries_the_correlation_id_into_the_server_log(db: Db) -> None:
    username, password, _ = credentials(issued(db))
    ctx = probe_context(db.env, f"seen-{secrets.token_hex(3)}", run=RUN)
    assert observe(CONNECT, {"user": username, "password": password}, ctx) == ProbeResult()
    assert ctx.timer.used
    # The lab's cluster logs each connection (log_connections), with its application_name.
    expected = (
        f"connection authorized: user={username} database=postgres application_name={ctx.correlation_id}"
    )
    assert expected in db.pg.log_path.read_text()


def test_a_stopped_server_is_unreachable(db: Db, tmp_path: Path) -> None:
    stopped = start_postgres(tmp_path / "stopped")
    stopped.stop()
    env = db.env_with(port=stopped.port)
    result = connect(env, "anyone", Secret("x" * 16, "database password"))
    assert result == Failure(Outcome.ERROR, "connection failed", ErrorKind.UNREACHABLE)
    assert not stopped.alive() and not stopped.data_root.exists()


def test_a_server_that_never_answers_times_out(db: Db) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        env = db.env_with(port=silent.getsockname()[1], connect_timeout_seconds=2)
        result = connect(env, "anyone", Secret("x" * 16, "database password"))
    assert result == Failure(Outcome.ERROR, "timed out", ErrorKind.TIMEOUT)


def test_an_environment_without_a_postgres_section_is_a_harness_error(db: Db) -> None:
    env = environment({"name": "novault"})
    result = connect(env, "anyone", Secret("x" * 16, "database password"))
    assert isinstance(result, Failure) and result.error_kind is ErrorKind.HARNESS_ERROR
    assert result.reason == "environment 'novault' has no 'postgres' section"


# --- a real run: the undo leaves nothing behind -----------------------------------------------------------


def test_a_run_revokes_what_it_was_issued_leaving_no_lease_and_no_role(db: Db, tmp_path: Path) -> None:
    token_file = tmp_path / "root-token"
    token_file.write_text(db.root.reveal())
    token_file.chmod(0o600)
    (tmp_path / "environments.yaml").write_text(
        "environments:\n"
        "  lab:\n"
        f"    vault: {{address: '{db.bao.url}', auth: {{method: token, token: {{file: '{token_file}'}}}}}}\n"
        f"    postgres: {{host: {db.pg.host}, port: {db.pg.port}, sslmode: disable}}\n"
        "    safety: {allow_effects: [read, write]}\n"
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "db.yaml").write_text(
        "id: db-creds\nsteps:\n"
        f"  - {{id: creds, probe: vault.database_creds, with: {{role: {UNDONE}, mount: {db.mount}}},"
        " expect: {outcome: allowed}}\n"
        "  - id: connect\n    probe: postgres.connect\n"
        "    with:\n"
        "      user: '${{ steps.creds.outputs.username }}'\n"
        "      password: '${{ steps.creds.outputs.password }}'\n"
        "    expect: {outcome: allowed}\n"
    )
    redactor = Redactor()
    envs = load_environments(tmp_path / "environments.yaml", redactor)
    plan = build_plan(envs, load_scenarios([tmp_path / "scenarios"]), ProbeRegistry())
    (result,) = Runner(ProbeRegistry(), redactor, step_timeout=30).run(plan)
    (run,) = result.runs
    assert [o.outcome for o in run.observations] == [Outcome.ALLOWED, Outcome.ALLOWED]
    (undo,) = run.cleanup
    assert undo.probe == "vault.lease_revoke" and undo.outcome is Outcome.ALLOWED, undo
    username = run_username(run)
    # The issued password was registered with the run's redactor, and appears in no record of the run.
    password = run_password(run)
    assert password.reveal() not in redactor.redact(password.reveal())
    assert password.reveal() not in json.dumps(to_record(run)) + repr(run)
    # No lease left under the role (OpenBao answers 404 to listing an empty prefix), no database role.
    with pytest.raises(hvac.exceptions.InvalidPath):
        db.admin.sys.list_leases(f"{db.mount}/creds/{UNDONE}")
    assert roles_like(db.pg, f"v-token-{UNDONE}-") == [] and not role_exists(db.pg, username)


def run_username(run: Run) -> str:
    creds = run.observation("creds")
    assert creds is not None
    username = creds.outputs["username"]
    assert isinstance(username, str) and username.startswith(f"v-token-{UNDONE}-")
    return username


def run_password(run: Run) -> Secret:
    creds = run.observation("creds")
    assert creds is not None
    password = creds.outputs["password"]
    assert isinstance(password, Secret)
    return password


def journaled(env: Environment, step: str, journal: MemoryJournal) -> ProbeContext:
    """A test context whose undos go to ``journal``, as in a run."""
    return replace(context(env, step), journal=RunJournal(journal, RUN, env.name))
