"""``vault.break_glass_login`` against a real OpenBao server: the drill, the single use of its wrapping
token, and the undos that leave nothing behind."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions as hv
import pytest

from parityprobe.config.environments import Environment
from parityprobe.config.secretref import MAX_SECRET_FILE_BYTES
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import Effect, ErrorKind, Grant, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.vault.break_glass import NOT_A_SECRET_ID, BreakGlassLogin
from parityprobe.probes.vault.errors import WRAPPING_TOKEN_INVALID
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret
from parityprobe.undo import MemoryJournal, RunJournal
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
DRILL = BreakGlassLogin()
USED = Failure(Outcome.DENIED, WRAPPING_TOKEN_INVALID)


@dataclass(frozen=True)
class Glass:
    admin: Any
    mount: str
    policy: str
    role: str  # secret ids usable any number of times: the undo must destroy them
    role_id: Secret
    once_role: str  # secret_id_num_uses = 1: the login uses the secret id up
    once_role_id: Secret
    env: Environment  # acting as root
    folder: Path

    def wrapped(self, role: str, name: str, wrap_ttl: str = "5m") -> tuple[Path, str]:
        """An approver's hand-over: a file holding the wrapping token of a new secret id of ``role``, and
        the wrapped secret id's accessor."""
        reply = self.admin.auth.approle.generate_secret_id(role, mount_point=self.mount, wrap_ttl=wrap_ttl)
        path = self.folder / f"{name}.wrapped"
        path.write_text(reply["wrap_info"]["token"] + "\n")
        return path, reply["wrap_info"]["wrapped_accessor"]

    def accessors(self, role: str) -> set[str]:
        try:
            reply = self.admin.auth.approle.list_secret_id_accessors(role, mount_point=self.mount)
        except hv.InvalidPath:
            return set()
        return set(reply["data"]["keys"])


@pytest.fixture(scope="module")
def glass(openbao: tuple[ServerProcess, Secret], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Glass]:
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    mount = f"approle-bg-{RUN}"
    admin.sys.enable_auth_method("approle", path=mount)
    policy = f"break-glass-{RUN}"
    admin.sys.create_or_update_policy(
        policy, 'path "secret/data/prod/*" { capabilities = ["read", "update"] }'
    )
    roles = []
    for name, uses in ((f"bg-{RUN}", 0), (f"bg-once-{RUN}", 1)):
        admin.auth.approle.create_or_update_approle(
            name,
            mount_point=mount,
            token_policies=[policy],
            token_ttl="15m",
            token_max_ttl="30m",
            secret_id_ttl="10m",
            secret_id_num_uses=uses,
        )
        role_id = admin.auth.approle.read_role_id(name, mount_point=mount)["data"]["role_id"]
        roles.append((name, Secret(role_id, "approle role id")))
    folder = tmp_path_factory.mktemp("break-glass")
    (folder / "token").write_text(root.reveal() + "\n")
    auth = {"method": "token", "token": {"file": "token"}}
    env = environment(
        {
            "name": "production",
            "vault": {"address": server.url, "auth": auth},
            "safety": {"allow_effects": ["read", "write", "privileged"]},
        }
    )
    assert env.vault is not None and isinstance(env.vault.auth, VaultToken)
    env.vault.auth.token.resolve(folder, "vault token")
    (role, role_id), (once, once_id) = roles
    yield Glass(admin, mount, policy, role, role_id, once, once_id, env, folder)
    admin.adapter.close()


def _context(glass: Glass, step: str, journal: RunJournal | None = None) -> ProbeContext:
    return dataclasses.replace(probe_context(glass.env, step, run=RUN), journal=journal)


def _journal(glass: Glass) -> RunJournal:
    return RunJournal(MemoryJournal(), RUN, glass.env.name)


def _drill(
    glass: Glass, step: str, file: Path, role_id: Secret, journal: RunJournal | None = None
) -> tuple[ProbeResult | Failure, ProbeContext]:
    ctx = _context(glass, step, journal)
    role_id_file = file.with_name(f"{file.name}.role-id")  # handed over beside the wrapped secret id
    role_id_file.write_text(role_id.reveal())
    params = {"role_id_file": str(role_id_file), "wrapped_secret_id_file": str(file), "mount": glass.mount}
    return observe(DRILL, params, ctx), ctx


def _run_undos(glass: Glass, journal: RunJournal) -> list[tuple[str, ProbeResult | Failure]]:
    """The pending undos, most recent first, as the runner runs them (by registered probe name)."""
    registry = ProbeRegistry()
    results = []
    for index, entry in enumerate(reversed(journal.pending())):
        probe = registry.probe(entry.undo.probe)
        results.append(
            (entry.undo.probe, observe(probe, entry.undo.arguments(), _context(glass, f"undo-{index}")))
        )
        journal.journal.resolve(entry.id)
    return results


def _token_alive(glass: Glass, token: Secret) -> bool:
    try:
        glass.admin.auth.token.lookup(token.reveal())
    except (hv.Forbidden, hv.InvalidRequest):  # OpenBao: 400 "bad token" for a revoked one, via lookup
        return False
    return True


def test_the_drill_logs_in_with_the_break_glass_policies_and_leaves_nothing(glass: Glass) -> None:
    file, wrapped_accessor = glass.wrapped(glass.role, "drill")
    wrapping = file.read_text().strip()
    before = glass.accessors(glass.role)
    assert wrapped_accessor in before
    journal = _journal(glass)

    result, ctx = _drill(glass, "drill", file, glass.role_id, journal)
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert result.grant == Grant(
        ttl_seconds=900,
        policies=frozenset({glass.policy, "default"}),
        renewable=True,
        identity=f"approle/{glass.role}",
        attributes={"role_name": glass.role},
    )
    token, accessor = result.outputs["token"], result.outputs["accessor"]
    assert isinstance(token, Secret) and isinstance(accessor, Secret)
    assert ctx.timer.used
    assert _token_alive(glass, token)

    destroy, revoke = journal.pending()
    assert (destroy.undo.probe, revoke.undo.probe) == (
        "vault.approle_secret_id_destroy",
        "vault.token_revoke",
    )
    assert dict(destroy.undo.params) == {
        "role": glass.role,
        "mount": glass.mount,
        "accessor": wrapped_accessor,
    }
    assert dict(revoke.undo.params) == {"missing_ok": True}
    assert revoke.undo.held == {"token": token}

    # No secret anywhere a person or a store could see: result, reasons, undo records.
    visible = " ".join(
        [repr(result), str(result.reason), repr(destroy), repr(revoke), str(dict(revoke.undo.params))]
    )
    for value in (wrapping, token.reveal(), accessor.reveal()):
        assert value not in visible
        assert ctx.redactor.redact(f"x {value} y") == "x *** y"

    undone = _run_undos(glass, journal)
    assert undone == [
        ("vault.token_revoke", ProbeResult()),
        ("vault.approle_secret_id_destroy", ProbeResult()),
    ]
    assert not _token_alive(glass, token)
    assert glass.accessors(glass.role) == before - {wrapped_accessor}


def test_the_same_wrapped_file_twice_is_denied(glass: Glass) -> None:
    file, _ = glass.wrapped(glass.role, "twice")
    journal = _journal(glass)
    first, _ = _drill(glass, "first", file, glass.role_id, journal)
    assert isinstance(first, ProbeResult) and first.outcome is Outcome.ALLOWED
    _run_undos(glass, journal)

    again_journal = _journal(glass)
    second, _ = _drill(glass, "second", file, glass.role_id, again_journal)
    assert second == USED
    assert again_journal.pending() == []
    assert file.read_text().strip() not in repr(second)


def test_a_wrapping_token_unwrapped_by_someone_else_is_denied(glass: Glass) -> None:
    file, wrapped_accessor = glass.wrapped(glass.role, "intercepted")
    glass.admin.sys.unwrap(token=file.read_text().strip())  # someone got there first
    journal = _journal(glass)
    result, _ = _drill(glass, "intercepted", file, glass.role_id, journal)
    assert result == USED
    assert journal.pending() == []
    glass.admin.auth.approle.destroy_secret_id_accessor(glass.role, wrapped_accessor, mount_point=glass.mount)


def test_an_expired_wrapping_token_is_denied(glass: Glass) -> None:
    file, wrapped_accessor = glass.wrapped(glass.role, "expired", wrap_ttl="1s")
    time.sleep(2.5)  # the wrapping token's TTL, not a timing assertion
    result, _ = _drill(glass, "expired", file, glass.role_id, _journal(glass))
    assert result == USED
    glass.admin.auth.approle.destroy_secret_id_accessor(glass.role, wrapped_accessor, mount_point=glass.mount)


def test_a_wrapped_response_that_is_not_a_secret_id_is_denied_and_left_wrapped(glass: Glass) -> None:
    reply = glass.admin.auth.token.create(policies=["default"], ttl="5m", wrap_ttl="5m")
    wrapping = reply["wrap_info"]["token"]
    file = glass.folder / "not-a-secret-id.wrapped"
    file.write_text(wrapping)
    journal = _journal(glass)
    result, ctx = _drill(glass, "not-secret-id", file, glass.role_id, journal)
    assert result == ProbeResult(Outcome.DENIED, reason=NOT_A_SECRET_ID)
    assert journal.pending() == [] and not ctx.timer.used
    # The probe only looked: the wrapped token is still there to be unwrapped (and revoked).
    unwrapped = glass.admin.sys.unwrap(token=wrapping)
    glass.admin.auth.token.revoke(unwrapped["auth"]["client_token"])


def test_a_wrong_role_id_is_denied_and_the_unwrapped_secret_id_is_still_destroyed(glass: Glass) -> None:
    file, wrapped_accessor = glass.wrapped(glass.role, "wrong-role")
    journal = _journal(glass)
    result, _ = _drill(glass, "wrong-role", file, glass.once_role_id, journal)
    assert result == Failure(Outcome.DENIED, "invalid credentials")
    [destroy] = journal.pending()
    assert destroy.undo.probe == "vault.approle_secret_id_destroy"
    assert _run_undos(glass, journal) == [("vault.approle_secret_id_destroy", ProbeResult())]
    assert wrapped_accessor not in glass.accessors(glass.role)


def test_a_single_use_secret_id_is_used_up_and_needs_no_destroy(glass: Glass) -> None:
    file, wrapped_accessor = glass.wrapped(glass.once_role, "once")
    journal = _journal(glass)
    result, _ = _drill(glass, "once", file, glass.once_role_id, journal)
    assert isinstance(result, ProbeResult) and result.grant.identity == f"approle/{glass.once_role}"
    assert wrapped_accessor not in glass.accessors(glass.once_role)
    # The login used it up: its destroy undo was dropped (the environment's token need not be allowed to
    # destroy break-glass secret ids); the token's revocation is all that is left to undo.
    assert dict(_run_undos(glass, journal)) == {"vault.token_revoke": ProbeResult()}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"two tokens\n", "does not hold one wrapping token"),
        (b"\xff\xfe", "is not UTF-8 text"),
        (b"s" * (MAX_SECRET_FILE_BYTES + 1), "larger than 64 KiB"),
    ],
)
def test_a_bad_hand_over_file_is_a_harness_error_naming_the_file(
    glass: Glass, tmp_path: Path, content: bytes | None, message: str
) -> None:
    file = tmp_path / "hand-over"
    if content is not None:
        file.write_bytes(content)
    result, ctx = _drill(glass, "bad-file", file, glass.role_id)
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert message in result.reason and str(file) in result.reason
    assert not ctx.timer.used
    if content:
        assert content.decode("utf-8", "replace")[:16] not in result.reason


def test_the_drill_is_privileged_and_registered() -> None:
    assert BreakGlassLogin.effect is Effect.PRIVILEGED
    assert BreakGlassLogin.secret_outputs == BreakGlassLogin.outputs == {"token", "accessor"}
    assert ProbeRegistry().probe_class("vault.break_glass_login") is BreakGlassLogin
