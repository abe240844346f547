"""The Vault probes against a real OpenBao server: decisions, grants, secret handling, correlation ids."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess, free_port
from parityprobe.model import ErrorKind, Grant, Outcome
from parityprobe.probe import ClientCache, Failure, ProbeContext, ProbeResult
from parityprobe.probes.vault.client import TOKEN_KEY, connection
from parityprobe.probes.vault.kv import KvRead
from parityprobe.probes.vault.login import ApproleLogin
from parityprobe.probes.vault.settings import VaultApprole
from parityprobe.probes.vault.token import TokenLookup
from parityprobe.secret import Secret
from tests.probe_support import environments_file, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)


def context(
    env: Environment, step: str, clients: ClientCache | None = None, seconds: float = 30
) -> ProbeContext:
    return probe_context(env, step, clients, seconds, run=RUN)


LOGIN, LOOKUP, KV = ApproleLogin(), TokenLookup(), KvRead()


@dataclass(frozen=True)
class Lab:
    server: ServerProcess
    admin: Any
    env: Environment
    kv_mount: str
    approle_mount: str
    policy: str
    role: str
    password: str
    other_password: str

    @property
    def audit_log(self) -> Path:
        return self.server.log_path.parent / "audit.log"


@pytest.fixture(scope="module")
def lab(openbao: tuple[ServerProcess, Secret], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Seeds its own mounts, named per run: the server is shared by every test module of the session."""
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    suffix = secrets.token_hex(3)
    kv_mount, approle_mount = f"kv-{suffix}", f"approle-{suffix}"
    policy, role = f"payments-read-{suffix}", "payments"
    admin.sys.enable_secrets_engine("kv", path=kv_mount, options={"version": "2"})
    admin.sys.enable_auth_method("approle", path=approle_mount)
    admin.sys.create_or_update_policy(
        policy, f'path "{kv_mount}/data/payments/*" {{ capabilities = ["read"] }}'
    )
    admin.auth.approle.create_or_update_approle(
        role, token_policies=[policy], token_ttl="30m", token_max_ttl="1h", mount_point=approle_mount
    )
    # OpenBao does not audit X-Correlation-ID until told to (current Vault does by default).
    admin.adapter.post("/v1/sys/config/auditing/request-headers/X-Correlation-ID", json={"hmac": False})
    password, other = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    _write(admin, kv_mount, "payments/db", {"password": "old-" + password})
    _write(admin, kv_mount, "payments/db", {"password": password, "port": 5432})
    _write(admin, kv_mount, "billing/db", {"password": other})
    for n in range(3):
        _write(admin, kv_mount, "payments/history", {"n": str(n)})
    admin.secrets.kv.v2.delete_secret_versions("payments/history", [1], mount_point=kv_mount)
    admin.secrets.kv.v2.destroy_secret_versions("payments/history", [2], mount_point=kv_mount)

    folder = tmp_path_factory.mktemp("vault-probes")
    role_id = admin.auth.approle.read_role_id(role, mount_point=approle_mount)["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id(role, mount_point=approle_mount)["data"]["secret_id"]
    (folder / "role-id").write_text(role_id + "\n")
    (folder / "secret-id").write_text(secret_id + "\n")
    auth = {"method": "approle", "role_id": {"file": "role-id"}, "secret_id": {"file": "secret-id"}}
    envs = environments_file(
        {
            "environments": {
                "staging": {"vault": {"address": server.url, "auth": {**auth, "mount": approle_mount}}}
            }
        }
    )
    env = envs.environments["staging"]
    assert env.vault is not None and isinstance(env.vault.auth, VaultApprole)
    env.vault.auth.role_id.resolve(folder, "vault role id")
    env.vault.auth.secret_id.resolve(folder, "vault secret id")
    yield Lab(server, admin, env, kv_mount, approle_mount, policy, role, password, other)
    admin.adapter.close()


def _write(admin: Any, mount: str, path: str, data: dict[str, object]) -> None:
    admin.secrets.kv.v2.create_or_update_secret(path, data, mount_point=mount)


def login(lab: Lab, step: str = "login") -> ProbeResult:
    result = observe(LOGIN, {}, context(lab.env, step))
    assert isinstance(result, ProbeResult), result
    return result


def kv(lab: Lab, step: str, **params: object) -> ProbeResult | Failure:
    return observe(KV, {"mount": lab.kv_mount, **params}, context(lab.env, step))


def test_login_is_allowed_with_the_roles_grant(lab: Lab) -> None:
    ctx = context(lab.env, "login")
    result = observe(LOGIN, {}, ctx)
    assert isinstance(result, ProbeResult)
    assert result.outcome is Outcome.ALLOWED
    assert result.grant == Grant(
        ttl_seconds=1800,
        policies=frozenset({lab.policy, "default"}),
        identity=f"approle/{lab.role}",
        renewable=True,
        attributes={"role_name": lab.role},  # the token's metadata; the display name is the mount's alone
    )
    assert ctx.timer.used
    token, accessor = result.outputs["token"], result.outputs["accessor"]
    assert isinstance(token, Secret) and token.label == "vault token" and token.reveal().startswith("s.")
    assert isinstance(accessor, Secret) and accessor.reveal()
    for text in (repr(result), str(result), repr(result.outputs), str(result.grant)):
        assert token.reveal() not in text and accessor.reveal() not in text


def test_login_does_not_install_the_token_on_the_shared_client(lab: Lab) -> None:
    clients = ClientCache()
    ctx = context(lab.env, "login", clients)
    assert isinstance(observe(LOGIN, {}, ctx), ProbeResult)
    assert connection(ctx).client.adapter.token is None


def test_token_lookup_reports_the_same_grant_as_login(lab: Lab) -> None:
    logged_in = login(lab)
    result = observe(LOOKUP, {"token": logged_in.outputs["token"]}, context(lab.env, "lookup"))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert result.grant.identity == logged_in.grant.identity == f"approle/{lab.role}"
    assert result.grant.policies == logged_in.grant.policies
    assert result.grant.renewable is True
    assert result.grant.ttl_seconds is not None and 0 < result.grant.ttl_seconds <= 1800


def test_token_lookup_of_a_revoked_token_is_denied(lab: Lab) -> None:
    token = login(lab).outputs["token"]
    assert isinstance(token, Secret)
    lab.admin.auth.token.revoke(token.reveal())
    result = observe(LOOKUP, {"token": token}, context(lab.env, "lookup-revoked"))
    assert result == Failure(Outcome.DENIED, "permission denied")


def test_environment_approle_token_is_obtained_once_and_registered(lab: Lab) -> None:
    clients = ClientCache()
    first = context(lab.env, "lookup-1", clients)
    assert isinstance(observe(LOOKUP, {}, first), ProbeResult)
    cached: object = clients.get(TOKEN_KEY, lambda: pytest.fail("the environment token was not cached"))
    assert isinstance(cached, Secret)
    assert first.redactor.redact(f"token {cached.reveal()}") == "token ***"
    second = observe(LOOKUP, {}, context(lab.env, "lookup-2", clients))
    assert isinstance(second, ProbeResult) and second.grant.identity == f"approle/{lab.role}"
    assert clients.get(TOKEN_KEY, lambda: pytest.fail("lost")) is cached


def test_kv_read_allowed_reports_the_latest_version(lab: Lab) -> None:
    result = kv(lab, "read-own", path="payments/db")
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert result.grant == Grant(version=2)
    assert dict(result.outputs) == {"version": "2"}
    assert lab.password not in repr(result)


def test_kv_read_of_an_older_version(lab: Lab) -> None:
    result = kv(lab, "read-old", path="payments/db", version=1)
    assert isinstance(result, ProbeResult) and result.grant.version == 1


def test_kv_read_field_is_a_secret_output(lab: Lab) -> None:
    ctx = context(lab.env, "read-field")
    result = observe(KV, {"mount": lab.kv_mount, "path": "payments/db", "field": "password"}, ctx)
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    value = result.outputs["value"]
    assert isinstance(value, Secret) and value == Secret(lab.password)
    for text in (repr(result), str(result), str(result.grant.version), str(result.outputs["version"])):
        assert lab.password not in text
    assert ctx.redactor.redact(lab.password) == "***"
    port = kv(lab, "read-port", path="payments/db", field="port")
    assert isinstance(port, ProbeResult) and port.outputs["value"] == Secret("5432")


def test_kv_read_missing_field_is_not_found(lab: Lab) -> None:
    result = kv(lab, "read-nofield", path="payments/db", field="username")
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.NOT_FOUND, "field not found")
    assert "value" not in result.outputs and result.grant.version == 2


def test_kv_read_of_another_teams_secret_is_denied(lab: Lab) -> None:
    result = kv(lab, "read-other-team", path="billing/db", field="password")
    assert result == Failure(Outcome.DENIED, "permission denied")


def test_kv_read_of_a_missing_path_is_not_found(lab: Lab) -> None:
    assert kv(lab, "read-missing", path="payments/nothing-here") == Failure(Outcome.NOT_FOUND, "not found")


@pytest.mark.parametrize(("version", "reason"), [(1, "version deleted"), (2, "version destroyed")])
def test_kv_read_of_a_deleted_or_destroyed_version_is_not_found(lab: Lab, version: int, reason: str) -> None:
    result = kv(lab, f"read-gone-{version}", path="payments/history", version=version)
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason, result.grant.version) == (Outcome.NOT_FOUND, reason, version)


def test_login_with_a_wrong_secret_id_is_denied(lab: Lab) -> None:
    # A throw-away role: five failures lock a role id out for 15 minutes, also for the right secret id.
    role = f"throwaway-{secrets.token_hex(3)}"
    lab.admin.auth.approle.create_or_update_approle(
        role, token_policies=["default"], mount_point=lab.approle_mount
    )
    role_id = lab.admin.auth.approle.read_role_id(role, mount_point=lab.approle_mount)["data"]["role_id"]
    params = {"role_id": Secret(role_id), "secret_id": Secret(secrets.token_hex(16))}
    result = observe(LOGIN, params, context(lab.env, "bad-login"))
    assert result == Failure(Outcome.DENIED, "invalid credentials")


def at(env: Environment, port: int) -> Environment:
    assert env.vault is not None
    return env.model_copy(
        update={"vault": env.vault.model_copy(update={"address": f"http://127.0.0.1:{port}"})}
    )


def test_unreachable_vault_is_an_error_not_a_denial(lab: Lab) -> None:
    closed = at(lab.env, free_port())
    for probe, params in ((LOGIN, {}), (KV, {"path": "payments/db", "token": Secret("s.not-a-token")})):
        result = observe(probe, params, context(closed, "unreachable"))
        assert isinstance(result, Failure) and result.outcome is Outcome.ERROR
        assert result.error_kind is ErrorKind.UNREACHABLE


def test_silent_vault_times_out_within_the_steps_deadline(lab: Lab) -> None:
    # A socket that accepts connections and never answers; the request's timeout comes from the step's
    # deadline (0.3 s here), not from the environment's 10 s.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        ctx = context(at(lab.env, silent.getsockname()[1]), "silent", seconds=0.3)
        result = observe(KV, {"path": "payments/db", "token": Secret("s.not-a-token")}, ctx)
    assert result == Failure.error(ErrorKind.TIMEOUT, "timed out")


def test_environment_without_vault_is_a_harness_error() -> None:
    result = observe(KV, {"path": "payments/db"}, context(Environment(name="bare"), "no-vault"))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert "vault" in result.reason


def test_requests_outside_a_step_are_refused(lab: Lab) -> None:
    # The shared client is only usable inside step_client(): a request without a correlation id never leaves.
    client = connection(context(lab.env, "outside")).client
    with pytest.raises(RuntimeError, match="correlation id"):
        client.sys.read_health_status(method="GET")


def test_correlation_id_reaches_the_audit_log(lab: Lab) -> None:
    login(lab, "audit-login")
    assert isinstance(kv(lab, "audit-read", path="payments/db"), ProbeResult)
    # An environment-auth step logs in under its own correlation id, then reads under the same one.
    assert isinstance(kv(lab, "audit-env-read", path="payments/db", token=None), ProbeResult)
    login_path, read_path = f"auth/{lab.approle_mount}/login", f"{lab.kv_mount}/data/payments/db"
    expected = {
        ("audit-login", login_path),
        ("audit-read", read_path),
        ("audit-env-read", login_path),
        ("audit-env-read", read_path),
    }
    seen: set[tuple[str, str, str]] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = _audited(lab.audit_log)
        if all((f"pp-{RUN}-{s}", p, t) in seen for s, p in expected for t in ("request", "response")):
            break
        time.sleep(0.1)
    for step, path in expected:
        for kind in ("request", "response"):
            assert (f"pp-{RUN}-{step}", path, kind) in seen, (step, path, kind)


def _audited(log: Path) -> set[tuple[str, str, str]]:
    """(correlation id, path, entry type) of every audit entry that carries one."""
    found: set[tuple[str, str, str]] = set()
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        request = entry.get("request") or {}
        ids = (request.get("headers") or {}).get("x-correlation-id")
        if ids:
            assert len(ids) == 1, ids
            found.add((ids[0], request.get("path", ""), entry.get("type", "")))
    return found
