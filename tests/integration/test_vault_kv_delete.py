"""``vault.kv_delete``, ``vault.kv_undelete`` and the capabilities helpers against a real OpenBao server.

A dry delete's promise is that it changes nothing: those tests compare the secret's metadata (current
version, every version's deletion time, update time) and data before and after. A real delete's promise is
that its undo, recorded before it, brings the version back.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions as hv
import pytest

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import Effect, ErrorKind, Grant, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.vault.capabilities import capabilities_self, decision, needed_capability
from parityprobe.probes.vault.client import step_client
from parityprobe.probes.vault.kv_delete import (
    AUTHORIZED_DRY,
    CAPABILITIES_REFUSED,
    DELETE_REFUSED,
    LATEST_ALREADY_DELETED,
    UNDO_UNRECORDABLE,
    KvDelete,
    KvUndelete,
)
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret
from parityprobe.undo import MemoryJournal, RunJournal
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
DELETE, UNDELETE = KvDelete(), KvUndelete()
DENIED = ProbeResult(Outcome.DENIED, reason="permission denied")


@dataclass(frozen=True)
class Kv:
    admin: Any
    prefix: str  # del/<suffix>: inside every policy's glob, unique to this module's run
    deleter: Secret  # read, create, update, delete on data; read on metadata; update on undelete
    reader: Secret  # read on data and metadata, nothing else
    blind: Secret  # delete on data, no metadata read
    no_default: Secret  # delete on data, created without the default policy (no sys/capabilities-self)
    root: Secret
    read_only: Environment  # acting as root, allowing read
    writable: Environment  # acting as root, allowing read and write


def _environment(folder: Path, url: str, token: Secret, **extra: Any) -> Environment:
    folder.mkdir()
    (folder / "token").write_text(token.reveal() + "\n")
    auth = {"method": "token", "token": {"file": "token"}}
    env = environment({"name": "staging", "vault": {"address": url, "auth": auth}, **extra})
    assert env.vault is not None and isinstance(env.vault.auth, VaultToken)
    env.vault.auth.token.resolve(folder, "vault token")
    return env


@pytest.fixture(scope="module")
def kv(openbao: tuple[ServerProcess, Secret], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kv]:
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    suffix = secrets.token_hex(3)
    prefix = f"del/{suffix}"

    def token(name: str, policy: str, **options: Any) -> Secret:
        admin.sys.create_or_update_policy(f"{name}-{suffix}", policy)
        reply = admin.auth.token.create(policies=[f"{name}-{suffix}"], ttl="1h", **options)
        return Secret(reply["auth"]["client_token"], "vault token")

    deleter = token(
        "kvdel",
        f'path "secret/data/{prefix}/*" {{ capabilities = ["create", "update", "read", "delete"] }}\n'
        f'path "secret/metadata/{prefix}/*" {{ capabilities = ["read"] }}\n'
        f'path "secret/undelete/{prefix}/*" {{ capabilities = ["update"] }}\n'
        f'path "secret/data/{prefix}/denied" {{ capabilities = ["deny"] }}\n',
    )
    reader = token(
        "kvread",
        f'path "secret/data/{prefix}/*" {{ capabilities = ["read"] }}\n'
        f'path "secret/metadata/{prefix}/*" {{ capabilities = ["read"] }}\n',
    )
    blind = token("kvblind", f'path "secret/data/{prefix}/*" {{ capabilities = ["delete"] }}\n')
    no_default = token(
        "kvnodef",
        f'path "secret/data/{prefix}/*" {{ capabilities = ["delete"] }}\n',
        no_default_policy=True,
    )
    folder = tmp_path_factory.mktemp("kv-delete")
    read_only = _environment(folder / "ro", server.url, root)
    writable = _environment(folder / "rw", server.url, root, safety={"allow_effects": ["read", "write"]})
    yield Kv(admin, prefix, deleter, reader, blind, no_default, root, read_only, writable)
    admin.adapter.close()


def _seed(kv: Kv, name: str, versions: int = 2) -> str:
    path = f"{kv.prefix}/{name}"
    for n in range(1, versions + 1):
        kv.admin.secrets.kv.v2.create_or_update_secret(
            path, {"password": f"{name}-{n}"}, mount_point="secret"
        )
    return path


def _state(kv: Kv, path: str) -> tuple[Any, ...]:
    """What a delete moves: the current version, every version's deletion time, the update time, the data."""
    meta = kv.admin.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")["data"]
    latest = kv.admin.secrets.kv.v2.read_secret_version(
        path, mount_point="secret", raise_on_deleted_version=False
    )
    return meta["current_version"], meta["versions"], meta["updated_time"], latest["data"]["data"]


def _context(env: Environment, step: str, journal: RunJournal | None = None) -> ProbeContext:
    return dataclasses.replace(probe_context(env, step, run=RUN), journal=journal)


def _journal(env: Environment) -> RunJournal:
    return RunJournal(MemoryJournal(), RUN, env.name)


# --- capabilities -----------------------------------------------------------------------------------------


def _capabilities(kv: Kv, token: Secret, path: str) -> frozenset[str]:
    with step_client(_context(kv.read_only, "capabilities"), token) as client:
        return capabilities_self(client, path)


def test_capabilities_self_reports_what_the_policy_grants(kv: Kv) -> None:
    granted = _capabilities(kv, kv.deleter, f"secret/data/{kv.prefix}/x")
    assert granted == {"create", "update", "read", "delete"}
    assert decision(granted, "delete") is Outcome.ALLOWED
    assert decision(granted, "list") is Outcome.DENIED
    assert decision(granted, needed_capability("PUT")) is Outcome.ALLOWED


def test_capabilities_self_deny_and_unnamed_paths_are_empty(kv: Kv) -> None:
    # OpenBao answers ["deny"] both for a path a policy denies and for one no policy names.
    assert _capabilities(kv, kv.deleter, f"secret/data/{kv.prefix}/denied") == frozenset()
    assert _capabilities(kv, kv.deleter, f"secret/data/elsewhere-{kv.prefix}") == frozenset()
    assert decision(frozenset(), "read") is Outcome.DENIED


def test_capabilities_self_root_allows_everything(kv: Kv) -> None:
    granted = _capabilities(kv, kv.root, f"secret/data/elsewhere-{kv.prefix}")
    assert granted == {"root"}
    assert decision(granted, "delete") is decision(granted, "sudo") is Outcome.ALLOWED


def test_capabilities_self_refused_without_the_default_policy(kv: Kv) -> None:
    with pytest.raises(hv.Forbidden):
        _capabilities(kv, kv.no_default, f"secret/data/{kv.prefix}/x")


@pytest.mark.parametrize(
    ("method", "needed"),
    [
        ("GET", "read"),
        ("list", "list"),
        ("POST", "create|update"),
        ("PUT", "create|update"),
        ("DELETE", "delete"),
        ("PATCH", "patch"),
    ],
)
def test_needed_capability_per_method(method: str, needed: str) -> None:
    assert needed_capability(method) == needed


def test_needed_capability_of_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="HEAD"):
        needed_capability("HEAD")


def test_decision_with_alternatives() -> None:
    assert decision(frozenset({"create"}), "create|update") is Outcome.ALLOWED
    assert decision(frozenset({"update"}), "create|update") is Outcome.ALLOWED
    assert decision(frozenset({"read"}), "create|update") is Outcome.DENIED


# --- vault.kv_delete, dry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("deleter", ProbeResult(reason=AUTHORIZED_DRY)),
        ("root", ProbeResult(reason=AUTHORIZED_DRY)),
        ("reader", DENIED),
    ],
)
def test_a_dry_delete_decides_and_changes_nothing(kv: Kv, who: str, expected: ProbeResult) -> None:
    path = _seed(kv, f"dry-{who}")
    before = _state(kv, path)
    ctx = _context(kv.read_only, f"dry-{who}", _journal(kv.read_only))
    assert observe(DELETE, {"path": path, "token": getattr(kv, who)}, ctx) == expected
    assert ctx.timer.used
    assert _state(kv, path) == before
    assert before[0] == 2 and before[3] == {"password": f"dry-{who}-2"}
    assert ctx.journal is not None and ctx.journal.pending() == []


def test_a_dry_delete_of_a_denied_path_is_denied(kv: Kv) -> None:
    path = _seed(kv, "denied", versions=1)
    before = _state(kv, path)
    result = observe(DELETE, {"path": path, "token": kv.deleter}, _context(kv.read_only, "dry-denied"))
    assert result == DENIED
    assert _state(kv, path) == before


def test_a_dry_delete_without_the_capabilities_question_is_an_error_not_a_denial(kv: Kv) -> None:
    path = _seed(kv, "nodefault", versions=1)
    before = _state(kv, path)
    result = observe(DELETE, {"path": path, "token": kv.no_default}, _context(kv.read_only, "dry-nodef"))
    assert result == Failure(Outcome.ERROR, CAPABILITIES_REFUSED, ErrorKind.HARNESS_ERROR)
    assert _state(kv, path) == before


def test_a_dry_delete_of_a_missing_secret_answers_for_the_policy(kv: Kv) -> None:
    path = f"{kv.prefix}/never"
    result = observe(DELETE, {"path": path, "token": kv.deleter}, _context(kv.read_only, "dry-missing"))
    assert result == ProbeResult(reason=AUTHORIZED_DRY)
    with pytest.raises(hv.InvalidPath):
        kv.admin.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")


def test_effect_is_write_only_for_a_real_delete() -> None:
    assert KvDelete.effect is Effect.READ
    assert KvDelete.effect_for({}) is KvDelete.effect_for({"dry": True}) is Effect.READ
    assert KvDelete.effect_for({"dry": False}) is Effect.WRITE
    assert KvUndelete.effect is Effect.WRITE


def test_both_probes_are_registered() -> None:
    registry = ProbeRegistry()
    assert registry.probe_class("vault.kv_delete") is KvDelete
    assert registry.probe_class("vault.kv_undelete") is KvUndelete


# --- vault.kv_delete, real --------------------------------------------------------------------------------


def test_a_real_delete_in_a_read_only_environment_is_refused_before_sending(kv: Kv) -> None:
    path = _seed(kv, "ro-real", versions=1)
    before = _state(kv, path)
    ctx = _context(kv.read_only, "real-ro", _journal(kv.read_only))
    result = observe(DELETE, {"path": path, "token": kv.deleter, "dry": False}, ctx)
    assert result == Failure(Outcome.ERROR, DELETE_REFUSED, ErrorKind.HARNESS_ERROR)
    assert not ctx.timer.used
    assert _state(kv, path) == before
    assert ctx.journal is not None and ctx.journal.pending() == []


def test_a_real_delete_records_its_undo_first_and_the_undo_restores_the_version(kv: Kv) -> None:
    path = _seed(kv, "real")
    journal = _journal(kv.writable)
    ctx = _context(kv.writable, "real", journal)
    result = observe(DELETE, {"path": path, "token": kv.deleter, "dry": False}, ctx)
    assert result == ProbeResult(grant=Grant(version=2), outputs={"version": "2"})
    version, versions, _, data = _state(kv, path)
    assert version == 2 and data is None
    assert versions["2"]["deletion_time"] and not versions["1"]["deletion_time"]

    [entry] = journal.pending()
    assert entry.undo.probe == "vault.kv_undelete"
    assert dict(entry.undo.params) == {"path": path, "mount": "secret", "version": 2}
    assert entry.recorded_by == ctx.correlation_id
    undo = ProbeRegistry().probe(entry.undo.probe)
    restored = observe(undo, entry.undo.arguments(), _context(kv.writable, "undo"))
    assert restored == ProbeResult(grant=Grant(version=2))
    _, versions, _, data = _state(kv, path)
    assert data == {"password": "real-2"} and not versions["2"]["deletion_time"]


def test_a_real_delete_of_a_missing_secret_is_not_found_and_records_nothing(kv: Kv) -> None:
    ctx = _context(kv.writable, "real-missing", _journal(kv.writable))
    result = observe(DELETE, {"path": f"{kv.prefix}/none", "token": kv.deleter, "dry": False}, ctx)
    assert result == Failure(Outcome.NOT_FOUND, "not found")
    assert ctx.journal is not None and ctx.journal.pending() == []


def test_a_real_delete_of_an_already_deleted_latest_version_sends_nothing(kv: Kv) -> None:
    path = _seed(kv, "gone")
    kv.admin.secrets.kv.v2.delete_latest_version_of_secret(path, mount_point="secret")
    before = _state(kv, path)
    ctx = _context(kv.writable, "real-gone", _journal(kv.writable))
    result = observe(DELETE, {"path": path, "token": kv.deleter, "dry": False}, ctx)
    assert result == ProbeResult(Outcome.NOT_FOUND, reason=LATEST_ALREADY_DELETED)
    assert not ctx.timer.used
    assert _state(kv, path) == before
    # The undo would have undeleted a version someone else deleted: none was recorded.
    assert ctx.journal is not None and ctx.journal.pending() == []


def test_a_real_delete_refused_resolves_its_undo(kv: Kv) -> None:
    path = _seed(kv, "refused", versions=1)
    before = _state(kv, path)
    ctx = _context(kv.writable, "real-refused", _journal(kv.writable))
    result = observe(DELETE, {"path": path, "token": kv.reader, "dry": False}, ctx)
    assert result == Failure(Outcome.DENIED, "permission denied")
    assert _state(kv, path) == before
    assert ctx.journal is not None and ctx.journal.pending() == []


def test_a_real_delete_without_metadata_read_is_not_sent(kv: Kv) -> None:
    path = _seed(kv, "blind", versions=1)
    before = _state(kv, path)
    ctx = _context(kv.writable, "real-blind", _journal(kv.writable))
    result = observe(DELETE, {"path": path, "token": kv.blind, "dry": False}, ctx)
    assert result == Failure(Outcome.ERROR, UNDO_UNRECORDABLE, ErrorKind.HARNESS_ERROR)
    assert _state(kv, path) == before
    assert ctx.journal is not None and ctx.journal.pending() == []


def test_a_real_delete_by_a_token_that_may_neither_read_metadata_nor_delete_is_denied(kv: Kv) -> None:
    path = _seed(kv, "outside", versions=1)
    kv.admin.sys.create_or_update_policy(
        f"kvnothing-{RUN}", f'path "secret/data/{kv.prefix}/*" {{ capabilities = ["read"] }}\n'
    )
    token = kv.admin.auth.token.create(policies=[f"kvnothing-{RUN}"], ttl="10m")["auth"]["client_token"]
    before = _state(kv, path)
    ctx = _context(kv.writable, "real-nothing", _journal(kv.writable))
    result = observe(DELETE, {"path": path, "token": Secret(token, "vault token"), "dry": False}, ctx)
    assert result == DENIED
    assert _state(kv, path) == before


def test_undelete_denied_for_a_token_without_update_on_undelete(kv: Kv) -> None:
    path = _seed(kv, "undel-denied", versions=1)
    kv.admin.secrets.kv.v2.delete_latest_version_of_secret(path, mount_point="secret")
    params = {"path": path, "version": 1, "token": kv.reader}
    result = observe(UNDELETE, params, _context(kv.writable, "undelete-denied"))
    assert result == Failure(Outcome.DENIED, "permission denied")
    assert _state(kv, path)[3] is None
