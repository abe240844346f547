"""vault.jwt_login and vault.kubernetes_login against a real OpenBao server, with the lab's signing keys.

What OpenBao answered, measured here (all 400 unless said, hvac InvalidRequest), and the reason it becomes:
  signed by a key the mount does not trust  'error validating token: error verifying token signature: no
                                            known key successfully validated the token signature'
                                            → invalid credentials (a token that is no JWS at all: the same)
  wrong audience      'error validating token: invalid audience (aud) claim: ...'  → audience not matched
  wrong issuer        'error validating token: invalid issuer (iss) claim'         → issuer not matched
  bound claim         'error validating claims: claim "namespace" does not match any associated bound claim
                      values' (or '... is missing')                                → claims not matched
  expired             'error validating token: invalid expiration time (exp) claim: token is expired'
                                                                                   → token expired
  unknown role        'role "<name>" could not be found'                           → unknown role
  unknown mount       403 'permission denied'                                      → permission denied
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest
from pydantic import ValidationError

from parityprobe.config.environments import Environment
from parityprobe.lab.jwt_keys import SigningKey, generate_key, sign, write_token_file
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import ErrorKind, Grant, Outcome
from parityprobe.probe import ClientCache, Failure, ProbeContext, ProbeResult, Timer
from parityprobe.probes.vault.jwt_login import JwtLogin, KubernetesLogin, WorkloadLoginParams
from parityprobe.probes.vault.lifecycle import TokenRevoke
from parityprobe.probes.vault.settings import VaultJwt, VaultKubernetes
from parityprobe.probes.vault.token import TokenLookup
from parityprobe.redact import Redactor
from parityprobe.secret import Secret
from parityprobe.undo import MemoryJournal, RunJournal
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
JWT, KUBERNETES, LOOKUP, REVOKE = JwtLogin(), KubernetesLogin(), TokenLookup(), TokenRevoke()
ISSUER = "https://lab.staging.example"
SUBJECT = "system:serviceaccount:payments:app"
ROLE = "payments"
# The mount the lab gives vault.kubernetes_login: a jwt auth method at kubernetes auth's default path.
KUBERNETES_MOUNT = "kubernetes"


@dataclass(frozen=True)
class Bao:
    server: ServerProcess
    admin: Any
    mount: str
    policy: str
    key: SigningKey  # this environment's
    other_key: SigningKey  # another environment's
    folder: Path
    env: Environment

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": SUBJECT,
            "aud": "vault",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "namespace": "payments",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def jwt(self, key: SigningKey | None = None, **changes: Any) -> Secret:
        return Secret(sign(self.claims(**changes), key or self.key), "workload jwt")

    def token_file(self, name: str, **extra: Any) -> Path:
        return write_token_file(
            self.folder / name,
            self.key,
            issuer=ISSUER,
            subject=SUBJECT,
            audience="vault",
            ttl_seconds=600,
            extra_claims={"namespace": "payments", **extra},
        )


def _configure_jwt(admin: Any, mount: str, key: SigningKey, policy: str) -> None:
    """What a lab environment's profile seeds: the mount trusting its own key, a role with bound claims."""
    admin.sys.enable_auth_method("jwt", path=mount)
    admin.write_data(
        f"auth/{mount}/config", data={"jwt_validation_pubkeys": [key.public_pem()], "bound_issuer": ISSUER}
    )
    role = {
        "role_type": "jwt",
        "bound_audiences": ["vault"],
        "bound_claims": {"namespace": "payments"},
        "claim_mappings": {"namespace": "namespace"},
        "user_claim": "sub",
        "token_policies": [policy],
        "token_ttl": "10m",
        "token_max_ttl": "1h",
    }
    admin.write_data(f"auth/{mount}/role/{ROLE}", data=role)
    admin.write_data(
        f"auth/{mount}/role/capped", data={**role, "bound_claims": None, "token_explicit_max_ttl": "30m"}
    )
    admin.write_data(f"auth/{mount}/role/batch", data={**role, "token_type": "batch"})


@pytest.fixture(scope="module")
def bao(openbao: tuple[ServerProcess, Secret], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    suffix = secrets.token_hex(3)
    mount, policy = f"jwt-{suffix}", f"workload-{suffix}"
    admin.sys.create_or_update_policy(policy, f'path "secret/data/{suffix}/*" {{ capabilities = ["read"] }}')
    key, other_key = generate_key("staging"), generate_key("production", "RS256")
    _configure_jwt(admin, mount, key, policy)
    # The kubernetes-login test needs the default path; a module that mounted it already is not expected.
    assert f"{KUBERNETES_MOUNT}/" not in admin.sys.list_auth_methods()["data"]
    _configure_jwt(admin, KUBERNETES_MOUNT, key, policy)
    folder = tmp_path_factory.mktemp("vault-jwt")
    auth = {"method": "jwt", "role": ROLE, "token_file": "workload/token", "mount": mount}
    env = environment({"name": "staging", "vault": {"address": server.url, "auth": auth}})
    assert env.vault is not None
    env.vault.resolve_paths(folder)  # as the loader does: relative to the environments file
    bao = Bao(server, admin, mount, policy, key, other_key, folder, env)
    bao.token_file("workload/token")
    yield bao
    admin.sys.disable_auth_method(mount)
    admin.sys.disable_auth_method(KUBERNETES_MOUNT)
    admin.adapter.close()


def context(bao: Bao, step: str, journal: RunJournal | None = None) -> ProbeContext:
    if journal is None:
        return probe_context(bao.env, step, run=RUN)
    return ProbeContext(
        environment=bao.env,
        correlation_id=f"pp-{RUN}-{step}",
        deadline=time.monotonic() + 30,
        timer=Timer(),
        redactor=Redactor(),
        clients=ClientCache(),
        journal=journal,
    )


def login(bao: Bao, params: Mapping[str, object], step: str) -> ProbeResult | Failure:
    return observe(JWT, {"mount": bao.mount, **params}, context(bao, step))


# --- allowed, and the grant -------------------------------------------------------------------------------


def test_a_login_with_the_environment_s_token_file_is_allowed_with_its_grant(bao: Bao) -> None:
    ctx = context(bao, "jwt-login")
    result = observe(
        JWT, {"role": ROLE, "jwt_file": str(bao.folder / "workload/token"), "mount": bao.mount}, ctx
    )
    assert isinstance(result, ProbeResult), result
    assert result.grant == Grant(
        ttl_seconds=600,
        max_ttl_seconds=None,  # token_max_ttl is the role's cap: nothing the token shows
        policies=frozenset({bao.policy, "default"}),
        renewable=True,
        identity=f"jwt/{ROLE}",
        attributes={"role": ROLE, "namespace": "payments", "display_name": SUBJECT},
    )
    assert set(result.outputs) == {"token", "accessor"}
    token = result.outputs["token"]
    assert isinstance(token, Secret) and isinstance(result.outputs["accessor"], Secret)
    assert ctx.timer.used
    # The token is real: the server knows it, with the role's policies.
    looked_up = bao.admin.auth.token.lookup(token.reveal())["data"]
    assert looked_up["path"] == f"auth/{bao.mount}/login" and bao.policy in looked_up["policies"]


def test_a_jwt_from_an_earlier_step_is_taken_as_given(bao: Bao) -> None:
    result = login(bao, {"role": ROLE, "jwt": bao.jwt()}, "jwt-given")
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED


def test_an_explicit_max_ttl_is_reported(bao: Bao) -> None:
    result = login(bao, {"role": "capped", "jwt": bao.jwt()}, "jwt-capped")
    assert isinstance(result, ProbeResult)
    assert (result.grant.ttl_seconds, result.grant.max_ttl_seconds) == (600, 1800)
    assert result.grant.identity == "jwt/capped"


def test_kubernetes_login_against_the_lab_s_jwt_compatible_mount_is_allowed(bao: Bao) -> None:
    # No mount given: kubernetes auth's default path, where the lab mounts a jwt auth method.
    result = observe(
        KUBERNETES, {"role": ROLE, "jwt_file": str(bao.token_file("k8s-token"))}, context(bao, "k8s")
    )
    assert isinstance(result, ProbeResult), result
    assert result.grant.identity == f"kubernetes/{ROLE}"
    assert result.grant.policies == frozenset({bao.policy, "default"})
    assert result.grant.attributes["display_name"] == SUBJECT  # the mount prefix is not part of it


# --- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"aud": "billing"}, "audience not matched"),
        ({"iss": "https://lab.production.example"}, "issuer not matched"),
        ({"namespace": "billing"}, "claims not matched"),
        ({"namespace": None}, "claims not matched"),
        ({"iat": 1, "nbf": 1, "exp": 2}, "token expired"),
        ({"nbf": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "token not yet valid"),
    ],
    ids=["audience", "issuer", "claim-mismatch", "claim-missing", "expired", "not-yet-valid"],
)
def test_a_token_the_role_does_not_accept_is_denied_with_a_fixed_reason(
    bao: Bao, changes: dict[str, Any], reason: str
) -> None:
    jwt = bao.jwt(**changes)
    result = login(bao, {"role": ROLE, "jwt": jwt}, "jwt-refused")
    assert result == Failure(Outcome.DENIED, reason)
    assert jwt.reveal() not in repr(result)


def test_a_token_signed_by_another_environment_s_key_is_denied(bao: Bao) -> None:
    result = login(bao, {"role": ROLE, "jwt": bao.jwt(bao.other_key)}, "jwt-other-key")
    assert result == Failure(Outcome.DENIED, "invalid credentials")


def test_a_token_that_is_no_jwt_is_denied(bao: Bao) -> None:
    result = login(bao, {"role": ROLE, "jwt": Secret("abc.def.ghi", "workload jwt")}, "jwt-garbage")
    assert result == Failure(Outcome.DENIED, "invalid credentials")


def test_an_unknown_role_is_denied(bao: Bao) -> None:
    result = login(bao, {"role": "no-such-role", "jwt": bao.jwt()}, "jwt-unknown-role")
    assert result == Failure(Outcome.DENIED, "unknown role")


def test_an_unknown_mount_is_denied_as_the_server_says(bao: Bao) -> None:
    result = observe(
        JWT, {"role": ROLE, "jwt": bao.jwt(), "mount": f"nothing-{RUN}"}, context(bao, "jwt-no-mount")
    )
    assert result == Failure(Outcome.DENIED, "permission denied")


# --- the undo ---------------------------------------------------------------------------------------------


def test_a_login_records_the_revocation_before_and_the_token_after(bao: Bao) -> None:
    journal = RunJournal(MemoryJournal(), RUN, "staging")
    result = observe(JWT, {"role": ROLE, "jwt": bao.jwt(), "mount": bao.mount}, context(bao, "undo", journal))
    assert isinstance(result, ProbeResult)
    [entry] = journal.pending()
    assert (entry.undo.probe, dict(entry.undo.params)) == ("vault.token_revoke", {"missing_ok": True})
    assert entry.undo.held == {"token": result.outputs["token"]}
    assert "vault.jwt_login" in entry.undo.description and entry.recorded_by == f"pp-{RUN}-undo"
    # The undo works, and again is "already gone", not a denial.
    for outcome in (Outcome.ALLOWED, Outcome.NOT_FOUND):
        revoked = observe(REVOKE, entry.undo.arguments(), context(bao, "undo-run"))
        assert isinstance(revoked, ProbeResult) and revoked.outcome is outcome


def test_a_refused_login_leaves_nothing_to_undo(bao: Bao) -> None:
    journal = RunJournal(MemoryJournal(), RUN, "staging")
    jwt = bao.jwt(aud="billing")
    result = observe(
        JWT, {"role": ROLE, "jwt": jwt, "mount": bao.mount}, context(bao, "undo-refused", journal)
    )
    assert isinstance(result, Failure) and journal.pending() == []


def test_a_batch_token_which_cannot_be_revoked_leaves_nothing_to_undo(bao: Bao) -> None:
    journal = RunJournal(MemoryJournal(), RUN, "staging")
    result = observe(
        JWT, {"role": "batch", "jwt": bao.jwt(), "mount": bao.mount}, context(bao, "undo-batch", journal)
    )
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert journal.pending() == []


# --- the token file and the parameters --------------------------------------------------------------------


def test_a_missing_token_file_is_a_harness_error_naming_the_file(bao: Bao) -> None:
    journal = RunJournal(MemoryJournal(), RUN, "staging")
    missing = bao.folder / "no-such-dir" / "token"
    ctx = context(bao, "jwt-missing-file", journal)
    result = observe(JWT, {"role": ROLE, "jwt_file": str(missing), "mount": bao.mount}, ctx)
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert str(missing) in result.reason and "Traceback" not in result.reason
    assert not ctx.timer.used and journal.pending() == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "is empty"), (b"\xff\xfe", "not UTF-8"), (b"x" * (64 * 1024 + 1), "64 KiB")],
)
def test_a_token_file_that_cannot_hold_a_token_is_a_harness_error(
    bao: Bao, content: bytes, problem: str
) -> None:
    path = bao.folder / f"bad-{secrets.token_hex(3)}"
    path.write_bytes(content)
    result = login(bao, {"role": ROLE, "jwt_file": str(path)}, "jwt-bad-file")
    assert isinstance(result, Failure) and result.error_kind is ErrorKind.HARNESS_ERROR
    assert str(path) in result.reason and problem in result.reason


@pytest.mark.parametrize(
    "params",
    [
        {"role": ROLE},
        {"role": ROLE, "jwt": Secret("a.b.c"), "jwt_file": "token"},
        {"role": "", "jwt_file": "token"},
        {"role": ROLE, "jwt_file": "token", "mount": "../sys"},
        {"role": ROLE, "jwt_file": "token", "mount": ""},
    ],
    ids=["no-token", "both-tokens", "empty-role", "mount-escapes", "empty-mount"],
)
def test_parameters_are_refused_before_anything_runs(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JWT.Params.model_validate(params)


def test_a_mount_path_may_have_several_parts() -> None:
    params = JWT.Params.model_validate({"role": ROLE, "jwt_file": "t", "mount": "/k8s/prod/"})
    assert isinstance(params, WorkloadLoginParams) and params.mount == "k8s/prod"


# --- the environment logging in with its workload identity -------------------------------------------------


def test_the_environment_s_token_file_is_relative_to_the_environments_file(bao: Bao) -> None:
    assert bao.env.vault is not None and isinstance(bao.env.vault.auth, VaultJwt)
    assert bao.env.vault.auth.token_file == os.path.abspath(bao.folder / "workload/token")
    kubernetes = environment(
        {
            "name": "prod",
            "vault": {"address": "http://x:8200", "auth": {"method": "kubernetes", "role": ROLE}},
        }
    )
    assert kubernetes.vault is not None
    kubernetes.vault.resolve_paths(bao.folder)
    auth = kubernetes.vault.auth
    assert isinstance(auth, VaultKubernetes) and auth.mount == "kubernetes"
    assert auth.token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_the_environment_s_token_file_keeps_its_symlinks(bao: Bao, tmp_path: Path) -> None:
    # A kubelet rotates the token by repointing a symlink: the path must not be pinned to today's target.
    (tmp_path / "..2030_01_01").mkdir()
    (tmp_path / "..data").symlink_to("..2030_01_01")
    auth = {"method": "jwt", "role": ROLE, "token_file": "..data/token"}
    env = environment({"name": "staging", "vault": {"address": "http://x:8200", "auth": auth}})
    assert env.vault is not None
    env.vault.resolve_paths(tmp_path)
    assert isinstance(env.vault.auth, VaultJwt)
    assert env.vault.auth.token_file == str(tmp_path / "..data" / "token")


def test_an_environment_logging_in_by_jwt_acts_with_its_own_token(bao: Bao) -> None:
    clients = ClientCache()
    first = probe_context(bao.env, "env-lookup", clients, run=RUN)
    result = observe(LOOKUP, {}, first)
    assert isinstance(result, ProbeResult), result
    assert result.grant.policies == frozenset({bao.policy, "default"})
    # One login per invocation: the second step acts with the same token.
    second = probe_context(bao.env, "env-lookup-2", clients, run=RUN)
    again = observe(LOOKUP, {}, second)
    assert isinstance(again, ProbeResult) and again.grant.policies == result.grant.policies
    jwt = (bao.folder / "workload/token").read_text()
    assert first.redactor.redact(f"jwt={jwt}") == "jwt=***"


def test_an_environment_whose_token_file_is_missing_is_a_harness_error(bao: Bao) -> None:
    auth = {"method": "jwt", "role": ROLE, "token_file": "gone/token", "mount": bao.mount}
    env = environment({"name": "staging", "vault": {"address": bao.server.url, "auth": auth}})
    assert env.vault is not None
    env.vault.resolve_paths(bao.folder)
    result = observe(LOOKUP, {}, probe_context(env, "env-missing", run=RUN))
    assert isinstance(result, Failure) and result.error_kind is ErrorKind.HARNESS_ERROR
    assert str(bao.folder / "gone/token") in result.reason


# --- secrets ----------------------------------------------------------------------------------------------


def test_neither_the_jwt_nor_the_token_appear_in_the_result(bao: Bao) -> None:
    jwt = bao.jwt()
    ctx = context(bao, "jwt-no-leak")
    result = observe(JWT, {"role": ROLE, "jwt": jwt, "mount": bao.mount}, ctx)
    assert isinstance(result, ProbeResult)
    token, accessor = result.outputs["token"], result.outputs["accessor"]
    assert isinstance(token, Secret) and isinstance(accessor, Secret)
    shown = repr(result) + str(result.grant.lines())
    for secret in (jwt, token, accessor):
        assert secret.reveal() and secret.reveal() not in shown
    # Registered the moment the probe held them, so any log line of this step masks them.
    assert ctx.redactor.redact(f"{jwt.reveal()} {token.reveal()}") == "*** ***"
    assert JWT.secret_outputs == {"token", "accessor"} == KUBERNETES.secret_outputs
