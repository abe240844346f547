"""``vault.approle_secret_id`` and ``vault.approle_secret_id_destroy`` against a real OpenBao server: the
rotation sequence a scenario runs, the undo that leaves nothing behind, and negative-login hygiene.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions as hv
import pytest

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import Effect, Grant, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.vault.login import ApproleLogin
from parityprobe.probes.vault.secret_id import (
    CORRELATION_METADATA,
    DESTROYED_UNCHECKED,
    ROLE_NOT_FOUND,
    SECRET_ID_NOT_FOUND,
    ApproleSecretId,
    ApproleSecretIdDestroy,
)
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret
from parityprobe.undo import MemoryJournal, RunJournal
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
GENERATE, DESTROY, LOGIN = ApproleSecretId(), ApproleSecretIdDestroy(), ApproleLogin()
INVALID = Failure(Outcome.DENIED, "invalid credentials")


@dataclass(frozen=True)
class Approle:
    admin: Any
    mount: str
    policy: str  # the workload's token policy
    rotator: Secret  # may generate, list, look up and destroy secret ids of any role of the mount
    destroyer: Secret  # may destroy secret ids, not look them up
    env: Environment  # acting as root

    def role(self, name: str, **options: Any) -> tuple[str, Secret]:
        """A new role named ``name-<run>`` and its role id."""
        role = f"{name}-{RUN}"
        options.setdefault("token_policies", [self.policy])
        self.admin.auth.approle.create_or_update_approle(role, mount_point=self.mount, **options)
        role_id = self.admin.auth.approle.read_role_id(role, mount_point=self.mount)["data"]["role_id"]
        return role, Secret(role_id, "approle role id")

    def secret_id(self, role: str) -> tuple[Secret, str]:
        """A secret id made by the admin (the workload's current one) and its accessor."""
        data = self.admin.auth.approle.generate_secret_id(role, mount_point=self.mount)["data"]
        return Secret(data["secret_id"], "approle secret id"), data["secret_id_accessor"]

    def accessors(self, role: str) -> set[str]:
        try:
            keys = self.admin.auth.approle.list_secret_id_accessors(role, mount_point=self.mount)["data"][
                "keys"
            ]
        except hv.InvalidPath:  # OpenBao answers 404 to a listing of no secret ids
            return set()
        return set(keys)

    def lookup(self, role: str, accessor: str) -> dict[str, Any]:
        reply = self.admin.adapter.post(
            f"/v1/auth/{self.mount}/role/{role}/secret-id-accessor/lookup",
            json={"secret_id_accessor": accessor},
        )
        data: dict[str, Any] = reply["data"]
        return data


@pytest.fixture(scope="module")
def approle(
    openbao: tuple[ServerProcess, Secret], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Approle]:
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    mount = f"approle-sid-{RUN}"
    admin.sys.enable_auth_method("approle", path=mount)
    policy = f"sid-workload-{RUN}"
    admin.sys.create_or_update_policy(policy, 'path "secret/data/sid/*" { capabilities = ["read"] }')

    def token(name: str, policy_text: str) -> Secret:
        admin.sys.create_or_update_policy(f"{name}-{RUN}", policy_text)
        reply = admin.auth.token.create(policies=[f"{name}-{RUN}"], ttl="1h")
        return Secret(reply["auth"]["client_token"], "vault token")

    rotator = token(
        "sid-rotator",
        f'path "auth/{mount}/role/+/secret-id*" {{ capabilities = ["create", "update", "list"] }}',
    )
    destroyer = token(
        "sid-destroyer", f'path "auth/{mount}/role/+/secret-id/destroy" {{ capabilities = ["update"] }}'
    )
    folder = tmp_path_factory.mktemp("secret-id")
    (folder / "token").write_text(root.reveal() + "\n")
    auth = {"method": "token", "token": {"file": "token"}}
    env = environment({"name": "staging", "vault": {"address": server.url, "auth": auth}})
    assert env.vault is not None and isinstance(env.vault.auth, VaultToken)
    env.vault.auth.token.resolve(folder, "vault token")
    yield Approle(admin, mount, policy, rotator, destroyer, env)
    admin.adapter.close()


def _context(approle: Approle, step: str, journal: RunJournal | None = None) -> ProbeContext:
    return dataclasses.replace(probe_context(approle.env, step, run=RUN), journal=journal)


def _journal(approle: Approle) -> RunJournal:
    return RunJournal(MemoryJournal(), RUN, approle.env.name)


def _login(approle: Approle, step: str, role_id: Secret, secret_id: Secret) -> ProbeResult | Failure:
    params = {"role_id": role_id, "secret_id": secret_id, "mount": approle.mount}
    return observe(LOGIN, params, _context(approle, step))


def _run_undos(approle: Approle, journal: RunJournal) -> list[ProbeResult | Failure]:
    """The pending undos, most recent first, as the runner runs them (by registered probe name)."""
    registry = ProbeRegistry()
    results = []
    for index, entry in enumerate(reversed(journal.pending())):
        probe = registry.probe(entry.undo.probe)
        results.append(observe(probe, entry.undo.arguments(), _context(approle, f"undo-{index}")))
        journal.journal.resolve(entry.id)
    return results


# --- vault.approle_secret_id ------------------------------------------------------------------------------


def test_generate_reports_the_secret_id_its_accessor_and_records_the_undo(approle: Approle) -> None:
    role, role_id = approle.role("gen", secret_id_ttl="10m")
    journal = _journal(approle)
    ctx = _context(approle, "generate", journal)
    result = observe(GENERATE, {"role": role, "mount": approle.mount, "metadata": {"ticket": "CHG-1"}}, ctx)
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert result.grant == Grant(ttl_seconds=600, attributes={"num_uses": "0"})
    secret_id, accessor = result.outputs["secret_id"], result.outputs["accessor"]
    assert isinstance(secret_id, Secret) and isinstance(accessor, str)
    read_role_id = result.outputs["role_id"]  # root may read it: what a rotation logs in with
    assert isinstance(read_role_id, Secret) and read_role_id.reveal() == role_id.reveal()
    assert ctx.timer.used
    assert approle.accessors(role) == {accessor}
    looked_up = approle.lookup(role, accessor)
    assert looked_up["metadata"] == {"ticket": "CHG-1", CORRELATION_METADATA: ctx.correlation_id}

    [entry] = journal.pending()
    assert entry.undo.probe == "vault.approle_secret_id_destroy"
    assert dict(entry.undo.params) == {"role": role, "mount": approle.mount, "accessor": accessor}
    assert not entry.undo.held
    assert secret_id.reveal() not in repr(result) and secret_id.reveal() not in repr(entry)
    assert _run_undos(approle, journal) == [ProbeResult()]
    assert approle.accessors(role) == set()


def test_generate_with_ttl_and_num_uses(approle: Approle) -> None:
    role, _ = approle.role("gen-ttl", secret_id_ttl="1h", secret_id_num_uses=5)
    journal = _journal(approle)
    params = {"role": role, "mount": approle.mount, "ttl": "2m", "num_uses": 3}
    result = observe(GENERATE, params, _context(approle, "generate-ttl", journal))
    assert isinstance(result, ProbeResult)
    assert result.grant == Grant(ttl_seconds=120, attributes={"num_uses": "3"})
    _run_undos(approle, journal)


def test_generate_refused_resolves_the_undo(approle: Approle) -> None:
    role, _ = approle.role("gen-denied")
    journal = _journal(approle)
    params = {"role": role, "mount": approle.mount, "token": approle.destroyer}
    result = observe(GENERATE, params, _context(approle, "generate-denied", journal))
    assert result == Failure(Outcome.DENIED, "permission denied")
    assert journal.pending() == []
    assert approle.accessors(role) == set()


def test_generate_for_a_missing_role_is_not_found(approle: Approle) -> None:
    journal = _journal(approle)
    params = {"role": f"nobody-{RUN}", "mount": approle.mount}
    result = observe(GENERATE, params, _context(approle, "generate-missing", journal))
    assert result == Failure(Outcome.NOT_FOUND, "not found")
    assert journal.pending() == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"role": "r", "metadata": {CORRELATION_METADATA: "x"}}, "set by the probe"),
        ({"role": "r", "ttl": 0}, "ttl must be positive"),
        ({"role": "r", "num_uses": -1}, "num_uses"),
        ({"role": "../sys"}, "role"),
        ({"role": "r", "mount": "approle/../sys"}, "mount"),
    ],
)
def test_generate_parameters_are_validated(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApproleSecretId.Params.model_validate(params)


def test_both_probes_are_write_and_registered() -> None:
    assert ApproleSecretId.effect is ApproleSecretIdDestroy.effect is Effect.WRITE
    assert ApproleSecretId.secret_outputs == {"secret_id", "role_id"}
    registry = ProbeRegistry()
    assert registry.probe_class("vault.approle_secret_id") is ApproleSecretId
    assert registry.probe_class("vault.approle_secret_id_destroy") is ApproleSecretIdDestroy


# --- the rotation -----------------------------------------------------------------------------------------


def test_rotation_new_works_old_is_refused_and_the_undo_leaves_only_what_was_there(approle: Approle) -> None:
    role, role_id = approle.role("rotate", secret_id_ttl="1h")
    old, old_accessor = approle.secret_id(role)
    _, other_accessor = approle.secret_id(role)  # a secret id the rotation must not touch
    before = approle.accessors(role)
    assert before == {old_accessor, other_accessor}
    journal = _journal(approle)

    generated = observe(
        GENERATE,
        {"role": role, "mount": approle.mount, "token": approle.rotator},
        _context(approle, "new", journal),
    )
    assert isinstance(generated, ProbeResult) and generated.outcome is Outcome.ALLOWED
    new = generated.outputs["secret_id"]
    assert isinstance(new, Secret)
    assert "role_id" not in generated.outputs  # the rotator may not read role ids: left out, not an error

    logged_in = _login(approle, "login-new", role_id, new)
    assert isinstance(logged_in, ProbeResult) and logged_in.grant.identity == f"approle/{role}"

    destroy = {"role": role, "mount": approle.mount, "secret_id": old, "token": approle.rotator}
    assert observe(DESTROY, destroy, _context(approle, "destroy-old")) == ProbeResult()
    assert _login(approle, "login-old", role_id, old) == INVALID
    # The new secret id still works once the old one is gone (a fresh token, the same grant).
    again = _login(approle, "login-new-again", role_id, new)
    assert isinstance(again, ProbeResult) and again.grant == logged_in.grant

    assert _run_undos(approle, journal) == [ProbeResult()]
    after = approle.accessors(role)
    assert after == before - {old_accessor} == {other_accessor}
    assert _login(approle, "login-new-after-undo", role_id, new) == INVALID


# --- vault.approle_secret_id_destroy ----------------------------------------------------------------------


def test_destroy_by_accessor_then_again_is_not_found(approle: Approle) -> None:
    role, _ = approle.role("destroy-acc")
    _, accessor = approle.secret_id(role)
    params = {"role": role, "mount": approle.mount, "accessor": accessor}
    ctx = _context(approle, "destroy-acc")
    assert observe(DESTROY, params, ctx) == ProbeResult()
    assert ctx.timer.used
    assert approle.accessors(role) == set()
    # OpenBao answers 500 "failed to find accessor entry for secret_id_accessor: ..." here.
    again = observe(DESTROY, params, _context(approle, "destroy-acc-again"))
    assert again == ProbeResult(Outcome.NOT_FOUND, reason=SECRET_ID_NOT_FOUND)


def test_destroy_by_secret_id_then_again_is_not_found(approle: Approle) -> None:
    role, _ = approle.role("destroy-sid")
    secret_id, _ = approle.secret_id(role)
    params = {"role": role, "mount": approle.mount, "secret_id": secret_id}
    assert observe(DESTROY, params, _context(approle, "destroy-sid")) == ProbeResult()
    assert approle.accessors(role) == set()
    # The destroy alone answers 204 for a secret id that does not exist; the lookup before it tells.
    again = observe(DESTROY, params, _context(approle, "destroy-sid-again"))
    assert again == ProbeResult(Outcome.NOT_FOUND, reason=SECRET_ID_NOT_FOUND)
    assert secret_id.reveal() not in repr(again)


@pytest.mark.parametrize("by", ["accessor", "secret_id"])
def test_destroy_in_a_missing_role_is_not_found(approle: Approle, by: str) -> None:
    value: object = "0000-unknown" if by == "accessor" else Secret("0000-unknown-secret", "approle secret id")
    params = {"role": f"nobody-{RUN}", "mount": approle.mount, by: value}
    result = observe(DESTROY, params, _context(approle, f"destroy-norole-{by}"))
    assert result == ProbeResult(Outcome.NOT_FOUND, reason=ROLE_NOT_FOUND)


def test_destroy_by_a_token_that_may_not_look_up_still_destroys_and_says_so(approle: Approle) -> None:
    role, _ = approle.role("destroy-blind")
    secret_id, _ = approle.secret_id(role)
    params = {"role": role, "mount": approle.mount, "secret_id": secret_id, "token": approle.destroyer}
    result = observe(DESTROY, params, _context(approle, "destroy-blind"))
    assert result == ProbeResult(reason=DESTROYED_UNCHECKED)
    assert approle.accessors(role) == set()


def test_destroy_denied(approle: Approle) -> None:
    role, _ = approle.role("destroy-denied")
    _, accessor = approle.secret_id(role)
    params = {"role": role, "mount": approle.mount, "accessor": accessor, "token": approle.destroyer}
    assert observe(DESTROY, params, _context(approle, "destroy-denied")) == Failure(
        Outcome.DENIED, "permission denied"
    )
    assert approle.accessors(role) == {accessor}


def test_the_undo_of_a_used_up_secret_id_reports_it_gone(approle: Approle) -> None:
    role, role_id = approle.role("used-up", secret_id_num_uses=1)
    journal = _journal(approle)
    generated = observe(GENERATE, {"role": role, "mount": approle.mount}, _context(approle, "once", journal))
    assert isinstance(generated, ProbeResult)
    secret_id = generated.outputs["secret_id"]
    assert isinstance(secret_id, Secret)
    assert isinstance(_login(approle, "login-once", role_id, secret_id), ProbeResult)
    assert _run_undos(approle, journal) == [ProbeResult(Outcome.NOT_FOUND, reason=SECRET_ID_NOT_FOUND)]


@pytest.mark.parametrize(
    "params",
    [{"role": "r"}, {"role": "r", "accessor": "a", "secret_id": Secret("s", "approle secret id")}],
)
def test_destroy_needs_exactly_one_of_accessor_and_secret_id(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ApproleSecretIdDestroy.Params.model_validate(params)


# --- negative-login hygiene -------------------------------------------------------------------------------


def test_failed_logins_lock_out_only_the_throw_away_role(approle: Approle) -> None:
    workload, workload_id = approle.role("workload")
    workload_secret, _ = approle.secret_id(workload)
    throwaway, throwaway_id = approle.role("throwaway")
    throwaway_secret, _ = approle.secret_id(throwaway)
    wrong = Secret("not-" + secrets.token_hex(8), "approle secret id")

    results = [_login(approle, f"bad-{n}", throwaway_id, wrong) for n in range(6)]
    # AppRole's user lockout: 5 failures answer "invalid role or secret ID", the 6th is refused outright.
    assert results[:5] == [INVALID] * 5
    assert results[5] == Failure(Outcome.DENIED, "permission denied")
    # Locked out: even the right secret id is refused now...
    assert _login(approle, "locked", throwaway_id, throwaway_secret) == Failure(
        Outcome.DENIED, "permission denied"
    )
    # ...but the lockout is keyed by role id: the workload's role logs in as before.
    ok = _login(approle, "workload", workload_id, workload_secret)
    assert isinstance(ok, ProbeResult) and ok.grant.identity == f"approle/{workload}"


def test_no_secret_in_results_or_undo_records(approle: Approle) -> None:
    role, _ = approle.role("leak", secret_id_ttl="10m")
    journal = _journal(approle)
    ctx = _context(approle, "leak", journal)
    result = observe(GENERATE, {"role": role, "mount": approle.mount}, ctx)
    assert isinstance(result, ProbeResult)
    secret_id = result.outputs["secret_id"]
    assert isinstance(secret_id, Secret)
    value = secret_id.reveal()
    texts = [
        repr(result),
        str(result.reason),
        repr(result.grant),
        json.dumps(dict(journal.pending()[0].undo.params)),
    ]
    assert all(value not in text for text in texts)
    assert ctx.redactor.redact(f"got {value}") == "got ***"
    _run_undos(approle, journal)
