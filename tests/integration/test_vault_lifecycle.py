"""vault.token_renew, vault.token_revoke and vault.request against a real OpenBao server."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import Effect, ErrorKind, Grant, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.vault.lifecycle import TokenRenew, TokenRevoke
from parityprobe.probes.vault.request import VaultRequest
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.probes.vault.token import TokenLookup
from parityprobe.secret import Secret
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
RENEW, REVOKE, REQUEST, LOOKUP = TokenRenew(), TokenRevoke(), VaultRequest(), TokenLookup()


@dataclass(frozen=True)
class Bao:
    server: ServerProcess
    admin: Any
    policy: str
    read_only: Environment
    writable: Environment

    @property
    def audit_log(self) -> Path:
        return self.server.log_path.parent / "audit.log"

    def token(self, **options: Any) -> Secret:
        """A child of the root token, with the test's policy and the default one."""
        reply = self.admin.auth.token.create(policies=[self.policy, "default"], **options)
        return Secret(reply["auth"]["client_token"], "vault token")


@pytest.fixture(scope="module")
def bao(openbao: tuple[ServerProcess, Secret]) -> Iterator[Bao]:
    """A policy and two environments acting with the root token (read only, and read + write)."""
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    policy = f"lifecycle-{secrets.token_hex(3)}"
    admin.sys.create_or_update_policy(policy, 'path "secret/data/lifecycle/*" { capabilities = ["read"] }')
    # OpenBao audits X-Correlation-ID only when told to; idempotent if another module did it already.
    admin.adapter.post("/v1/sys/config/auditing/request-headers/X-Correlation-ID", json={"hmac": False})
    # The environment's own token is given literally through the environment: the test's env var.
    vault = {"address": server.url, "auth": {"method": "token", "token": {"env": "PP_TEST_LIFECYCLE_ROOT"}}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PP_TEST_LIFECYCLE_ROOT", root.reveal())
        read_only = environment({"name": "staging", "vault": vault})
        writable = environment(
            {"name": "lab", "vault": vault, "safety": {"allow_effects": ["read", "write"]}}
        )
        for env in (read_only, writable):
            assert env.vault is not None and isinstance(env.vault.auth, VaultToken)
            env.vault.auth.token.resolve(Path.cwd(), "vault token")
    yield Bao(server, admin, policy, read_only, writable)
    admin.adapter.close()


def context(env: Environment, step: str) -> ProbeContext:
    return probe_context(env, step, run=RUN)


# --- vault.token_renew ------------------------------------------------------------------------------------


def test_renew_reports_the_new_ttl_policies_and_explicit_max_ttl(bao: Bao) -> None:
    token = bao.token(ttl="1h", renewable=True, explicit_max_ttl="2h")
    ctx = context(bao.read_only, "renew")
    result = observe(RENEW, {"token": token, "increment": "30m"}, ctx)
    assert result == ProbeResult(
        grant=Grant(
            ttl_seconds=1800,
            max_ttl_seconds=7200,
            policies=frozenset({bao.policy, "default"}),
            renewable=True,
        )
    )
    assert ctx.timer.used


def test_renew_beyond_the_max_ttl_is_capped(bao: Bao) -> None:
    token = bao.token(ttl="1h", renewable=True, explicit_max_ttl="2h")
    result = observe(RENEW, {"token": token, "increment": 5 * 3600}, context(bao.read_only, "renew-cap"))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    # OpenBao caps lease_duration at what is left of the explicit max TTL (and warns); no error.
    assert result.grant.ttl_seconds is not None and 7100 <= result.grant.ttl_seconds <= 7200
    assert result.grant.max_ttl_seconds == 7200


def test_renew_without_explicit_max_ttl_leaves_max_ttl_unknown(bao: Bao) -> None:
    token = bao.token(ttl="1h", renewable=True)
    result = observe(RENEW, {"token": token, "increment": "10m"}, context(bao.read_only, "renew-nomax"))
    assert isinstance(result, ProbeResult)
    assert (result.grant.ttl_seconds, result.grant.max_ttl_seconds) == (600, None)


def test_renew_of_a_non_renewable_token_is_denied(bao: Bao) -> None:
    # OpenBao answers 400 {"errors":["lease is not renewable"]}: the target refused, a decision.
    token = bao.token(ttl="1h", renewable=False)
    result = observe(RENEW, {"token": token}, context(bao.read_only, "renew-not-renewable"))
    assert result == ProbeResult(Outcome.DENIED, reason="not renewable")


def test_renew_of_a_revoked_token_is_denied(bao: Bao) -> None:
    token = bao.token(ttl="1h", renewable=True)
    bao.admin.auth.token.revoke(token.reveal())
    result = observe(RENEW, {"token": token}, context(bao.read_only, "renew-revoked"))
    assert result == Failure(Outcome.DENIED, "permission denied")


def test_renew_without_a_token_renews_the_environments_own(bao: Bao) -> None:
    # The root token is not renewable (no TTL): the environment's own token is the one that was used.
    result = observe(RENEW, {}, context(bao.read_only, "renew-own"))
    assert result == ProbeResult(Outcome.DENIED, reason="not renewable")


# --- vault.token_revoke -----------------------------------------------------------------------------------


def test_revoke_is_allowed_and_the_token_is_then_denied(bao: Bao) -> None:
    token = bao.token(ttl="1h")
    before = observe(LOOKUP, {"token": token}, context(bao.writable, "lookup-before"))
    assert isinstance(before, ProbeResult) and before.outcome is Outcome.ALLOWED
    ctx = context(bao.writable, "revoke")
    assert observe(REVOKE, {"token": token}, ctx) == ProbeResult()
    assert ctx.timer.used
    after = observe(LOOKUP, {"token": token}, context(bao.writable, "lookup-after"))
    assert after == Failure(Outcome.DENIED, "permission denied")
    again = observe(REVOKE, {"token": token}, context(bao.writable, "revoke-again"))
    assert again == Failure(Outcome.DENIED, "permission denied")
    # As an undo: the token is gone either way, which is what cleanup needs to know.
    undo = observe(REVOKE, {"token": token, "missing_ok": True}, context(bao.writable, "revoke-undo"))
    assert undo == ProbeResult(Outcome.NOT_FOUND, reason="already revoked or expired")


def test_revoke_requires_a_token_and_is_a_write() -> None:
    with pytest.raises(ValueError, match="token"):
        TokenRevoke.Params.model_validate({})
    assert (TokenRevoke.effect, TokenRenew.effect, VaultRequest.effect) == (
        Effect.WRITE,
        Effect.READ,
        Effect.READ,
    )


# --- vault.request ----------------------------------------------------------------------------------------


def request(env: Environment, step: str, **params: object) -> ProbeResult | Failure:
    return observe(REQUEST, params, context(env, step))


def test_request_get_is_allowed_with_only_the_status_as_output(bao: Bao) -> None:
    bao.admin.secrets.kv.v2.create_or_update_secret("lifecycle/db", {"password": "hunter2-" + RUN})
    result = request(bao.read_only, "request-get", method="GET", path="secret/data/lifecycle/db")
    assert result == ProbeResult(outputs={"status": "200"})
    assert "hunter2" not in repr(result)


def test_request_list_and_lowercase_method(bao: Bao) -> None:
    assert request(bao.read_only, "request-list", method="list", path="sys/policies/acl") == ProbeResult(
        outputs={"status": "200"}
    )


def test_request_denied_and_not_found(bao: Bao) -> None:
    token = bao.token(ttl="10m")
    denied = request(
        bao.read_only, "request-denied", method="GET", path="sys/mounts/secret/tune", token=token
    )
    assert denied == Failure(Outcome.DENIED, "permission denied")
    missing = request(bao.read_only, "request-missing", method="GET", path="secret/data/lifecycle/none")
    assert missing == Failure(Outcome.NOT_FOUND, "not found")


def test_request_write_methods_in_a_writable_environment(bao: Bao) -> None:
    path = f"secret/data/lifecycle/written-{RUN}"
    wrote = request(
        bao.writable, "request-post", method="POST", path=path, data={"data": {"n": 1, "ok": True}}
    )
    assert wrote == ProbeResult(outputs={"status": "200"})
    assert bao.admin.secrets.kv.v2.read_secret_version(
        f"lifecycle/written-{RUN}", raise_on_deleted_version=True
    )["data"]["data"] == {"n": 1, "ok": True}
    deleted = request(bao.writable, "request-delete", method="DELETE", path=path)
    assert deleted == ProbeResult(outputs={"status": "204"})


def test_request_post_in_a_read_only_environment_is_refused_before_sending(bao: Bao) -> None:
    path = f"secret/data/lifecycle/refused-{RUN}"
    result = request(bao.read_only, "request-refused", method="POST", path=path, data={"data": {"n": 1}})
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert "effect: write" in result.reason and "allow write" in result.reason
    # Nothing reached the server: no audit entry carries this step's correlation id, and nothing was written.
    # A later request (audited after any earlier one) marks how far the log must have been written.
    assert request(bao.read_only, "request-marker", method="GET", path="sys/mounts") == ProbeResult(
        outputs={"status": "200"}
    )
    seen = _wait_for_audit(bao.audit_log, f"pp-{RUN}-request-marker")
    assert f"pp-{RUN}-request-refused" not in seen
    with pytest.raises(hvac.exceptions.InvalidPath):
        bao.admin.secrets.kv.v2.read_secret_version(f"lifecycle/refused-{RUN}", raise_on_deleted_version=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "GET", "path": "/sys/mounts"}, "leading slash"),
        ({"method": "GET", "path": "secret/../sys/mounts"}, "'..'"),
        ({"method": "GET", "path": "sys/mounts?list=true"}, "'?'"),
        ({"method": "GET", "path": "secret/%2e%2e/sys"}, "'%'"),
        ({"method": "PATCH", "path": "sys/mounts"}, "method"),
        ({"method": "GET", "path": "sys/mounts", "data": {"a": 1}}, "POST or PUT"),
        ({"method": "POST", "path": "sys/x", "data": {"a": object()}}, "data"),
    ],
)
def test_request_parameters_are_validated(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        VaultRequest.Params.model_validate(params)


def _wait_for_audit(log: Path, correlation_id: str) -> set[str]:
    """Every correlation id in the audit log, once ``correlation_id`` has appeared in it (10 s at most)."""
    seen: set[str] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = set()
        for line in log.read_text().splitlines():
            headers = (json.loads(line).get("request") or {}).get("headers") or {}
            seen.update(headers.get("x-correlation-id") or [])
        if correlation_id in seen:
            return seen
        time.sleep(0.1)
    pytest.fail(f"{correlation_id} never reached the audit log")
