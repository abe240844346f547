"""The lab's lifecycle: local environments on real servers, seeded from a lab profile, up and down.

Per environment of the profile: one OpenBao dev server and one moto server (its own AWS account) on free
loopback ports, and an entry in ``<directory>/environments.yaml``, which parityprobe uses exactly as one
written for real infrastructure. An environment whose profile has Vault's database secrets engine also gets
a PostgreSQL of its own (see :mod:`.postgres`), which the engine issues credentials for, and a ``postgres``
section in its entry; one whose profile has an ``http`` API gets an OAuth 2.0 server with a protected API
(see :mod:`.oauth_server`) and an ``http`` section with the workload's client; one whose profile has
``net`` or ``tls`` gets TCP listeners and TLS endpoints (see :mod:`.net_lab`), vars for their hosts and ports
and a ``tls`` section with the workload's client certificate. The CLI's default
directory is :data:`parityprobe.lab.DEFAULT_DIRECTORY`; give the lab a directory of its own::

    environments.yaml        connections, vars, tier, safety; secrets only as {file: ...} references
    lab-state.json           per environment: server kinds, pids, ports, logs (no secrets); see :mod:`.state`
    <env>/secrets/           0600 files: the workload's credentials, which environments.yaml refers to
                             (the auditor token ``vault.config`` reads with among them), the workload's
                             signed JWTs (``jwt-token-<var>``; their absolute paths are the environment's
                             vars of those names), and the root token, lab admin key and PostgreSQL admin
                             password, which nothing reads back (they are there for poking at the lab by
                             hand); the approvals roles ask for (``aws-approval-<var>``: an external id,
                             the var's value its path); the OAuth server's clients and the workload
                             client's secret; the auditor's key (``aws.config_credentials``); removed by
                             ``down``
    <env>/vault-audit.log    OpenBao's file audit device (X-Correlation-ID audited un-HMAC'd)
    <env>/tls/               the environment's CA bundle and certificates, keys 0600 (see :mod:`.net_lab`);
                             removed by ``down``
    <env>/openbao/, <env>/moto/, <env>/postgres/, <env>/oauth/, <env>/net/
                             server logs, kept after ``down`` (PostgreSQL's data directory is under the
                             system's temporary directory; ``down`` removes it)
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import Any

import yaml

from parityprobe.config.environments import SectionRegistry, environments_model
from parityprobe.errors import LabError
from parityprobe.lab.jwt_keys import SigningKey, generate_key, write_token_file
from parityprobe.lab.net_lab import (
    NetworkEntry,
    forget_network,
    generate_authorities,
    has_network,
    start_network,
)
from parityprobe.lab.net_profile import CertificateAuthority as AuthorityProfile
from parityprobe.lab.postgres import ADMIN_USER, PostgresServer, start_postgres, stop_postgres
from parityprobe.lab.postgres import KIND as POSTGRES
from parityprobe.lab.profile import DEFAULT_PROFILE, EnvironmentProfile, SiemProfile, load_profile
from parityprobe.lab.profile import profile_path as find_profile
from parityprobe.lab.seed_aws import REGION, AccessKey, AwsSeed, seed_aws
from parityprobe.lab.seed_database import seed_database
from parityprobe.lab.seed_vault import JwtTrust, VaultSeed, seed_vault
from parityprobe.lab.servers import (
    open_private,
    start_moto,
    start_oauth,
    start_openbao,
    start_siem_forwarder,
    stop_pid,
)
from parityprobe.lab.state import (
    LabState,
    LabStatus,
    Recorder,
    ServerRecord,
    forget_state,
    lab_lock,
    read_state,
)
from parityprobe.secret import Secret

__all__ = ["LabStatus", "down", "running_lab", "status", "up"]  # LabStatus too: the CLI imports it from here

_OAUTH_CONFIG = "oauth-server.json"  # the OAuth server's clients with their secrets, read when it starts
_FORWARDER_CONFIG = "siem-forwarder.json"  # the SIEM forwarder's stores with their credentials
_SECRET_FILES = frozenset(
    {"root-token", "vault-role-id", "vault-secret-id", "aws-access-key-id", "aws-secret-access-key"}
    | {"aws-admin-access-key-id", "aws-admin-secret-access-key", "vault-config-token"}
    | {"postgres-admin-password", "break-glass-role-id", "break-glass-wrapped-secret-id"}
    | {"oauth-client-secret", _OAUTH_CONFIG, "aws-auditor-access-key-id", "aws-auditor-secret-access-key"}
    | {_FORWARDER_CONFIG, "siem-sql-url"}
)
# How the names of PostgreSQL's data directories start (start_postgres's mkdtemp): the only ones down removes.
_POSTGRES_DATA_PREFIX = "parityprobe-postgres-"
_JWT_TOKEN_PREFIX = "jwt-token-"  # then the var's name: one file per entry of the profile's jwt_tokens
_APPROVAL_PREFIX = "aws-approval-"  # then the var's name: a role's external id (external_id_var)
OAUTH = "oauth"
FORWARDER = "forwarder"
_AUDIT_LOG = "vault-audit.log"


def up(directory: Path, profile: str | Path | None = None) -> LabState:
    """Start, seed and describe a lab in ``directory`` from ``profile``: a shipped profile's name
    (``default``, ``vault-gaps``, ``aws-gaps``, ``net-gaps``), a profile file, or the default profile when
    not given.

    InputError for an unknown profile name or a bad profile, before anything starts. LabError when a lab is
    already running there, or when anything fails, after every server started so far has been stopped again.
    """
    directory = directory.resolve()
    profile_path = (DEFAULT_PROFILE if profile is None else find_profile(profile)).resolve()
    loaded = load_profile(profile_path)
    environments = loaded.environments
    directory.mkdir(parents=True, exist_ok=True)
    with lab_lock(directory):
        existing = read_state(directory)
        if existing is not None:
            if any(s.alive() for s in existing.servers):
                raise LabError(
                    f"a lab is already running in {directory}; stop it with 'parityprobe lab down'"
                )
            _stop_servers(existing.servers)  # a previous lab whose servers have died: only their data is left
            _forget(existing)
        recorder = Recorder(LabState(directory, profile_path))
        try:
            _bring_up(environments, recorder, loaded.certificate_authorities)
        except BaseException as exc:
            with _signals_held():
                _stop_servers(recorder.state.servers)
                _forget(recorder.state, environments)
            if isinstance(exc, LabError) or not isinstance(exc, Exception):
                raise
            raise LabError(f"the lab did not start: {type(exc).__name__}: {exc}") from exc
        return recorder.state


def down(directory: Path) -> list[str]:
    """Stop every server of the lab in ``directory`` and forget it; what was stopped, one line each.

    Idempotent: with no lab there, or with its servers already gone, it only tidies up.
    """
    directory = directory.resolve()
    if not directory.is_dir():
        return []
    with lab_lock(directory), _signals_held():
        state = read_state(directory)
        if state is None:
            return []
        stopped = _stop_servers(state.servers)
        survivors = [f"{s.environment} {s.kind} (pid {s.pid})" for s in state.servers if s.alive()]
        if survivors:
            raise LabError(f"could not stop {', '.join(survivors)}; the lab state in {directory} is kept")
        _forget(state)
        return [f"{s.environment} {s.kind} (pid {s.pid}, {s.url})" for s in stopped]


def status(directory: Path) -> LabStatus | None:
    """Which servers of the lab in ``directory`` are alive, and where; None when there is no lab."""
    state = read_state(directory.resolve())
    return None if state is None else LabStatus.of(state)


@contextmanager
def running_lab(directory: Path, profile: str | Path | None = None) -> Iterator[LabState]:
    """A lab that is up inside the block and down after it, also on exceptions, Ctrl-C and SIGTERM."""
    with _sigterm_as_exit():
        state = up(directory, profile)
        try:
            yield state
        finally:
            down(directory)


def _bring_up(
    environments: Mapping[str, EnvironmentProfile],
    recorder: Recorder,
    declared_authorities: Mapping[str, AuthorityProfile],
) -> None:
    directory = recorder.state.directory
    tokens = {name: Secret(token_urlsafe(24), f"{name} vault root token") for name in environments}
    for name in environments:
        # A SIEM reading the audit log must see this lab's events only.
        (directory / name / _AUDIT_LOG).unlink(missing_ok=True)
        _write_secret(directory, name, "root-token", tokens[name])

    # One signing key per environment, held in memory only: each environment's OpenBao trusts its own.
    trust = {name: JwtTrust(generate_key(name), f"https://lab.{name}.example") for name in environments}
    # Once per lab: environments naming the same authority share it, as they share an internal CA.
    authorities = generate_authorities(declared_authorities, environments)

    def vault(name: str) -> VaultSeed:
        audit_log = directory / name / _AUDIT_LOG
        server = start_openbao(
            directory / name / "openbao",
            tokens[name],
            audit_log=audit_log,
            on_spawn=lambda spawned: recorder.add(name, spawned, audit_log),
        )
        return seed_vault(server.url, tokens[name], environments[name].vault, trust[name])

    def aws(name: str) -> AwsSeed:
        server = start_moto(
            directory / name / "moto",
            environments[name].account_id,
            on_spawn=lambda spawned: recorder.add(name, spawned),
        )
        return seed_aws(server.url, environments[name].aws)

    def oauth(name: str) -> Secret:
        """The environment's OAuth server; the workload client's secret (all clients' are generated)."""
        http = environments[name].http
        assert http is not None
        secrets = {
            client: Secret(token_urlsafe(24), f"{name} oauth client {client}") for client in http.clients
        }
        config = {
            "clients": {
                c: {"secret": secrets[c].reveal(), "scopes": s.scopes} for c, s in http.clients.items()
            },
            "resources": http.resources,
            "token_ttl": http.token_ttl,
        }
        config_file = directory / name / "secrets" / _OAUTH_CONFIG
        _write_secret(directory, name, _OAUTH_CONFIG, Secret(json.dumps(config), "oauth server clients"))
        start_oauth(
            directory / name / OAUTH, config_file, on_spawn=lambda spawned: recorder.add(name, spawned)
        )
        return secrets[http.workload_client]

    def postgres(name: str) -> PostgresServer:
        server = start_postgres(
            directory / name / POSTGRES, on_spawn=lambda spawned: recorder.add(name, spawned)
        )
        # Recorded again with its data directory, which start_postgres removes itself should it fail.
        recorder.add(name, server.process, data_dir=server.data_root)
        _write_secret(directory, name, "postgres-admin-password", server.admin_password)
        return server

    def network(name: str) -> NetworkEntry:
        return start_network(
            directory, name, environments[name], authorities, lambda spawned: recorder.add(name, spawned)
        )

    def database(name: str) -> None:
        server = postgres_jobs[name].result()
        seed_database(recorder.state.server(name, "openbao").url, tokens[name], engines[name], server)

    engines = {name: env.vault.database for name, env in environments.items() if env.vault.database}
    apis = [name for name, env in environments.items() if env.http is not None]
    networks = [name for name, env in environments.items() if has_network(env)]
    # A thread per job: a database job waits for its PostgreSQL job.
    jobs = 2 * len(environments) + 2 * len(engines) + len(apis) + len(networks)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="parityprobe-lab")
    try:
        oauth_jobs = {name: pool.submit(oauth, name) for name in apis}
        network_jobs = {name: pool.submit(network, name) for name in networks}
        postgres_jobs = {name: pool.submit(postgres, name) for name in engines}
        vault_jobs = {name: pool.submit(vault, name) for name in environments}
        aws_jobs = {name: pool.submit(aws, name) for name in environments}
        vault_seeds = {name: job.result() for name, job in vault_jobs.items()}
        # The engine is seeded once both its OpenBao and its PostgreSQL are up.
        database_jobs = [pool.submit(database, name) for name in engines]
        aws_seeds = {name: job.result() for name, job in aws_jobs.items()}
        postgres_servers = {name: job.result() for name, job in postgres_jobs.items()}
        for job in database_jobs:
            job.result()
        client_secrets = {name: job.result() for name, job in oauth_jobs.items()}
        network_entries = {name: job.result() for name, job in network_jobs.items()}
        for name, env in environments.items():
            if env.siem is not None:
                _start_forwarder(recorder, name, env.siem, aws_seeds[name], postgres_servers.get(name))
    finally:
        # Wait for every job even after a failure or Ctrl-C, so that no server starts after the clean-up.
        with _signals_held():
            pool.shutdown(wait=True, cancel_futures=True)
    document = {
        name: _environment_entry(
            recorder.state,
            name,
            env,
            vault_seeds[name],
            aws_seeds[name],
            trust[name],
            postgres_servers.get(name),
            client_secrets.get(name),
            network_entries.get(name),
        )
        for name, env in environments.items()
    }
    # Never write a file parityprobe refuses.
    environments_model(_SECTIONS, SectionRegistry()).model_validate({"environments": document})
    header = "# Written by `parityprobe lab up` for the lab running here. Secrets are only referenced.\n"
    body = yaml.safe_dump({"environments": document}, sort_keys=False)
    recorder.state.environments_file.write_text(header + body, encoding="utf-8")


# What the lab's environments have (postgres, http, siem and tls: some of them).
_SECTIONS = ("vault", "aws", POSTGRES, "http", "siem", "tls")


def _environment_entry(
    state: LabState,
    name: str,
    env: EnvironmentProfile,
    vault: VaultSeed,
    aws: AwsSeed,
    trust: JwtTrust,
    postgres: PostgresServer | None,
    client_secret: Secret | None,
    network: NetworkEntry | None,
) -> dict[str, Any]:
    """One environment of the environments file; writes the secret files it refers to."""

    def ref(label: str, secret: Secret) -> dict[str, str]:
        return _write_secret(state.directory, name, label, secret)

    ref("aws-admin-access-key-id", aws.admin.access_key_id)
    ref("aws-admin-secret-access-key", aws.admin.secret_access_key)
    token_files = _write_jwt_tokens(state.directory, name, env, trust)
    if vault.break_glass is not None:  # absolute paths: the drill reads them relative to its working dir
        role_id, wrapping = vault.break_glass
        token_files["break_glass_role_id_file"] = _secret_path(state, name, "break-glass-role-id", role_id)
        token_files["break_glass_wrapped_file"] = _secret_path(
            state, name, "break-glass-wrapped-secret-id", wrapping
        )
    for var, external_id in aws.approvals.items():
        token_files[var] = _secret_path(state, name, f"{_APPROVAL_PREFIX}{var}", external_id)
    aws_section: dict[str, Any] = {
        "region": REGION,
        "endpoint_url": state.server(name, "moto").url,
        "credentials": _static(ref, "aws", aws.workload),
    }
    if aws.auditor is not None:
        aws_section["config_credentials"] = _static(ref, "aws-auditor", aws.auditor)
    return {
        "tier": env.tier.value,
        "vault": {
            "address": state.server(name, "openbao").url,
            "auth": {
                "method": "approle",
                "role_id": ref("vault-role-id", vault.role_id),
                "secret_id": ref("vault-secret-id", vault.secret_id),
            },
            "config_token": ref("vault-config-token", vault.config_token),
        },
        "aws": aws_section,
        **_postgres_entry(postgres),
        **_http_entry(state, name, env, client_secret),
        **_siem_entry(state, name, env, aws, postgres),
        **({"tls": network.tls} if network is not None and network.tls is not None else {}),
        "vars": {**env.vars, **token_files, **(network.vars if network is not None else {})},
        "safety": env.safety.model_dump(mode="json", exclude_none=True),
    }


def _static(ref: Callable[[str, Secret], dict[str, str]], label: str, key: AccessKey) -> dict[str, Any]:
    """Static credentials referring to the key's two secret files (``<label>-access-key-id`` and so on)."""
    return {
        "method": "static",
        "access_key_id": ref(f"{label}-access-key-id", key.access_key_id),
        "secret_access_key": ref(f"{label}-secret-access-key", key.secret_access_key),
    }


def _secret_path(state: LabState, name: str, label: str, secret: Secret) -> str:
    _write_secret(state.directory, name, label, secret)
    return str(state.directory / name / "secrets" / label)


def _postgres_entry(server: PostgresServer | None) -> dict[str, Any]:
    """The ``postgres`` section of an environment with a PostgreSQL (loopback, no TLS); nothing otherwise.
    It holds no credentials: postgres.connect takes those Vault issues as parameters."""
    if server is None:
        return {}
    section = {"host": server.host, "port": server.port, "dbname": server.dbname, "sslmode": "disable"}
    return {POSTGRES: section}


def _http_entry(state: LabState, name: str, env: EnvironmentProfile, secret: Secret | None) -> dict[str, Any]:
    """The ``http`` section of an environment with an OAuth server: its API and the workload's client."""
    if env.http is None or secret is None:
        return {}
    client_secret = _write_secret(state.directory, name, "oauth-client-secret", secret)
    oauth2 = {
        "token_url": "/oauth/token",
        "client_id": env.http.workload_client,
        "client_secret": client_secret,
    }
    return {"http": {"base_url": state.server(name, OAUTH).url, "oauth2": oauth2}}


def _start_forwarder(
    recorder: Recorder, name: str, siem: SiemProfile, aws: AwsSeed, postgres: PostgresServer | None
) -> None:
    """The environment's SIEM forwarder: its OpenBao audit log to CloudWatch Logs in its moto server and,
    where it has a PostgreSQL, to a table there."""
    directory = recorder.state.directory
    config: dict[str, Any] = {
        "audit_log": str(directory / name / _AUDIT_LOG),
        "only_successes": siem.forward == "successes",
        "cloudwatch": {
            "endpoint_url": recorder.state.server(name, "moto").url,
            "region": REGION,
            "access_key_id": aws.admin.access_key_id.reveal(),
            "secret_access_key": aws.admin.secret_access_key.reveal(),
            "log_group": siem.log_group,
            "log_stream": name,
        },
        "postgres": None,
    }
    if postgres is not None:
        config["postgres"] = {
            "host": postgres.host,
            "port": postgres.port,
            "dbname": postgres.dbname,
            "user": ADMIN_USER,
            "password": postgres.admin_password.reveal(),
            "table": siem.table,
        }
    config_file = directory / name / "secrets" / _FORWARDER_CONFIG
    _write_secret(directory, name, _FORWARDER_CONFIG, Secret(json.dumps(config), "siem forwarder stores"))
    start_siem_forwarder(
        directory / name / FORWARDER, config_file, on_spawn=lambda spawned: recorder.add(name, spawned)
    )


def _siem_entry(
    state: LabState, name: str, env: EnvironmentProfile, aws: AwsSeed, postgres: PostgresServer | None
) -> dict[str, Any]:
    """The ``siem`` section of an environment with a lab SIEM: ``logs`` (CloudWatch Logs, the default),
    ``warehouse`` (the PostgreSQL table, where there is one) and ``audit`` (the raw audit log: what a SIEM
    should have received)."""
    if env.siem is None:
        return {}
    connectors: dict[str, Any] = {
        "logs": {
            "type": "cloudwatch_logs",
            "log_group": env.siem.log_group,
            "region": REGION,
            "endpoint_url": state.server(name, "moto").url,
            "credentials": _static(
                lambda label, secret: _write_secret(state.directory, name, label, secret),
                "aws-admin",
                aws.admin,
            ),
        },
        "audit": {"type": "file", "path": f"{name}/{_AUDIT_LOG}"},
    }
    if postgres is not None:
        url = Secret(
            f"postgresql+psycopg://{ADMIN_USER}:{postgres.admin_password.reveal()}@{postgres.host}:{postgres.port}/{postgres.dbname}",
            "siem sql url",
        )
        connectors["warehouse"] = {
            "type": "sql",
            "url": _write_secret(state.directory, name, "siem-sql-url", url),
            "table": env.siem.table,
            "columns": {"correlation_id": "correlation_id", "time": "event_time", "body": "body"},
        }
    # The lab's SIEM answers within a second: poll often, so a demo's wait stays short.
    return {"siem": {"default": "logs", "poll_interval": 1, "max_poll_interval": 5, "connectors": connectors}}


def _write_jwt_tokens(directory: Path, name: str, env: EnvironmentProfile, trust: JwtTrust) -> dict[str, str]:
    """The profile's token files for ``name``, signed with its key; var name -> the file's absolute path
    (probes read a token file relative to their working directory, so a relative one would not do)."""
    key: SigningKey = trust.key
    paths = {}
    for var, token in env.vault.jwt_tokens.items():
        path = directory / name / "secrets" / f"{_JWT_TOKEN_PREFIX}{var}"
        write_token_file(
            path,
            key,
            issuer=trust.issuer,
            subject=token.subject,
            audience=token.audience,
            ttl_seconds=token.ttl,
            extra_claims=token.claims,
        )
        paths[var] = str(path)
    return paths


def _forget(state: LabState, environments: Iterable[str] = ()) -> None:
    """Remove what only makes sense while the servers run (only files the lab writes); keep the logs."""
    forget_state(state.directory)
    state.environments_file.unlink(missing_ok=True)
    for name in {*state.environments, *environments}:
        folder = state.directory / name / "secrets"
        for label in _SECRET_FILES:
            (folder / label).unlink(missing_ok=True)
        for prefix in (_JWT_TOKEN_PREFIX, _APPROVAL_PREFIX):
            for token_file in folder.glob(f"{prefix}*"):
                token_file.unlink(missing_ok=True)
        with suppress(OSError):
            folder.rmdir()
        forget_network(state.directory, name)


def _stop_servers(servers: Iterable[ServerRecord]) -> list[ServerRecord]:
    """Stop the servers still running (PostgreSQL its own way), then remove PostgreSQL's data directories,
    also those of servers that had died; the servers that were running."""
    servers = list(servers)
    running = [s for s in servers if s.alive()]
    if running:
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            list(pool.map(_stop, running))
    for server in servers:
        if server.data_dir is not None and not server.alive():
            _remove_data_dir(server.data_dir)
    return running


def _stop(server: ServerRecord) -> None:
    if server.kind == POSTGRES:
        stop_postgres(server.pid)
    else:
        stop_pid(server.pid)


def _remove_data_dir(path: Path) -> None:
    """Remove a PostgreSQL data directory the lab state names, only if it looks like one start_postgres
    made (its name, a cluster inside): a state file is not trusted to name anything else for removal."""
    if path.name.startswith(_POSTGRES_DATA_PREFIX) and (path / "data" / "PG_VERSION").is_file():
        shutil.rmtree(path, ignore_errors=True)


def _write_secret(directory: Path, environment: str, label: str, secret: Secret) -> dict[str, str]:
    """Write one secret to a 0600 file; the ``{file: ...}`` reference to it, relative to ``directory``."""
    path = directory / environment / "secrets" / label
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open_private(path) as file:
        file.write(secret.reveal().encode("utf-8"))
    return {"file": str(path.relative_to(directory))}


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit, so that ``finally`` blocks stop the lab as they do on Ctrl-C."""
    if not _in_main_thread():
        yield
        return

    def exit_(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Defer Ctrl-C and SIGTERM while servers are being stopped, so that a second one cannot orphan any;
    a signal that arrived meanwhile is delivered again afterwards."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)
