"""``aws.secret_rotate`` and its undo against a real moto server with IAM enforcement on.

moto checks Secrets Manager permissions only against ``Resource: "*"``, so each identity's policy names the
actions it may call on every secret. Seeding is done with the bootstrap key before enforcement; afterwards
the admin user (Allow *) inspects.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parityprobe.config.environments import Environment
from parityprobe.model import Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.aws.secret_rotation import (
    PENDING_CLEAR,
    PREVIOUS_KEPT,
    READABLE,
    ROTATION,
    SecretPendingClear,
    SecretRotate,
)
from parityprobe.probes.aws.secrets import SecretRead
from parityprobe.undo import MemoryJournal, RunJournal
from tests import aws_support
from tests.aws_support import Key, enforce, key_environment, moto_server, run_undos, seed_users
from tests.probe_support import observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(6)
ROTATE, CLEAR, READ = SecretRotate(), SecretPendingClear(), SecretRead()
FIRST_VALUE = "first-" + secrets.token_hex(8)
SM = "secretsmanager:"
POLICIES: dict[str, list[str]] = {
    "admin": ["*"],
    "rotator": [f"{SM}GetSecretValue", f"{SM}PutSecretValue", f"{SM}UpdateSecretVersionStage"],
    "rotate-api": [f"{SM}GetSecretValue", f"{SM}RotateSecret", f"{SM}DescribeSecret"],
    "reader": [f"{SM}GetSecretValue"],
    "no-promote": [f"{SM}GetSecretValue", f"{SM}PutSecretValue"],
}


@dataclass(frozen=True)
class Lab(aws_support.Lab):
    def stages(self, secret: str) -> dict[str, list[str]]:
        sm = self.admin("secretsmanager")
        versions = sm.list_secret_version_ids(SecretId=secret, IncludeDeprecated=True)["Versions"]
        return {v["VersionId"]: sorted(v.get("VersionStages", [])) for v in versions}


def _seed(url: str) -> dict[str, Key]:
    statements = {
        user: [{"Effect": "Allow", "Action": actions, "Resource": "*"}] for user, actions in POLICIES.items()
    }
    return seed_users(url, statements)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with moto_server(tmp_path_factory.mktemp("aws-rotate")) as server:
        keys = _seed(server.url)
        enforce(server.url)
        yield Lab(server, keys)


@pytest.fixture()
def secret(lab: Lab) -> str:
    """A fresh secret holding one version (AWSCURRENT)."""
    name = f"pp-rotate-{secrets.token_hex(4)}"
    lab.admin("secretsmanager").create_secret(Name=name, SecretString=FIRST_VALUE)
    return name


def _env(lab: Lab, tmp_path: Path, user: str, *, write: bool = True) -> Environment:
    safety = {"allow_effects": ["read", "write"] if write else ["read"]}
    return key_environment(tmp_path, lab.server.url, lab.keys[user], files=user, safety=safety)


def _ctx(env: Environment, step: str, journal: RunJournal | None = None) -> ProbeContext:
    return dataclasses.replace(probe_context(env, step, run=RUN), journal=journal)


def _journal(env: Environment) -> RunJournal:
    return RunJournal(MemoryJournal(), RUN, env.name)


def _pending(stages: dict[str, list[str]]) -> list[str]:
    return [version for version, labels in stages.items() if "AWSPENDING" in labels]


def test_rotation_by_stages_promotes_a_new_version_and_keeps_the_previous(
    lab: Lab, tmp_path: Path, secret: str
) -> None:
    env = _env(lab, tmp_path, "rotator")
    [old] = lab.stages(secret)
    journal = _journal(env)
    ctx = _ctx(env, "rotate", journal)
    result = observe(ROTATE, {"secret_id": secret}, ctx)
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.ALLOWED, None)
    new = result.outputs["version_id"]
    assert isinstance(new, str) and new != old
    assert result.outputs["previous_version_id"] == old
    assert result.grant.stages == frozenset({"AWSCURRENT"})
    assert dict(result.grant.attributes) == {READABLE: "yes", PREVIOUS_KEPT: "yes"}
    assert set(result.waits) == {READABLE} and result.waits[READABLE] >= 0
    assert ctx.timer.used
    # The target agrees: new is AWSCURRENT, old is AWSPREVIOUS, nothing is left pending.
    assert lab.stages(secret) == {old: ["AWSPREVIOUS"], new: ["AWSCURRENT"]}
    assert journal.pending() == []
    # Readers asking by stage get the new value (not the first), and the previous one under AWSPREVIOUS.
    reader = _env(lab, tmp_path, "reader", write=False)
    current = observe(READ, {"secret_id": secret}, _ctx(reader, "read-current"))
    previous = observe(READ, {"secret_id": secret, "version_stage": "AWSPREVIOUS"}, _ctx(reader, "read-prev"))
    assert isinstance(current, ProbeResult) and isinstance(previous, ProbeResult)
    assert current.outputs["version_id"] == new
    value = current.outputs["value"]
    assert not isinstance(value, str) and value.reveal() not in (FIRST_VALUE, "")
    prev_value = previous.outputs["value"]
    assert previous.outputs["version_id"] == old
    assert not isinstance(prev_value, str) and prev_value.reveal() == FIRST_VALUE
    # The new value never leaves the probe: not in the result, its grant or its reason.
    assert value.reveal() not in repr(result) + repr(ctx)


def test_a_second_rotation_moves_the_previous_along(lab: Lab, tmp_path: Path, secret: str) -> None:
    env = _env(lab, tmp_path, "rotator")
    first = observe(ROTATE, {"secret_id": secret}, _ctx(env, "rotate-1"))
    second = observe(ROTATE, {"secret_id": secret}, _ctx(env, "rotate-2"))
    assert isinstance(first, ProbeResult) and isinstance(second, ProbeResult)
    assert second.outputs["previous_version_id"] == first.outputs["version_id"]
    assert second.grant.attributes[PREVIOUS_KEPT] == "yes"
    assert _pending(lab.stages(secret)) == []


def test_a_caller_that_may_not_put_is_denied_and_nothing_changes(
    lab: Lab, tmp_path: Path, secret: str
) -> None:
    env = _env(lab, tmp_path, "reader")
    before = lab.stages(secret)
    journal = _journal(env)
    result = observe(ROTATE, {"secret_id": secret}, _ctx(env, "rotate-denied", journal))
    assert result == ProbeResult(Outcome.DENIED, reason="AccessDenied (PutSecretValue)")
    assert lab.stages(secret) == before
    assert journal.pending() == []


def test_refused_promotion_leaves_an_undo_that_clears_pending(lab: Lab, tmp_path: Path, secret: str) -> None:
    env = _env(lab, tmp_path, "no-promote")
    [old] = lab.stages(secret)
    journal = _journal(env)
    result = observe(ROTATE, {"secret_id": secret}, _ctx(env, "rotate-no-promote", journal))
    assert result == ProbeResult(Outcome.DENIED, reason="AccessDenied (UpdateSecretVersionStage)")
    [put] = _pending(lab.stages(secret))
    [entry] = journal.pending()
    assert (entry.undo.probe, dict(entry.undo.params)) == (
        PENDING_CLEAR,
        {"secret_id": secret, "version_id": put},
    )
    # The refused caller cannot clear it either (a cleanup_failed finding); the admin can, once.
    assert run_undos(env, _journal_with(env, entry)) == [Failure(Outcome.DENIED, "AccessDenied")]
    admin = _env(lab, tmp_path, "admin")
    assert run_undos(admin, journal) == [ProbeResult()]
    assert lab.stages(secret) == {old: ["AWSCURRENT"], put: []}
    again = observe(CLEAR, {"secret_id": secret, "version_id": put}, _ctx(admin, "clear-again"))
    assert isinstance(again, ProbeResult) and again.outcome is Outcome.NOT_FOUND


def _journal_with(env: Environment, entry: Any) -> RunJournal:
    journal = _journal(env)
    journal.record(entry.recorded_at, entry.undo, entry.recorded_by)
    return journal


def test_write_refused_where_the_environment_allows_only_reads(lab: Lab, tmp_path: Path, secret: str) -> None:
    env = _env(lab, tmp_path, "rotator", write=False)
    before = lab.stages(secret)
    ctx = _ctx(env, "rotate-read-only")
    result = observe(ROTATE, {"secret_id": secret}, ctx)
    assert isinstance(result, Failure) and result.outcome is Outcome.ERROR
    assert "allow write" in result.reason
    assert lab.stages(secret) == before and not ctx.timer.used


def test_an_absent_secret_is_not_found(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path, "rotator")
    journal = _journal(env)
    result = observe(ROTATE, {"secret_id": f"pp-none-{RUN}"}, _ctx(env, "rotate-absent", journal))
    assert isinstance(result, Failure) and result.outcome is Outcome.NOT_FOUND
    assert journal.pending() == []


def test_rotate_secret_on_moto_reports_readers_cannot_read(lab: Lab, tmp_path: Path, secret: str) -> None:
    # moto rotates without a Lambda by moving AWSCURRENT to a new version that has no value: the rotation
    # "ran", but readers are never served a value; the result must say so, never pass it as a rotation.
    env = _env(lab, tmp_path, "rotate-api")
    [old] = lab.stages(secret)
    params = {"secret_id": secret, "mode": "rotate_secret", "readable_within": "1s"}
    result = observe(ROTATE, params, _ctx(env, "rotate-api"))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert dict(result.grant.attributes) == {
        ROTATION: "completed",
        READABLE: "not within 1s",
        PREVIOUS_KEPT: "yes",
    }
    assert result.grant.stages is None and dict(result.waits) == {}
    assert result.reason == "rotated; readers not served the new version within 1s"
    assert result.outputs["previous_version_id"] == old


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        SecretRotate.Params.model_validate({"secret_id": "s", "readable_within": 0})
    with pytest.raises(ValueError, match="stages"):
        SecretRotate.Params.model_validate({"secret_id": "s", "mode": "lambda"})
    bound = SecretRotate.Params.model_validate({"secret_id": "s", "readable_within": "2m"})
    assert bound.readable_within == 120
