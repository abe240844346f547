"""``aws.access_key_rotate`` against a real moto server with IAM enforcement on.

The module owns its moto server (enforcement is per server process). Seeding is done before enforcement
with the bootstrap key; afterwards the admin user (Allow *) inspects and cleans up. Each test rotates the
keys of its own canary user, so IAM's two-keys-per-user quota and one test's leftovers never meet another.

A step cut short is a real one: a small HTTP proxy of the module's own forwards every request to moto but
holds ``UpdateAccessKey`` past the step's deadline, so the probe's request times out mid-rotation.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from parityprobe.config.environments import Environment
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import ClientCache, Failure, ProbeContext, ProbeResult
from parityprobe.probes.aws.access_key_rotation import (
    NEW_KEY_WORKS,
    OLD_KEY_REFUSED,
    ROTATED,
    AccessKeyRotate,
)
from parityprobe.probes.aws.iam import DELETE_ACCESS_KEY, iam_client
from parityprobe.undo import MemoryJournal, RunJournal
from tests.aws_support import (
    ALLOW_ALL,
    Key,
    Lab,
    Statement,
    bootstrap_client,
    enforce,
    key_environment,
    moto_server,
    run_undos,
    seed_users,
)
from tests.probe_support import observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(6)
ROTATE = AccessKeyRotate()
KEY_ACTIONS = ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]
POLICIES: dict[str, list[Statement]] = {
    "admin": ALLOW_ALL,
    "rotator": [{"Effect": "Allow", "Action": KEY_ACTIONS, "Resource": "*"}],
    # May create and deactivate keys, not delete them: the rotation stops at the old key's deletion.
    "no-delete": [{"Effect": "Allow", "Action": KEY_ACTIONS[:2], "Resource": "*"}],
    "bystander": [],
}
CANARIES = ("canary-allowed", "canary-denied", "canary-no-delete", "canary-cut", "canary-secrets")


def _seed(url: str) -> dict[str, Key]:
    keys = seed_users(url, POLICIES)
    iam = bootstrap_client(url, "iam")
    for canary in CANARIES:
        iam.create_user(UserName=canary)
    return keys


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with moto_server(tmp_path_factory.mktemp("aws-rotate")) as server:
        keys = _seed(server.url)
        enforce(server.url)
        yield Lab(server, keys)


class _HoldingProxy(ThreadingHTTPServer):
    """Forwards every request to ``target`` as it came (the Host header too, which SigV4 signs), except a
    request whose body names ``held``: that one gets no answer for ``hold`` seconds, then none at all."""

    daemon_threads = True

    def __init__(self, target: str, held: bytes, hold: float) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target, self.held, self.hold = target, held, hold
        self.held_requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client giving up on a held request is the point


class _ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        proxy = self.server
        assert isinstance(proxy, _HoldingProxy)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if proxy.held in body:
            proxy.held_requests += 1
            time.sleep(proxy.hold)
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
        reply = httpx.post(proxy.target + self.path, content=body, headers=headers)
        self.send_response(reply.status_code)
        for key, value in reply.headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)


@pytest.fixture
def holding_proxy(lab: Lab) -> Iterator[_HoldingProxy]:
    proxy = _HoldingProxy(lab.server.url, b"Action=UpdateAccessKey", hold=6.0)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def _env(
    tmp_path: Path, lab: Lab, user: str, *, endpoint: str | None = None, write: bool = True
) -> Environment:
    safety = {"allow_effects": ["read", "write"] if write else ["read"]}
    return key_environment(tmp_path, endpoint or lab.server.url, lab.keys[user], files=user, safety=safety)


def _ctx(
    env: Environment,
    step: str,
    journal: RunJournal | None = None,
    clients: ClientCache | None = None,
    seconds: float = 30,
) -> ProbeContext:
    return dataclasses.replace(probe_context(env, step, clients, seconds, run=RUN), journal=journal)


def _journal(env: Environment) -> RunJournal:
    return RunJournal(MemoryJournal(), RUN, env.name)


def _keys_of(lab: Lab, user: str) -> list[str]:
    return [k["AccessKeyId"] for k in lab.admin("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]]


def _undone_keys(journal: RunJournal) -> list[str]:
    """The key ids of the pending undos, in the order recorded; each undo deletes one key of a canary."""
    entries = journal.pending()
    assert all(e.undo.probe == DELETE_ACCESS_KEY and not e.undo.held for e in entries)
    ids = [e.undo.params.get("access_key_id") for e in entries]
    assert all(isinstance(i, str) for i in ids), "an undo without its key id"
    return [str(i) for i in ids]


def test_the_rotation_runs_times_both_keys_and_leaves_no_key(lab: Lab, tmp_path: Path) -> None:
    user = "canary-allowed"
    env = _env(tmp_path, lab, "rotator")
    journal = _journal(env)
    ctx = _ctx(env, "rotate", journal)
    result = observe(ROTATE, {"user_name": user, "new_key_within": "10s", "old_key_within": "10s"}, ctx)
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.ALLOWED, ROTATED)
    assert dict(result.grant.attributes) == {"new key": "works", "old key": "refused"}
    assert set(result.waits) == {NEW_KEY_WORKS, OLD_KEY_REFUSED}
    assert all(seconds >= 0 for seconds in result.waits.values())
    old, new = result.outputs["old_access_key_id"], result.outputs["new_access_key_id"]
    assert isinstance(old, str) and isinstance(new, str) and old != new and old.startswith("AKIA")
    assert ctx.timer.used
    assert _keys_of(lab, user) == []
    # Both undos stay recorded (most recent last); in cleanup they find the keys gone.
    assert _undone_keys(journal) == [old, new]
    assert run_undos(env, journal) == [Failure(Outcome.NOT_FOUND, "NoSuchEntity")] * 2
    assert _keys_of(lab, user) == []


def test_a_caller_without_iam_permissions_is_denied_and_creates_nothing(lab: Lab, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "bystander")
    journal = _journal(env)
    ctx = _ctx(env, "rotate-denied", journal)
    assert observe(ROTATE, {"user_name": "canary-denied"}, ctx) == Failure(Outcome.DENIED, "AccessDenied")
    assert journal.pending() == []
    assert _keys_of(lab, "canary-denied") == []


def test_a_missing_user_is_not_found(lab: Lab, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "rotator")
    journal = _journal(env)
    result = observe(ROTATE, {"user_name": "nobody-" + RUN}, _ctx(env, "rotate-missing", journal))
    assert result == Failure(Outcome.NOT_FOUND, "NoSuchEntity")
    assert journal.pending() == []


def test_refused_in_a_read_only_environment_before_any_request(lab: Lab, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "rotator", write=False)
    journal = _journal(env)
    ctx = _ctx(env, "rotate-read-only", journal)
    result = observe(ROTATE, {"user_name": "canary-denied"}, ctx)
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert "allow write" in result.reason
    assert journal.pending() == [] and not ctx.timer.used


def test_a_refused_deletion_is_the_first_refusal_and_cleanup_removes_both_keys(
    lab: Lab, tmp_path: Path
) -> None:
    user = "canary-no-delete"
    env = _env(tmp_path, lab, "no-delete")
    journal = _journal(env)
    result = observe(ROTATE, {"user_name": user}, _ctx(env, "rotate-no-delete", journal))
    assert result == Failure(Outcome.DENIED, "AccessDenied")
    # Both keys were created and neither could be deleted: both undos are pending, with their ids.
    left = _keys_of(lab, user)
    assert len(left) == 2 and sorted(_undone_keys(journal)) == sorted(left)
    # The caller's own undos are refused too (a cleanup_failed finding); the admin's remove both keys.
    admin = _env(tmp_path, lab, "admin")
    assert run_undos(admin, journal) == [ProbeResult(), ProbeResult()]
    assert _keys_of(lab, user) == []


def test_a_step_cut_short_mid_rotation_is_a_timeout_and_cleanup_leaves_no_key(
    lab: Lab, tmp_path: Path, holding_proxy: _HoldingProxy
) -> None:
    user = "canary-cut"
    env = _env(tmp_path, lab, "rotator", endpoint=holding_proxy.url)
    journal = _journal(env)
    result = observe(ROTATE, {"user_name": user}, _ctx(env, "rotate-cut", journal, seconds=2))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.TIMEOUT)
    assert holding_proxy.held_requests == 1
    # Both keys' undos are recorded with their ids, whether or not the at-once deletion got through.
    assert len(_undone_keys(journal)) == 2
    admin = _env(tmp_path, lab, "admin")
    assert all(r.outcome in (Outcome.ALLOWED, Outcome.NOT_FOUND) for r in run_undos(admin, journal))
    assert _keys_of(lab, user) == []


def test_no_secret_access_key_is_in_the_result_or_the_journal(lab: Lab, tmp_path: Path) -> None:
    env = _env(tmp_path, lab, "rotator")
    journal = _journal(env)
    clients = ClientCache()
    seen: list[str] = []

    def capture(parsed: Any, **_: Any) -> None:
        seen.append(parsed["AccessKey"]["SecretAccessKey"])

    # The environment's IAM client, cached for the probe to use: its CreateAccessKey replies are watched.
    with iam_client(_ctx(env, "prepare", clients=clients)) as iam:
        iam.meta.events.register("after-call.iam.CreateAccessKey", capture)
    ctx = _ctx(env, "rotate-secrets", journal, clients)
    result = observe(ROTATE, {"user_name": "canary-secrets"}, ctx)
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert len(seen) == 2
    text = repr(result) + repr(journal.pending()) + json.dumps(dict(result.outputs))
    for secret in seen:
        assert secret not in text
        assert ctx.redactor.redact(f"x {secret} y") != f"x {secret} y"  # registered with the redactor
    assert _keys_of(lab, "canary-secrets") == []
