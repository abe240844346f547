"""``crosscheck: capabilities`` on the Vault plane: each probe's declared decision (sys/capabilities-self for
the path it acts on) against the live one, on a real OpenBao server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure, Probe, ProbeResult
from parityprobe.probes.vault.kv import KvRead
from parityprobe.probes.vault.kv_delete import KvDelete
from parityprobe.probes.vault.kv_list import KvList
from parityprobe.probes.vault.kv_write import KvWrite
from parityprobe.probes.vault.request import VaultRequest
from parityprobe.secret import Secret
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
TEAM = f"cross-{RUN}"


def declared(probe: Any, params: dict[str, Any], env: Environment, step: str) -> ProbeResult | Failure:
    """``probe.declared`` called as the runner calls it: bound parameters, translated exceptions."""
    bound = probe.Params.model_validate(params)
    ctx = probe_context(env, step, run=RUN)
    try:
        return probe.declared(bound, ctx)  # type: ignore[no-any-return]
    except Exception as exc:
        failure = probe.translate(exc)
        assert failure is not None, f"untranslated {exc!r}"
        return failure


@pytest.fixture(scope="module")
def env(openbao: tuple[ServerProcess, Secret]) -> Iterator[tuple[Environment, Any]]:
    """An environment whose token may read and list its team's secrets, and update one path only with an
    allowed parameter (so the declared ``update`` is wider than what a write of other data gets)."""
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    admin.sys.create_or_update_policy(
        TEAM,
        f'path "secret/data/{TEAM}/*" {{ capabilities = ["read"] }}\n'
        f'path "secret/metadata/{TEAM}/*" {{ capabilities = ["list"] }}\n'
        f'path "secret/data/{TEAM}/constrained" {{\n'
        '  capabilities = ["update", "create", "read"]\n'
        '  allowed_parameters = { "owner" = [] }\n}\n',
    )
    admin.secrets.kv.v2.create_or_update_secret(path=f"{TEAM}/db", secret={"password": "x"})
    token = admin.auth.token.create(policies=[TEAM], ttl="1h")["auth"]["client_token"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PP_TEST_CROSS_TOKEN", token)
        vault = {"address": server.url, "auth": {"method": "token", "token": {"env": "PP_TEST_CROSS_TOKEN"}}}
        the_env = environment({"name": "staging", "vault": vault})
        assert the_env.vault is not None
        the_env.vault.auth.token.resolve(Path.cwd(), "vault token")  # type: ignore[union-attr]
    yield the_env, admin
    admin.adapter.close()


@pytest.mark.parametrize(
    ("probe", "params", "outcome"),
    [
        (KvRead(), {"path": f"{TEAM}/db"}, Outcome.ALLOWED),
        (KvRead(), {"path": "elsewhere/db"}, Outcome.DENIED),
        (KvList(), {"path": f"{TEAM}/"}, Outcome.ALLOWED),
        (KvList(), {"path": "elsewhere/"}, Outcome.DENIED),
        (KvWrite(), {"path": f"{TEAM}/db"}, Outcome.DENIED),
        (KvDelete(), {"path": f"{TEAM}/db"}, Outcome.DENIED),
        (VaultRequest(), {"method": "GET", "path": f"secret/data/{TEAM}/db"}, Outcome.ALLOWED),
        (VaultRequest(), {"method": "GET", "path": "sys/mounts"}, Outcome.DENIED),
    ],
)
def test_the_declared_decision_matches_the_live_one_where_policy_is_plain(
    env: tuple[Environment, Any], probe: Probe, params: dict[str, Any], outcome: Outcome
) -> None:
    the_env, _ = env
    live = observe(probe, params, probe_context(the_env, "live", run=RUN))
    said = declared(probe, params, the_env, "declared")
    assert isinstance(said, ProbeResult) and said.outcome is outcome
    assert (Outcome.DENIED if live.outcome is Outcome.DENIED else Outcome.ALLOWED) is outcome


def test_a_parameter_constraint_makes_the_live_write_narrower_than_declared(
    env: tuple[Environment, Any],
) -> None:
    the_env, _ = env
    params = {"path": f"{TEAM}/constrained"}
    live = observe(KvWrite(), params, probe_context(the_env, "live-constrained", run=RUN))
    said = declared(KvWrite(), params, the_env, "declared-constrained")
    assert isinstance(said, ProbeResult) and said.outcome is Outcome.ALLOWED
    assert live == Failure(Outcome.DENIED, "permission denied")


def test_a_token_that_may_not_ask_is_a_harness_error_never_a_declared_denial(
    env: tuple[Environment, Any], openbao: tuple[ServerProcess, Secret]
) -> None:
    the_env, admin = env
    bare = Secret(admin.auth.token.create(policies=[TEAM], no_default_policy=True)["auth"]["client_token"])
    said = declared(KvRead(), {"path": f"{TEAM}/db", "token": bare}, the_env, "declared-bare")
    assert isinstance(said, Failure) and said.outcome is Outcome.ERROR
    assert said.error_kind is ErrorKind.HARNESS_ERROR and "capabilities-self" in said.reason
