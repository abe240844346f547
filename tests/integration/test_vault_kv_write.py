"""``vault.kv_write`` and ``vault.kv_list`` against a real OpenBao server.

The dry write's whole promise is that it changes nothing, so every dry test reads the secret's metadata
with the root token before and after and compares what a write would move (current version, versions,
updated time), for a token the policy allows and one it denies, on an existing and on a missing secret.
"""

from __future__ import annotations

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
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.vault.kv_list import KvList
from parityprobe.probes.vault.kv_write import (
    AUTHORIZED_DRY,
    CAS_IGNORED,
    UNREACHABLE_VERSION,
    WRITE_REFUSED,
    KvWrite,
    _cas_mismatch,
)
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.secret import Secret
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
WRITE, LIST = KvWrite(), KvList()


@dataclass(frozen=True)
class Kv:
    admin: Any
    prefix: str  # app/<suffix>: inside both policies' globs, unique to this module's run
    writer: Secret  # create/update/read/list on secret/data/app/* and secret/metadata/app/*
    reader: Secret  # read only
    root: Secret
    read_only: Environment
    writable: Environment
    list_mount: str  # a mount of its own, so a root listing has a known count
    v1_mount: str


def _environment(folder: Path, url: str, token: Secret, **extra: Any) -> Environment:
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
    writer_policy, reader_policy = f"app-write-{suffix}", f"app-read-{suffix}"
    admin.sys.create_or_update_policy(
        writer_policy,
        'path "secret/data/app/*" { capabilities = ["create", "update", "read", "list"] }\n'
        'path "secret/metadata/app/*" { capabilities = ["create", "update", "read", "list"] }\n',
    )
    admin.sys.create_or_update_policy(
        reader_policy,
        'path "secret/data/app/*" { capabilities = ["read"] }\n'
        'path "secret/metadata/app/*" { capabilities = ["read"] }\n',
    )
    writer = admin.auth.token.create(policies=[writer_policy], ttl="1h")["auth"]["client_token"]
    reader = admin.auth.token.create(policies=[reader_policy], ttl="1h")["auth"]["client_token"]
    prefix = f"app/{suffix}"
    for name in ("db", "api", "cache"):
        admin.secrets.kv.v2.create_or_update_secret(
            f"{prefix}/{name}", {"password": name}, mount_point="secret"
        )
    admin.secrets.kv.v2.create_or_update_secret(f"{prefix}/db", {"password": "db-2"}, mount_point="secret")
    list_mount = f"kvlist-{suffix}"
    admin.sys.enable_secrets_engine("kv", path=list_mount, options={"version": "2"})
    admin.secrets.kv.v2.create_or_update_secret("one", {"k": "v"}, mount_point=list_mount)
    admin.secrets.kv.v2.create_or_update_secret("team/two", {"k": "v"}, mount_point=list_mount)

    v1_mount = f"kv1-{suffix}"
    admin.sys.enable_secrets_engine("kv", path=v1_mount, options={"version": "1"})

    writer_secret = Secret(writer, "vault token")
    folder = tmp_path_factory.mktemp("kv-write")
    (folder / "ro").mkdir()
    (folder / "rw").mkdir()
    read_only = _environment(folder / "ro", server.url, writer_secret)
    writable = _environment(
        folder / "rw", server.url, writer_secret, safety={"allow_effects": ["read", "write"]}
    )
    assert not read_only.safety.allows(Effect.WRITE) and writable.safety.allows(Effect.WRITE)
    yield Kv(
        admin,
        prefix,
        writer_secret,
        Secret(reader, "vault token"),
        root,
        read_only,
        writable,
        list_mount,
        v1_mount,
    )
    admin.adapter.close()


def _metadata(kv: Kv, path: str) -> dict[str, Any]:
    data: dict[str, Any] = kv.admin.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")["data"]
    return data


def _moving_parts(kv: Kv, path: str) -> tuple[Any, ...]:
    # What any write moves: the current version, the version list, the update time.
    meta = _metadata(kv, path)
    return meta["current_version"], meta["versions"], meta["updated_time"]


def _data(kv: Kv, path: str) -> dict[str, Any]:
    reply = kv.admin.secrets.kv.v2.read_secret_version(
        path, mount_point="secret", raise_on_deleted_version=True
    )
    data: dict[str, Any] = reply["data"]["data"]
    return data


def _write(kv: Kv, env: Environment, step: str, **params: object) -> tuple[ProbeResult | Failure, bool]:
    ctx = probe_context(env, step, run=RUN)
    return observe(WRITE, params, ctx), ctx.timer.used


def _list(kv: Kv, step: str, **params: object) -> ProbeResult | Failure:
    return observe(LIST, params, probe_context(kv.read_only, step, run=RUN))


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("writer", ProbeResult(reason=AUTHORIZED_DRY)),
        ("reader", Failure(Outcome.DENIED, "permission denied")),
    ],
)
def test_a_dry_write_to_an_existing_secret_decides_and_changes_nothing(
    kv: Kv, who: str, expected: ProbeResult | Failure
) -> None:
    path = f"{kv.prefix}/db"
    before, data_before = _moving_parts(kv, path), _data(kv, path)
    assert before[0] == 2
    result, timed = _write(kv, kv.read_only, f"dry-{who}", path=path, token=getattr(kv, who))
    assert result == expected
    assert timed
    assert _moving_parts(kv, path) == before
    assert _data(kv, path) == data_before == {"password": "db-2"}


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("writer", ProbeResult(reason=AUTHORIZED_DRY)),
        ("reader", Failure(Outcome.DENIED, "permission denied")),
    ],
)
def test_a_dry_write_to_a_missing_secret_creates_nothing(
    kv: Kv, who: str, expected: ProbeResult | Failure
) -> None:
    path = f"{kv.prefix}/never-{who}"
    result, _ = _write(kv, kv.read_only, f"dry-missing-{who}", path=path, token=getattr(kv, who))
    assert result == expected
    with pytest.raises(hv.InvalidPath):
        _metadata(kv, path)
    with pytest.raises(hv.InvalidPath):
        _data(kv, path)


def test_a_dry_write_uses_the_environments_own_token_when_the_step_gives_none(kv: Kv) -> None:
    result, _ = _write(kv, kv.read_only, "dry-own-token", path=f"{kv.prefix}/api")
    assert result == ProbeResult(reason=AUTHORIZED_DRY)


def test_a_dry_write_outside_the_policy_is_denied(kv: Kv) -> None:
    result, _ = _write(kv, kv.read_only, "dry-outside", path=f"billing-{kv.prefix}", token=kv.writer)
    assert result == Failure(Outcome.DENIED, "permission denied")


def test_only_the_check_and_set_refusal_counts_as_an_authorization(kv: Kv) -> None:
    # Both are real 400s from OpenBao; only the first one proves the ACL let the write through. The probe
    # cannot send the second one (its cas is fixed), so the recogniser is checked on the server's own replies.
    refusals = []
    for cas in (UNREACHABLE_VERSION, 2**64):
        with pytest.raises(hv.InvalidRequest) as raised:
            kv.admin.secrets.kv.v2.create_or_update_secret(
                f"{kv.prefix}/db", {"x": "y"}, cas=cas, mount_point="secret"
            )
        refusals.append(raised.value)
    assert refusals[0].errors == ["check-and-set parameter did not match the current version"]
    assert refusals[1].errors == ["error parsing check-and-set parameter"]
    assert _cas_mismatch(refusals[0]) and not _cas_mismatch(refusals[1])
    assert WRITE.translate(refusals[1]) == Failure.error(ErrorKind.TARGET_ERROR, "invalid request")


def test_a_dry_write_on_a_kv_version_1_mount_says_that_it_wrote(kv: Kv) -> None:
    # KV v1 ignores options.cas: the caveat in the module's docstring, shown rather than hidden.
    result, _ = _write(kv, kv.read_only, "dry-kv1", path="probe", mount=kv.v1_mount, token=kv.root)
    assert result == ProbeResult(reason=CAS_IGNORED)
    stored = kv.admin.secrets.kv.v1.read_secret("data/probe", mount_point=kv.v1_mount)["data"]
    assert stored["data"] == {"parityprobe": "probe"}


def test_a_real_write_in_a_writable_environment_reports_the_new_version(kv: Kv) -> None:
    path = f"{kv.prefix}/cache"
    before = _metadata(kv, path)["current_version"]
    data = {"password": "rotated-" + secrets.token_hex(4)}
    result, timed = _write(kv, kv.writable, "real-write", path=path, token=kv.writer, data=data, dry=False)
    assert isinstance(result, ProbeResult), result
    assert result.outcome is Outcome.ALLOWED and result.reason is None and timed
    assert result.grant == Grant(version=before + 1)
    assert dict(result.outputs) == {"version": str(before + 1)}
    assert _metadata(kv, path)["current_version"] == before + 1
    assert _data(kv, path) == data


def test_a_real_write_of_a_new_secret_creates_version_one(kv: Kv) -> None:
    path = f"{kv.prefix}/fresh"
    result, _ = _write(kv, kv.writable, "real-new", path=path, token=kv.writer, dry=False)
    assert isinstance(result, ProbeResult) and result.grant == Grant(version=1)
    assert _data(kv, path) == {"parityprobe": "probe"}


def test_a_real_write_denied_by_policy_is_denied(kv: Kv) -> None:
    path = f"{kv.prefix}/db"
    before = _moving_parts(kv, path)
    result, _ = _write(kv, kv.writable, "real-denied", path=path, token=kv.reader, dry=False)
    assert result == Failure(Outcome.DENIED, "permission denied")
    assert _moving_parts(kv, path) == before


def test_a_real_write_is_refused_in_a_read_only_environment_before_any_request(kv: Kv) -> None:
    path = f"{kv.prefix}/db"
    before = _moving_parts(kv, path)
    result, timed = _write(kv, kv.read_only, "real-refused", path=path, token=kv.writer, dry=False)
    assert result == Failure.error(ErrorKind.HARNESS_ERROR, WRITE_REFUSED)
    assert not timed
    assert _moving_parts(kv, path) == before


def test_list_counts_keys_and_names_none_of_them(kv: Kv) -> None:
    result = _list(kv, "list", path=kv.prefix, token=kv.writer)
    assert isinstance(result, ProbeResult), result
    assert result.outcome is Outcome.ALLOWED and result.grant == Grant()
    # db, api, cache, plus whatever the write tests created before this one (fresh).
    keys = kv.admin.secrets.kv.v2.list_secrets(kv.prefix, mount_point="secret")["data"]["keys"]
    assert dict(result.outputs) == {"count": str(len(keys))}
    assert {"db", "api", "cache"} <= set(keys)
    for key in keys:
        assert key not in repr(result)


def test_list_of_a_mount_root_counts_folders_once(kv: Kv) -> None:
    result = _list(kv, "list-root", path="", mount=kv.list_mount, token=kv.root)
    assert result == ProbeResult(outputs={"count": "2"})  # "one" and "team/"


def test_list_denied_by_policy_is_denied(kv: Kv) -> None:
    assert _list(kv, "list-denied", path=kv.prefix, token=kv.reader) == Failure(
        Outcome.DENIED, "permission denied"
    )


def test_list_of_an_empty_path_is_not_found(kv: Kv) -> None:
    result = _list(kv, "list-empty", path=f"{kv.prefix}/nothing-here", token=kv.writer)
    assert result == Failure(Outcome.NOT_FOUND, "not found")
