"""What ships: the probe plugins, the scenario schema copy, the built-in scenarios, the example config."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.config.load import LoadedEnvironments, load_scenarios, parse_environments
from parityprobe.config.plan import build_plan
from parityprobe.config.schema import SCHEMA_FILE_NAME, scenario_schema_json
from parityprobe.probe import Probe, ProbeParams
from parityprobe.registry import ProbeRegistry

REPO = Path(__file__).resolve().parents[2]
BUILT_IN = {
    "vault.approle_login",
    "vault.jwt_login",
    "vault.kubernetes_login",
    "vault.break_glass_login",
    "vault.token_lookup",
    "vault.token_renew",
    "vault.token_revoke",
    "vault.kv_read",
    "vault.kv_write",
    "vault.kv_list",
    "vault.kv_delete",
    "vault.kv_undelete",
    "vault.request",
    "vault.approle_secret_id",
    "vault.approle_secret_id_destroy",
    "vault.database_creds",
    "vault.lease_revoke",
    "vault.config",
    "postgres.connect",
    "aws.caller_identity",
    "aws.assume_role",
    "aws.secret_read",
    "aws.s3_get_object",
    "aws.call",
    "aws.iam_create_access_key",
    "aws.iam_delete_access_key",
    "aws.assume_role_with_web_identity",
    "aws.access_key_rotate",
    "aws.secret_rotate",
    "aws.secret_pending_clear",
    "aws.config",
    "aws.break_glass_assume_role",
    "http.request",
    "oauth2.client_credentials",
}


def test_built_in_probes_are_entry_point_plugins() -> None:
    registry = ProbeRegistry()
    assert set(registry.names()) >= BUILT_IN
    for name in BUILT_IN:
        cls = registry.probe_class(name)
        assert cls.name == name
        assert issubclass(cls.Params, ProbeParams)
        assert isinstance(registry.probe(name), Probe)


def test_checked_in_schema_is_current() -> None:
    assert (REPO / "scenarios" / SCHEMA_FILE_NAME).read_text() == scenario_schema_json()
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0 and result.output == scenario_schema_json()


def test_built_in_scenarios_plan_against_the_example_environments() -> None:
    parsed, locator = parse_environments(REPO / "deploy" / "environments.example.yaml")
    envs = LoadedEnvironments(locator.file, locator, list(parsed.environments.values()))
    plan = build_plan(envs, load_scenarios([REPO / "scenarios"]), ProbeRegistry())
    assert {s.id for s in plan.scenarios} == {
        "token-fetch",
        "forbidden-calls",
        "break-glass",
        "vault-writes",
        "vault-reads",
        "vault-deletes",
        "vault-sys",
        "vault-tokens",
        "vault-jwt",
        "vault-rotation",
        "vault-config",
        "vault-database",
        "vault-break-glass-drill",
        "aws-forbidden-calls",
        "aws-config",
        "aws-rotation",
        "aws-break-glass-drill",
        "aws-web-identity",
        "http-oauth2",
        "net-reachability",
        "tls-trust",
        "k8s-rbac",
    }
    assert [e.effective_tier.value for e in plan.environments] == ["staging", "production"]


def test_probes_command_lists_every_probe() -> None:
    result = CliRunner().invoke(main, ["probes"])
    assert result.exit_code == 0
    assert {line.split()[0] for line in result.output.splitlines()} >= BUILT_IN


def test_validate_reports_bad_input_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "envs.yaml").write_text("environments:\n  staging: {vars: {}}\n  production: {}\n")
    (tmp_path / "s.yaml").write_text("id: s\nsteps:\n  - {id: a, probe: aws.caller_identity, wiht: {}}\n")
    result = CliRunner().invoke(
        main, ["validate", "-e", str(tmp_path / "envs.yaml"), str(tmp_path / "s.yaml")]
    )
    assert result.exit_code == 2
    assert f"{tmp_path / 's.yaml'}:3: steps[0].wiht: unknown field" in result.output
    assert "Traceback" not in result.output
