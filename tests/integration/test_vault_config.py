"""vault.config against real OpenBao servers, and the config_drift findings its snapshots produce.

Production is the session's OpenBao (it has a file audit device); staging is a second server started here (a
server's audit devices are declared in its config file, so one server cannot be two environments). Staging
is seeded as a copy of production under other names (vars tell them apart), written differently (comments,
order, whitespace, the JSON form), with four planted gaps: its policy adds ``update`` on the workload's data
path, its role's token_ttl is 24h instead of 1h, it has no audit device, and it does not audit one header.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hvac
import pytest

from parityprobe.compare.context import StepView
from parityprobe.compare.drift import config_findings, explaining
from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess, start_openbao
from parityprobe.model import Category, ErrorKind, Finding, Observation, Outcome, Severity, Tier
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.vault.config import VaultConfig
from parityprobe.probes.vault.settings import VaultToken
from parityprobe.secret import Secret
from parityprobe.spec import EnvironmentFacts, StepSpec
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
CONFIG = VaultConfig()
HEADER = f"x-pp-drift-{RUN}"
COMMON = f"common-{RUN}"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Side:
    """One environment: its server's admin client, its names, and what must never leak from it."""

    env: Environment
    admin: Any
    vars: dict[str, str]
    secrets: list[str]

    @property
    def app(self) -> str:
        return self.vars["app"]

    def params(self, **extra: object) -> dict[str, object]:
        roles = [
            {"method": "approle", "mount": self.vars["mount"], "name": self.app},
            {"method": "jwt", "mount": self.vars["jwt"], "name": self.app},
        ]
        return {"roles": roles, **extra}


def _policy_hcl(app: str) -> str:
    return (
        f'path "secret/data/{app}/*" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "secret/metadata/{app}/*" {{\n  capabilities = ["read", "list"]\n}}\n'
    )


def _policy_hcl_reworded(app: str) -> str:
    # The same rules as production's, in another order and layout, plus the planted `update`.
    return (
        "# the workload's own secrets\n"
        f'path "/secret/metadata/{app}/*" {{ capabilities=["list","read"] }}  // listing\n'
        f'/* data */ path "secret/data/{app}/*" {{\n\tcapabilities = [ "update", "read", ]\n}}\n'
    )


def _seed(admin: Any, names: Mapping[str, str], ttl: str, policy: str, common_json: bool) -> None:
    app = names["app"]
    admin.sys.create_or_update_policy(app, policy)
    rules = {"path": {"secret/data/shared/*": {"capabilities": ["read"]}}}
    common = json.dumps(rules) if common_json else 'path "secret/data/shared/*" { capabilities = ["read"] }'
    admin.sys.create_or_update_policy(COMMON, common)
    admin.sys.enable_auth_method("approle", path=names["mount"])
    admin.auth.approle.create_or_update_approle(
        app,
        mount_point=names["mount"],
        token_policies=[app, COMMON] if common_json else [COMMON, app],
        token_ttl=ttl,
        token_max_ttl="48h",
        secret_id_ttl="10m",
        token_bound_cidrs=["127.0.0.1/32"],
    )
    admin.sys.enable_auth_method("jwt", path=names["jwt"])
    claims = {"repo": ["b", "a"], "env": "ci"} if common_json else {"env": ["ci"], "repo": ["a", "b"]}
    admin.write(
        f"auth/{names['jwt']}/role/{app}",
        role_type="jwt",
        user_claim="sub",
        bound_audiences=[f"https://{app}.example"],
        bound_claims=claims,
        token_policies=[app],
    )


def _env(name: str, server: ServerProcess, token: Secret, names: dict[str, str], **vault: Any) -> Environment:
    var = f"PP_TEST_CONFIG_{name.upper()}_{RUN}"
    settings = {"address": server.url, "auth": {"method": "token", "token": {"env": var}}, **vault}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(var, token.reveal())
        for key, ref in vault.items():
            mp.setenv(ref["env"], ref.pop("value"))
            settings[key] = ref
        env = environment({"name": name, "vars": names, "vault": settings})
        assert env.vault is not None and isinstance(env.vault.auth, VaultToken)
        env.vault.auth.token.resolve(Path.cwd(), "vault token")
        if env.vault.config_token is not None:
            env.vault.config_token.resolve(Path.cwd(), "config token")
    return env


def _side_secrets(admin: Any, names: Mapping[str, str], root: Secret) -> list[str]:
    """The role's role id and a fresh secret id (and its accessor), and the root token."""
    mount, app = names["mount"], names["app"]
    role_id = admin.auth.approle.read_role_id(app, mount_point=mount)["data"]["role_id"]
    issued = admin.auth.approle.generate_secret_id(app, mount_point=mount)["data"]
    return [role_id, issued["secret_id"], issued["secret_id_accessor"], root.reveal()]


@dataclass(frozen=True)
class Pair:
    production: Side
    staging: Side
    staging_server: ServerProcess


@pytest.fixture(scope="module")
def pair(openbao: tuple[ServerProcess, Secret], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    prod_server, prod_root = openbao
    stg_root = Secret("root-" + secrets.token_hex(12), "root token")
    stg_server = start_openbao(tmp_path_factory.mktemp("openbao-staging"), stg_root)  # no audit device
    prod = hvac.Client(url=prod_server.url, token=prod_root.reveal())
    stg = hvac.Client(url=stg_server.url, token=stg_root.reveal())
    try:
        # Staging copies production's auth mounts and audited headers (other modules may have added some),
        # then the workload's own configuration is seeded in both under each environment's names.
        for path, mount in prod.sys.list_auth_methods()["data"].items():
            if path != "token/":
                tuning = {k: mount["config"][k] for k in ("default_lease_ttl", "max_lease_ttl", "token_type")}
                stg.sys.enable_auth_method(mount["type"], path=path, config=tuning, local=mount["local"])
        prod.adapter.post(f"/v1/sys/config/auditing/request-headers/{HEADER}", json={"hmac": False})
        headers = prod.adapter.get("/v1/sys/config/auditing/request-headers")["data"]["headers"]
        for header, settings in headers.items():
            if header != HEADER:
                stg.adapter.post(f"/v1/sys/config/auditing/request-headers/{header}", json=settings)
        pnames = {"app": f"pay-{RUN}-p", "mount": f"ar-{RUN}-p", "jwt": f"jw-{RUN}-p"}
        pnames["audit_dir"] = str(prod_server.log_path.parent)
        snames = {"app": f"pay-{RUN}-s", "mount": f"ar-{RUN}-s", "jwt": f"jw-{RUN}-s"}
        _seed(prod, pnames, "1h", _policy_hcl(pnames["app"]), common_json=False)
        _seed(stg, snames, "24h", _policy_hcl_reworded(snames["app"]), common_json=True)
        production = Side(
            _env("production", prod_server, prod_root, pnames),
            prod,
            pnames,
            _side_secrets(prod, pnames, prod_root),
        )
        staging = Side(
            _env("staging", stg_server, stg_root, snames), stg, snames, _side_secrets(stg, snames, stg_root)
        )
        yield Pair(production, staging, stg_server)
    finally:
        prod.adapter.close()
        stg.adapter.close()
        stg_server.stop()


def snapshot(side: Side, step: str, **extra: object) -> ProbeResult | Failure:
    return observe(CONFIG, side.params(**extra), probe_context(side.env, step, run=RUN))


def observation(side: Side, result: ProbeResult | Failure) -> Observation:
    assert isinstance(result, ProbeResult)
    return Observation(
        step="config",
        probe=CONFIG.name,
        environment=side.env.name,
        correlation_id=f"pp-{RUN}-config",
        outcome=result.outcome,
        started_at=NOW,
        reason=result.reason,
        grant=result.grant,
    )


def view(pair: Pair, staging: Observation, production: Observation) -> StepView:
    facts = (
        EnvironmentFacts("staging", Tier.STAGING, pair.staging.vars),
        EnvironmentFacts("production", Tier.PRODUCTION, pair.production.vars),
    )
    return StepView("drift", StepSpec("config", CONFIG.name), facts, (staging, production))


def differences(a: Mapping[str, str], b: Mapping[str, str]) -> dict[str, tuple[str | None, str | None]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def test_snapshots_differ_exactly_in_the_planted_fields(pair: Pair) -> None:
    stg, prod = snapshot(pair.staging, "config-stg"), snapshot(pair.production, "config-prod")
    assert isinstance(stg, ProbeResult) and isinstance(prod, ProbeResult)
    assert (stg.outcome, prod.outcome, stg.reason, prod.reason) == (Outcome.ALLOWED,) * 2 + (None,) * 2
    s, p = stg.grant.attributes, prod.grant.attributes
    data = "policy ${vars.app} path secret/data/${vars.app}/*"
    assert differences(s, p) == {
        f"audited header {HEADER}": (None, "hmac false"),
        "audit device lab/": (None, p["audit device lab/"]),
        data: ("read, update", "read"),
        "role approle/${vars.app} token_ttl": ("24h", "1h"),
    }
    # Equal where equal: names through vars, other layouts, the JSON form, list and claim order, the defaults.
    assert p["audit device lab/"] == (
        "file (elide_list_responses false, file_path ${vars.audit_dir}/audit.log, format json, "
        "hmac_accessor true, log_raw false)"
    )
    assert (s["auth method ${vars.mount}/"], s["auth method ${vars.jwt}/"]) == ("approle", "jwt")
    assert s["policy ${vars.app} path secret/metadata/${vars.app}/*"] == "read, list"
    assert s[f"policy {COMMON} path secret/data/shared/*"] == "read"
    assert s["role approle/${vars.app} token_policies"] == f"${{vars.app}}, {COMMON}"
    assert s["role approle/${vars.app} token_bound_cidrs"] == "127.0.0.1"
    assert s["role approle/${vars.app} secret_id_ttl"] == "10m"
    assert s["role jwt/${vars.app} bound_claims"] == '{"env": ["ci"], "repo": ["a", "b"]}'
    assert s["role jwt/${vars.app} bound_audiences"] == "https://${vars.app}.example"
    assert s["policy default"] == "present" and "policy default path cubbyhole/*" in s


def test_findings_name_each_planted_field_in_words(pair: Pair) -> None:
    stg = observation(pair.staging, snapshot(pair.staging, "findings-stg"))
    prod = observation(pair.production, snapshot(pair.production, "findings-prod"))
    findings = config_findings(view(pair, stg, prod))
    assert {f.category for f in findings} == {Category.CONFIG_DRIFT}
    by_field = {f.field: f for f in findings}
    data = "policy ${vars.app} path secret/data/${vars.app}/*"
    assert set(by_field) == {
        data,
        "role approle/${vars.app} token_ttl",
        "audit device lab/",
        f"audited header {HEADER}",
    }
    assert by_field[data].message == "staging's policy ${vars.app} adds update on secret/data/${vars.app}/*"
    assert by_field[data].severity is Severity.HIGH
    assert by_field[data].environments == {"staging": "read, update", "production": "read"}
    ttl = by_field["role approle/${vars.app} token_ttl"]
    assert ttl.message == "staging's role approle/${vars.app} token_ttl is 24h; production's is 1h"
    assert by_field["audit device lab/"].message.startswith(
        "staging has no audit device lab/; production's is file"
    )
    assert by_field[f"audited header {HEADER}"].message == (
        f"staging does not audit header {HEADER}; production does (hmac false)"
    )
    # Which of them explains a write allowed in staging only, on the workload's secret:
    decided = Finding(
        Category.OUTCOME_MISMATCH, Severity.HIGH, "drift", "write", {}, "decided differently", field="outcome"
    )
    assert explaining(decided, findings, target="secret/data/${vars.app}/db") == [by_field[data]]
    assert explaining(decided, findings, target="secret/data/other/db") == []


def test_no_secret_in_any_attribute_or_the_result(pair: Pair) -> None:
    for side in (pair.staging, pair.production):
        result = snapshot(side, "no-secret")
        assert isinstance(result, ProbeResult)
        text = repr(result) + json.dumps(dict(result.grant.attributes))
        assert side.secrets and not [i for i, s in enumerate(side.secrets) if s in text]


def test_a_token_that_may_read_only_the_workload_config_leaves_sys_inconclusive(pair: Pair) -> None:
    readers = {}
    for side in (pair.staging, pair.production):
        name = f"reader-{RUN}"
        side.admin.sys.create_or_update_policy(
            name,
            'path "auth/+/role/*" { capabilities = ["read"] }\n'
            'path "sys/policies/acl/*" { capabilities = ["read"] }',
        )
        token = side.admin.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]
        readers[side.env.name] = Secret(token, "vault token")
    results = {
        side.env.name: snapshot(side, "reader", token=readers[side.env.name])
        for side in (pair.staging, pair.production)
    }
    for result in results.values():
        assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
        assert result.reason == "not readable: auth methods, audit devices, audited headers"
        assert result.grant.attributes["audit devices"] == "not readable (permission denied)"
        assert not any(k.startswith("audit device ") for k in result.grant.attributes)
        assert not [t for t in readers.values() if t.reveal() in repr(result)]
    findings = config_findings(
        view(
            pair,
            observation(pair.staging, results["staging"]),
            observation(pair.production, results["production"]),
        )
    )
    inconclusive = [f for f in findings if f.category is Category.INCONCLUSIVE]
    assert {f.field for f in inconclusive} == {"auth methods", "audit devices", "audited headers"}
    assert {f.field for f in findings if f.category is Category.CONFIG_DRIFT} == {
        "policy ${vars.app} path secret/data/${vars.app}/*",
        "role approle/${vars.app} token_ttl",
    }


def test_a_token_that_may_read_nothing_is_denied(pair: Pair) -> None:
    token = pair.staging.admin.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    result = snapshot(pair.staging, "nothing", token=Secret(token, "vault token"))
    assert result == ProbeResult(Outcome.DENIED, reason="permission denied")


def test_absent_roles_and_policies_are_recorded_as_absent(pair: Pair) -> None:
    result = observe(
        CONFIG,
        {"roles": [{"method": "approle", "name": f"none-{RUN}"}], "policies": [f"none-{RUN}", "root"]},
        probe_context(pair.staging.env, "absent", run=RUN),
    )
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    attributes = result.grant.attributes
    assert attributes[f"role approle/none-{RUN}"] == "absent"
    assert not any(k.startswith(f"role approle/none-{RUN} ") for k in attributes)
    assert attributes[f"policy none-{RUN}"] == "absent"
    assert attributes["policy root"].startswith("root")


def test_the_environments_config_token_is_used_before_its_own(pair: Pair, tmp_path: Path) -> None:
    server = pair.staging_server
    nobody = pair.staging.admin.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    root = pair.staging.secrets[-1]
    var = f"PP_TEST_CONFIG_AUDITOR_{RUN}"
    plain = _env("plain", server, Secret(nobody, "t"), pair.staging.vars)
    audited = _env(
        "audited", server, Secret(nobody, "t"), pair.staging.vars, config_token={"env": var, "value": root}
    )
    own = observe(CONFIG, {}, probe_context(plain, "own", run=RUN))
    assert own == ProbeResult(Outcome.DENIED, reason="permission denied")
    result = observe(CONFIG, {}, probe_context(audited, "auditor", run=RUN))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert root not in repr(result)


def test_an_unreachable_server_is_an_error_not_a_verdict(pair: Pair) -> None:
    dead = environment(
        {
            "name": "dead",
            "vault": {"address": "http://127.0.0.1:9", "auth": {"method": "token", "token": {"env": "X"}}},
        }
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("X", "s.unused")
        assert dead.vault is not None and isinstance(dead.vault.auth, VaultToken)
        dead.vault.auth.token.resolve(Path.cwd(), "t")
    result = observe(CONFIG, {}, probe_context(dead, "dead", run=RUN, seconds=5))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.UNREACHABLE)
