"""The lab on real servers: its environments file, its planted gaps, its lifecycle, its secrecy.

Most tests share the session's default lab (the ``lab`` fixture in conftest.py); the lifecycle tests start
small one-environment labs of their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import hvac
import hvac.exceptions
import psycopg
import pytest
import requests
import yaml

from parityprobe.config.environments import Environment
from parityprobe.errors import InputError, LabError
from parityprobe.lab.lab import down, status, up
from parityprobe.lab.postgres import ADMIN_USER
from parityprobe.lab.profile import DEFAULT_PROFILE, load_profile
from parityprobe.lab.servers import ServerProcess, pid_alive, start_moto
from parityprobe.lab.state import LabState, ServerRecord, read_state
from parityprobe.model import Outcome, Report
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from tests.probe_support import environments_file

pytestmark = pytest.mark.lab

ENVIRONMENTS = ("staging", "production")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def environments(lab: LabState) -> dict[str, Environment]:
    """The environments file the lab wrote, validated, with every secret reference resolved."""
    parsed = environments_file(yaml.safe_load(lab.environments_file.read_text()))
    for env in parsed.environments.values():
        assert env.vault is not None and env.aws is not None
        assert env.vault.auth.method == "approle" and env.aws.credentials.method == "static"
        for ref in (env.vault.auth.role_id, env.vault.auth.secret_id):
            ref.resolve(lab.environments_file.parent, "vault")
        for ref in (env.aws.credentials.access_key_id, env.aws.credentials.secret_access_key):
            ref.resolve(lab.environments_file.parent, "aws")
    return parsed.environments


def _vault_login(env: Environment, correlation_id: str | None = None) -> tuple[Any, dict[str, Any]]:
    assert env.vault is not None and env.vault.auth.method == "approle"
    session = requests.Session()
    if correlation_id:
        session.headers["X-Correlation-ID"] = correlation_id
    client = hvac.Client(url=env.vault.address, session=session)
    auth = client.auth.approle.login(
        role_id=env.vault.auth.role_id.secret().reveal(), secret_id=env.vault.auth.secret_id.secret().reveal()
    )["auth"]
    return client, auth


def _aws(env: Environment, service: str) -> Any:
    assert env.aws is not None and env.aws.credentials.method == "static"
    creds = env.aws.credentials
    return boto3.session.Session(
        aws_access_key_id=creds.access_key_id.secret().reveal(),
        aws_secret_access_key=creds.secret_access_key.secret().reveal(),
        region_name=env.aws.region,
    ).client(service, endpoint_url=env.aws.endpoint_url)  # type: ignore[call-overload]


def _aws_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _kv_read(env: Environment, path: str) -> dict[str, str]:
    client, _ = _vault_login(env)
    data: dict[str, str] = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)[
        "data"
    ]["data"]
    return data


def _server_processes(directory: Path) -> list[int]:
    """Pids whose standard output is a log file inside ``directory``: the lab's servers, however started."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "fd" / "1").startswith(str(directory)):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return True
    return False


def _solo_profile(path: Path, vault_policies: dict[str, str] | None = None) -> Path:
    """A one-environment profile (production's settings), optionally with other Vault policies."""
    data = yaml.safe_load(DEFAULT_PROFILE.read_text())
    solo = data["environments"]["production"]
    solo["vault"]["policies"].update(vault_policies or {})
    path.write_text(yaml.safe_dump({"environments": {"solo": solo}}))
    return path


# --- the environments file -------------------------------------------------------------------------------


def test_environments_file_describes_the_running_lab(
    lab: LabState, environments: dict[str, Environment]
) -> None:
    assert list(environments) == list(ENVIRONMENTS)
    for name, env in environments.items():
        assert env.vault is not None and env.aws is not None
        assert env.vault.address == lab.server(name, "openbao").url
        assert env.aws.endpoint_url == lab.server(name, "moto").url
        assert env.aws.region == "us-east-1"
        assert [e.value for e in env.safety.allow_effects] == ["read"]
    staging, production = environments["staging"], environments["production"]
    assert staging.effective_tier.value == "staging" and production.effective_tier.value == "production"
    assert staging.vars["account_id"] == "111111111111" and production.vars["account_id"] == "222222222222"
    assert production.vars["data_bucket"] == "lab-data-222222222222"
    assert {k: v for k, v in staging.vars.items() if k not in ("account_id", "data_bucket")} == {
        "team": "payments",
        "other_team": "billing",
        "workload": "payments-app",
        "break_glass_role": "break-glass",
    }


def test_workload_identities_are_each_environments_own(environments: dict[str, Environment]) -> None:
    for name, account in (("staging", "111111111111"), ("production", "222222222222")):
        identity = _aws(environments[name], "sts").get_caller_identity()
        assert identity["Arn"] == f"arn:aws:iam::{account}:user/payments-app"


def test_iam_enforcement_is_on(environments: dict[str, Environment]) -> None:
    env = environments["production"]
    assert env.aws is not None
    bootstrap = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("sts", endpoint_url=env.aws.endpoint_url)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        bootstrap.get_caller_identity()
    assert _aws_code(caught.value) == "InvalidClientTokenId"


# --- the planted gaps: staging differs, production is right ----------------------------------------------


def test_gap_a_staging_workload_reads_billing_secrets(environments: dict[str, Environment]) -> None:
    assert set(_kv_read(environments["staging"], "billing/db")) == {"username", "password"}
    with pytest.raises(hvac.exceptions.Forbidden):
        _kv_read(environments["production"], "billing/db")


def test_gap_b_staging_tokens_live_a_day(environments: dict[str, Environment]) -> None:
    ttls = {name: _vault_login(environments[name])[1]["lease_duration"] for name in ENVIRONMENTS}
    assert ttls == {"staging": 86400, "production": 3600}
    assert all(
        _vault_login(environments[n])[1]["token_policies"] == ["default", "payments-app"]
        for n in ENVIRONMENTS
    )


def test_gap_c_staging_workload_can_break_glass(environments: dict[str, Environment]) -> None:
    def assume(name: str, account: str) -> Any:
        return _aws(environments[name], "sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/break-glass", RoleSessionName="lab-test"
        )

    assert assume("staging", "111111111111")["AssumedRoleUser"]["Arn"].endswith(
        ":assumed-role/break-glass/lab-test"
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        assume("production", "222222222222")
    assert _aws_code(caught.value) == "AccessDenied"


def test_gap_d_staging_workload_reads_the_whole_bucket(environments: dict[str, Environment]) -> None:
    def get(name: str, key: str) -> bytes:
        bucket = environments[name].vars["data_bucket"]
        body: bytes = _aws(environments[name], "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    assert get("staging", "billing/ledger.csv")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        get("production", "billing/ledger.csv")
    assert _aws_code(caught.value) == "AccessDenied"


def test_identical_paths_behave_the_same(environments: dict[str, Environment]) -> None:
    for name in ENVIRONMENTS:
        env = environments[name]
        assert set(_kv_read(env, "payments/db")) == {"username", "password"}
        assert _aws(env, "secretsmanager").get_secret_value(SecretId="payments/api-key")["SecretString"]
        assert (
            _aws(env, "s3")
            .get_object(Bucket=env.vars["data_bucket"], Key="payments/report.csv")["Body"]
            .read()
        )
        with pytest.raises(hvac.exceptions.Forbidden):
            _kv_read(env, "ops/db")


def test_correlation_header_is_audited_in_plain_text(
    lab: LabState, environments: dict[str, Environment]
) -> None:
    _vault_login(environments["staging"], correlation_id="pp-labtest-login")
    entries = [json.loads(line) for line in lab.audit_logs["staging"].read_text().splitlines()]
    headers = [
        e["request"].get("headers", {}) for e in entries if e["request"]["path"] == "auth/approle/login"
    ]
    assert {"x-correlation-id": ["pp-labtest-login"]} in headers


# --- secrets stay secret ---------------------------------------------------------------------------------


def test_no_secret_value_in_the_environments_or_state_file(
    lab: LabState, environments: dict[str, Environment]
) -> None:
    values: list[str] = []
    for name in ENVIRONMENTS:
        folder = lab.directory / name / "secrets"
        for file in folder.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
            values.append(file.read_text())
        root = hvac.Client(url=lab.server(name, "openbao").url, token=(folder / "root-token").read_text())
        for path in ("payments/db", "billing/db"):
            values += root.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)[
                "data"
            ]["data"].values()
        values.append(
            _aws(environments[name], "secretsmanager").get_secret_value(SecretId="payments/api-key")[
                "SecretString"
            ]
        )
        assert stat.S_IMODE(lab.server(name, "openbao").log_path.stat().st_mode) == 0o600
    assert len(values) >= 2 * (7 + 4 + 1) and all(len(v) >= 16 for v in values)
    for file in (lab.environments_file, lab.directory / "lab-state.json"):
        text = file.read_text()
        assert not [v for v in values if v in text], file


# --- lifecycle -------------------------------------------------------------------------------------------


def test_second_up_in_a_running_lab_is_refused(lab: LabState) -> None:
    with pytest.raises(LabError, match="already running"):
        up(lab.directory)
    current = status(lab.directory)
    assert current is not None and current.running


def test_down_stops_everything_and_is_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    state = up(directory, _solo_profile(tmp_path / "solo.yaml"))
    try:
        assert state.environments == ["solo"]
        current = status(directory)
        assert current is not None and current.running
        assert {s.url for s in current.servers} == {s.url for s in state.servers}
    finally:
        stopped = down(directory)
    assert len(stopped) == 3  # OpenBao, moto and the SIEM forwarder
    assert not [s for s in state.servers if pid_alive(s.pid)]
    assert all(_port_closed(s.port) for s in state.servers)
    assert not _server_processes(directory)
    assert status(directory) is None
    assert not (directory / "environments.yaml").exists() and not (directory / "solo" / "secrets").exists()
    assert down(directory) == []


def test_a_start_that_fails_half_way_leaves_nothing_running(tmp_path: Path) -> None:
    profile = _solo_profile(
        tmp_path / "broken.yaml", {"payments-app": 'path "secret/data/x" { capabilities = '}
    )
    directory = tmp_path / "lab"
    with pytest.raises(LabError, match="seeding OpenBao"):
        up(directory, profile)
    assert (directory / "solo" / "openbao" / "openbao.log").exists()  # it did get as far as starting servers
    assert not _server_processes(directory)
    assert status(directory) is None


def test_sigterm_brings_the_lab_down(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from parityprobe.lab.lab import running_lab
        with running_lab(Path({str(directory)!r}), Path({str(_solo_profile(tmp_path / "solo.yaml"))!r})):
            print("up", flush=True)
            time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        servers = _server_processes(directory)
        assert len(servers) == 3  # OpenBao, moto and the SIEM forwarder
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            down(directory)
    assert not _server_processes(directory)
    assert status(directory) is None


def test_a_starter_killed_while_servers_start_leaves_no_server_unrecorded(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from parityprobe.lab.lab import up
        up(Path({str(directory)!r}), Path({str(_solo_profile(tmp_path / "solo.yaml"))!r}))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        # Both servers are spawned at once and recorded as they are spawned, so the kill below usually lands
        # during moto's readiness wait (test_a_server_log_is_private_and_on_spawn_comes_before_ready shows
        # the hook runs before a server listens; this test only asks that nothing escapes the record).
        deadline = time.monotonic() + 60
        while (state := read_state(directory)) is None or len(state.servers) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the lab never recorded its servers"
            time.sleep(0.01)
        proc.kill()
        proc.wait(timeout=10)
        recorded = read_state(directory)
        assert recorded is not None
        assert set(_server_processes(directory)) <= {s.pid for s in recorded.servers}
    finally:
        if proc.poll() is None:
            proc.kill()
        down(directory)
    assert not _server_processes(directory)
    assert status(directory) is None


# --- servers ---------------------------------------------------------------------------------------------


def test_a_server_log_is_private_and_on_spawn_comes_before_ready(tmp_path: Path) -> None:
    log = tmp_path / "moto.log"
    log.write_text("an older, readable log\n")
    log.chmod(0o644)
    spawned: list[tuple[ServerProcess, bool, int]] = []

    def on_spawn(server: ServerProcess) -> None:
        spawned.append((server, _port_closed(server.port), stat.S_IMODE(server.log_path.stat().st_mode)))

    server = start_moto(tmp_path, "123456789012", on_spawn=on_spawn)
    try:
        assert spawned[-1] == (server, True, 0o600)  # the last attempt is the server, seen before it listened
        assert stat.S_IMODE(log.stat().st_mode) == 0o600 and "older" not in log.read_text()
    finally:
        server.stop()


# --- PostgreSQL for the database secrets engine --------------------------------------------------------

# Issues credentials and proves them, and never revokes them: only the run's undo does.
_CREDS_ONLY = """\
id: creds-only
steps:
  - id: creds
    probe: vault.database_creds
    with: {role: "${{ vars.workload }}"}
    expect: {outcome: allowed}
  - id: connect
    probe: postgres.connect
    with: {user: "${{ steps.creds.outputs.username }}", password: "${{ steps.creds.outputs.password }}"}
    expect: {outcome: allowed}
"""


def _database_profile(path: Path, mount: str = "database") -> Path:
    """The one-environment profile with Vault's database secrets engine at ``mount``, a role for the
    workload with the plugin's own revocation, a policy letting the workload take and revoke its
    credentials, and write effects allowed."""
    _solo_profile(path)
    data = yaml.safe_load(path.read_text())
    solo = data["environments"]["solo"]
    solo["vault"]["policies"]["payments-app"] += (
        f'path "{mount}/creds/payments-app" {{ capabilities = ["read"] }}\n'
        'path "sys/leases/revoke" { capabilities = ["update"] }\n'
    )
    solo["vault"]["database"] = {
        "mount": mount,
        "roles": {"payments-app": {"default_ttl": "1h", "max_ttl": "2h"}},
    }
    solo["safety"] = {"allow_effects": ["read", "write"]}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of this test's own for PostgreSQL's data (the ``postgres`` user may enter it),
    so that what is left in it afterwards is this test's doing."""
    folder = Path(tempfile.mkdtemp(prefix="parityprobe-lab-test-"))
    folder.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    for child in folder.iterdir():
        subprocess.run(["rm", "-rf", str(child)], check=False)
    folder.rmdir()


def _roles_made_by_vault(lab: LabState, server: ServerRecord) -> list[str]:
    """The cluster's roles other than its admin and PostgreSQL's own (``pg_*``), as the admin role sees
    them, with the password the lab wrote."""
    password = (lab.directory / server.environment / "secrets" / "postgres-admin-password").read_text()
    with psycopg.connect(
        host="127.0.0.1", port=server.port, dbname="postgres", user=ADMIN_USER, password=password
    ) as conn:
        sql = "SELECT rolname FROM pg_roles WHERE NOT starts_with(rolname, 'pg_') AND rolname <> %s"
        return sorted(str(row[0]) for row in conn.execute(sql, (ADMIN_USER,)).fetchall())


def _leases(lab: LabState, environment: str, prefix: str) -> list[str]:
    """The leases under ``prefix`` on the environment's OpenBao, as its root token sees them."""
    root = (lab.directory / environment / "secrets" / "root-token").read_text()
    client = hvac.Client(url=lab.server(environment, "openbao").url, token=root)
    try:
        return list(client.sys.list_leases(prefix=prefix)["data"]["keys"])
    except hvac.exceptions.InvalidPath:  # 404: no lease under the prefix
        return []
    finally:
        client.adapter.close()


def _run(lab: LabState, *scenarios: Path) -> Report:
    redactor, registry = Redactor(), ProbeRegistry()
    return execute(plan(lab.environments_file, list(scenarios), redactor, registry), redactor, registry)


def test_a_database_lab_runs_postgres_and_the_undos_leave_nothing(tmp_path: Path, private_tmp: Path) -> None:
    directory = tmp_path / "lab"
    lab = up(directory, _database_profile(tmp_path / "database.yaml"))
    try:
        postgres = lab.server("solo", "postgres")
        current = status(directory)
        assert current is not None and current.running
        assert ("solo", "postgres", f"postgresql://127.0.0.1:{postgres.port}") in {
            (s.environment, s.kind, s.url) for s in current.servers
        }
        assert postgres.data_dir is not None and postgres.data_dir.parent == private_tmp
        section = yaml.safe_load(lab.environments_file.read_text())["environments"]["solo"]["postgres"]
        assert section == {
            "host": "127.0.0.1",
            "port": postgres.port,
            "dbname": "postgres",
            "sslmode": "disable",
        }
        password_file = directory / "solo" / "secrets" / "postgres-admin-password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password_file.read_text() not in lab.environments_file.read_text()
        assert password_file.read_text() not in (directory / "lab-state.json").read_text()

        creds_only = tmp_path / "creds-only.yaml"
        creds_only.write_text(_CREDS_ONLY)
        report = _run(lab, REPO / "scenarios" / "vault-database.yaml", creds_only)
        observed = {
            (c.spec.id, o.step): o for c in report.comparisons for run in c.runs for o in run.observations
        }
        assert {key: o.outcome for key, o in observed.items()} == {
            ("vault-database", "creds"): Outcome.ALLOWED,
            ("vault-database", "connect"): Outcome.ALLOWED,
            ("vault-database", "revoke"): Outcome.ALLOWED,
            ("vault-database", "connect-after-revoke"): Outcome.DENIED,
            ("creds-only", "creds"): Outcome.ALLOWED,
            ("creds-only", "connect"): Outcome.ALLOWED,
        }
        undos = {c.spec.id: [o.outcome for run in c.runs for o in run.cleanup] for c in report.comparisons}
        # vault-database revoked its lease itself; creds-only's lease is revoked by the undo alone.
        assert undos == {"vault-database": [Outcome.NOT_FOUND], "creds-only": [Outcome.ALLOWED]}
        # Both credentials did log in, as PostgreSQL's connection log shows; nothing of them is left.
        users = {observed[(s, "creds")].outputs["username"] for s in ("vault-database", "creds-only")}
        log = postgres.log_path.read_text()
        assert all(f"user={user} " in log for user in users) and len(users) == 2
        assert not _leases(lab, "solo", "database/creds/payments-app/")
        assert _roles_made_by_vault(lab, postgres) == []
    finally:
        stopped = down(directory)
    assert ("solo", "postgres") in {(s.environment, s.kind) for s in lab.servers}
    assert len(stopped) == 4  # OpenBao, moto, PostgreSQL and the SIEM forwarder
    assert not [s for s in lab.servers if pid_alive(s.pid)]
    assert all(_port_closed(s.port) for s in lab.servers)
    assert not _server_processes(directory)
    assert list(private_tmp.iterdir()) == []  # the data directory is gone
    assert not (directory / "solo" / "secrets").exists()
    assert (directory / "solo" / "postgres" / "postgres.log").exists()  # the log is kept


def test_a_database_that_fails_to_seed_leaves_nothing_running(tmp_path: Path, private_tmp: Path) -> None:
    # The KV engine already has secret/: mounting the database engine there is refused.
    profile = _database_profile(tmp_path / "clash.yaml", mount="secret")
    directory = tmp_path / "lab"
    with pytest.raises(LabError, match="seeding the database secrets engine"):
        up(directory, profile)
    assert (directory / "solo" / "postgres" / "postgres.log").exists()  # PostgreSQL did start
    assert not _server_processes(directory)
    assert status(directory) is None
    assert list(private_tmp.iterdir()) == []
    assert not (directory / "solo" / "secrets").exists()


# --- bad profiles ----------------------------------------------------------------------------------------

_PROFILE = """\
environments:
  staging:
    account_id: "111111111111"
    tier: staging
    vault:
      workload_role: app
      approle_roles:
        app: {token_policies: [default], token_ttl: 1h, token_max_ttl: 1h}
    aws:
      workload_user: app
      users:
        app:
          access_key: true
          policies:
            p:
              Statement: [{Effect: Allow, Action: "s3:GetObject", Resource: "${vars.bucket}"}]
      buckets:
        ${vars.bucket}: [a.csv]
    vars: {bucket: "b-${account_id}"}
"""


def test_the_small_profile_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(_PROFILE)
    env = load_profile(path).environments["staging"]
    assert env.aws.buckets == {"b-111111111111": ["a.csv"]}
    assert env.aws.users["app"].policies["p"].Statement[0].Resource == "b-111111111111"


@pytest.mark.parametrize(
    ("old", "new", "field", "line"),
    [
        (
            "access_key: true",
            "access_key: true\n          colour: blue",
            "environments.staging.aws.users.app.colour",
            14,
        ),
        ("token_ttl: 1h", "token_ttl: [1h]", "environments.staging.vault.approle_roles.app.token_ttl", 8),
        ("access_key: true", "access_key: maybe", "environments.staging.aws.users.app.access_key", 13),
        (
            "Effect: Allow",
            "Effect: Permit",
            "environments.staging.aws.users.app.policies.p.Statement[0].Effect",
            16,
        ),
        (
            '${vars.bucket}"}',
            '${vars.nope}"}',
            "environments.staging.aws.users.app.policies.p.Statement[0].Resource",
            16,
        ),
        ("workload_user: app", "workload_user: ghost", "environments.staging.aws", 9),
        # A rotation schedule for a secret the profile does not create; an auditor without a key.
        (
            "      buckets:",
            "      rotation: {ghost: {every_days: 30}}\n      buckets:",
            "environments.staging.aws",
            9,
        ),
        ("workload_user: app", "workload_user: app\n      auditor_user: app2", "environments.staging.aws", 9),
        # The approval file's var would overwrite a var the profile sets.
        (
            "      buckets:",
            "      roles:\n        r: {trusted_users: [app], external_id_var: bucket}\n      buckets:",
            "environments.staging",
            2,
        ),
        # An OAuth API whose workload client is not one of its clients.
        (
            "    vars: {bucket",
            "    http: {workload_client: app, clients: {other: {scopes: [s]}}}\n    vars: {bucket",
            "environments.staging.http",
            19,
        ),
    ],
)
def test_a_bad_profile_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, line: int
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(_PROFILE.replace(old, new, 1))
    with pytest.raises(InputError) as caught:
        load_profile(path)
    problems = caught.value.problems
    assert [(p.file, p.field) for p in problems] == [(path, field)]
    assert problems[0].line == line
