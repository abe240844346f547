"""The vault-gaps lab profile against the built-in ``scenarios/vault-*.yaml``: one finding for each planted
gap, with its category and severity, none on the steps that are equal, and the configuration drift that the
gaps leave; the lab brought up by the profile's name through the command line, with a PostgreSQL per
environment for the database secrets engine."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import hvac
import psycopg
import pytest
import yaml
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.cli_lab import profile_scenarios
from parityprobe.errors import InputError
from parityprobe.lab.postgres import ADMIN_USER
from parityprobe.lab.profile import DEFAULT_PROFILE, PROFILES, VAULT_GAPS_PROFILE, load_profile, profile_path
from parityprobe.lab.state import LabState, read_state
from parityprobe.model import NEEDS_BREAK_GLASS, Category, Effect, Finding, Outcome, Report
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]

# (scenario, step, category, severity): one per planted gap, as the profile's header lists them.
PLANTED = {
    ("vault-writes", "write-own", "expectation_violation", "high"),  # (1)
    ("vault-writes", "list-team", "expectation_violation", "high"),  # (2)
    ("vault-deletes", "delete-own", "expectation_violation", "high"),  # (3)
    ("vault-reads", "read-other-team", "expectation_violation", "high"),  # (4)
    ("vault-sys", "read-auth-methods", "expectation_violation", "high"),  # (5)
    ("vault-tokens", "login", "grant_mismatch", "medium"),  # (6)
    ("vault-jwt", "jwt-other-namespace", "expectation_violation", "high"),  # (7)
    ("vault-reads", "write-config-declared", "declared_mismatch", "low"),  # (8)
    ("vault-database", "connect-after-revoke", "expectation_violation", "high"),  # (10)
}
# (9) the configuration fields the gaps change, as vault.config names them, and each finding's severity.
DRIFT = {
    ("policy ${vars.workload} path secret/data/${vars.team}/*", "high"),
    ("policy ${vars.workload} path secret/metadata/${vars.team}/*", "high"),
    ("policy ${vars.workload} path secret/data/${vars.other_team}/*", "high"),
    ("policy ${vars.workload} path sys/auth", "high"),
    ("policy ${vars.workload} path secret/data/${vars.team}/config", "high"),
    ("role approle/${vars.workload} token_ttl", "medium"),
    ("role jwt/${vars.workload} bound_claims", "medium"),
}
EQUAL_STEPS = {
    ("vault-reads", "read-own"),
    ("vault-reads", "read-own-first-version"),
    ("vault-sys", "read-mounts"),
    ("vault-sys", "list-policies"),
    ("vault-tokens", "renew"),
    ("vault-tokens", "lookup"),
    ("vault-tokens", "revoke"),
    ("vault-tokens", "lookup-after-revoke"),
    ("vault-jwt", "jwt-login"),
    ("vault-jwt", "kubernetes-login"),
    ("vault-jwt", "kubernetes-other-namespace"),
    # Rotation: the new secret id works at once, the old one is refused at once, the new KV version is read.
    ("vault-rotation", "old-secret-id"),
    ("vault-rotation", "new-secret-id"),
    ("vault-rotation", "login-new"),
    ("vault-rotation", "destroy-old"),
    ("vault-rotation", "login-old"),
    ("vault-rotation", "write-version"),
    ("vault-rotation", "read-new-version"),
    ("vault-rotation", "read-first-version"),
    ("vault-database", "creds"),  # the lease TTL is the same in both
    ("vault-database", "connect"),
    ("vault-database", "revoke"),
}


@pytest.fixture(scope="module")
def gaps_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """The vault-gaps lab, brought up by name through ``parityprobe lab up --profile vault-gaps``."""
    directory = tmp_path_factory.mktemp("vault-gaps") / "lab"
    runner = CliRunner()
    result = runner.invoke(main, ["lab", "up", "--profile", "vault-gaps", "--dir", str(directory)])
    try:
        assert result.exit_code == 0, result.output
        state = read_state(directory.resolve())
        assert state is not None
        assert state.profile == VAULT_GAPS_PROFILE.resolve()
        assert "scenarios/vault-writes.yaml" in result.output  # lab up suggests the profile's scenarios
        yield state
    finally:
        down = runner.invoke(main, ["lab", "down", "--dir", str(directory)])
        assert down.exit_code == 0, down.output


@pytest.fixture(scope="module")
def report(gaps_lab: LabState) -> Report:
    redactor, registry = Redactor(), ProbeRegistry()
    scenarios = sorted((REPO / "scenarios").glob("vault-*.yaml"))
    the_plan = plan(gaps_lab.environments_file, scenarios, redactor, registry)
    return execute(the_plan, redactor, registry)


def findings(report: Report) -> list[tuple[str, Finding]]:
    return [(c.spec.id, f) for c in report.comparisons for f in c.findings]


def test_each_planted_gap_gives_exactly_one_finding(report: Report) -> None:
    behavioural = [
        (scenario, f.step, f.category.value, f.severity.value)
        for scenario, f in findings(report)
        if f.category is not Category.CONFIG_DRIFT
    ]
    assert sorted(behavioural) == sorted(PLANTED)
    for _, finding in findings(report):
        if finding.category not in (Category.CONFIG_DRIFT, Category.GRANT_MISMATCH):
            assert str(finding.message).startswith("staging:")  # production is the correct one


def test_equal_steps_give_no_finding_and_every_step_decided(report: Report) -> None:
    flagged = {(scenario, f.step) for scenario, f in findings(report)}
    assert not flagged & EQUAL_STEPS
    ran = {(c.spec.id, o.step) for c in report.comparisons for run in c.runs for o in run.observations}
    assert ran >= EQUAL_STEPS
    observed = [o for c in report.comparisons for run in c.runs for o in run.observations]
    # Every step decided, but the break-glass drill: without --allow-break-glass it is skipped, by choice.
    assert observed and all(
        o.outcome in (Outcome.ALLOWED, Outcome.DENIED) or o.skipped_by_choice for o in observed
    )
    skipped = {(o.probe, o.reason) for o in observed if o.skipped_by_choice}
    assert skipped == {
        ("vault.break_glass_login", NEEDS_BREAK_GLASS),
        ("vault.request", NEEDS_BREAK_GLASS),
    }
    # The undos (tokens revoked, the rotated secret id destroyed again) found everything gone or removed it.
    undos = [o.outcome for c in report.comparisons for run in c.runs for o in run.cleanup]
    assert undos and all(o in (Outcome.ALLOWED, Outcome.NOT_FOUND) for o in undos)


def test_the_gaps_show_as_config_drift(report: Report) -> None:
    drift = {
        (f.field, f.severity.value)
        for scenario, f in findings(report)
        if f.category is Category.CONFIG_DRIFT and scenario == "vault-config"
    }
    assert drift == DRIFT


def test_jwt_token_files_are_private_absolute_and_never_reported(gaps_lab: LabState, report: Report) -> None:
    document = yaml.safe_load(gaps_lab.environments_file.read_text())
    for name, env in document["environments"].items():
        assert env["safety"] == {"allow_effects": ["read", "write", "privileged"]}
        for var in ("jwt_file", "jwt_file_other_namespace"):
            path = Path(env["vars"][var])
            assert path.is_absolute() and path.parent == gaps_lab.directory / name / "secrets"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            token = path.read_text().strip()
            assert token.count(".") == 2 and token not in repr(report)
        config_token = gaps_lab.directory / env["vault"]["config_token"]["file"]
        assert config_token.read_text().strip() not in repr(report)


def test_staging_s_revoked_database_credentials_are_left_in_its_postgres(
    gaps_lab: LabState, report: Report
) -> None:
    """Gap (10) where it lives: after the run (its revoke step and its undo), production's PostgreSQL holds
    no role Vault created, staging's still holds the one it issued, able to log in."""
    issued = {
        o.environment: o.outputs["username"]
        for c in report.comparisons
        if c.spec.id == "vault-database"
        for run in c.runs
        for o in run.observations
        if o.step == "creds"
    }
    left = {}
    for name in ("staging", "production"):
        password = (gaps_lab.directory / name / "secrets" / "postgres-admin-password").read_text()
        assert password not in repr(report)
        with psycopg.connect(
            host="127.0.0.1",
            port=gaps_lab.server(name, "postgres").port,
            dbname="postgres",
            user=ADMIN_USER,
            password=password,
        ) as conn:
            sql = "SELECT rolname, rolcanlogin FROM pg_roles WHERE NOT starts_with(rolname, 'pg_')"
            rows = conn.execute(sql + " AND rolname <> %s", (ADMIN_USER,)).fetchall()
        left[name] = sorted(rows)
    assert left == {"staging": [(issued["staging"], True)], "production": []}


def test_profiles_resolve_by_name_or_path() -> None:
    assert profile_path("default") == DEFAULT_PROFILE
    assert profile_path("vault-gaps") == VAULT_GAPS_PROFILE
    assert profile_path(str(VAULT_GAPS_PROFILE)) == VAULT_GAPS_PROFILE
    assert set(PROFILES) == {"default", "vault-gaps", "aws-gaps", "net-gaps"}
    with pytest.raises(InputError, match=r"unknown profile 'vault-gap'.*default, vault-gaps, aws-gaps"):
        profile_path("vault-gap")
    assert [p.name for p in profile_scenarios(VAULT_GAPS_PROFILE)] == sorted(
        p.name for p in (REPO / "scenarios").glob("vault-*.yaml")
    )
    assert [p.stem for p in profile_scenarios(DEFAULT_PROFILE)] == [
        "break-glass",
        "forbidden-calls",
        "token-fetch",
        "vault-writes",
    ]
    default_envs = load_profile(DEFAULT_PROFILE).environments.values()
    assert all(env.safety.allow_effects == [Effect.READ] for env in default_envs)


def test_an_unknown_profile_name_is_exit_2_with_the_shipped_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["lab", "up", "--profile", "vault-gap", "--dir", str(tmp_path / "lab")])
    assert result.exit_code == 2
    assert "unknown profile 'vault-gap'" in result.output and "default, vault-gaps, aws-gaps" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "lab").exists()  # nothing started


def test_rotation_waits_are_recorded_and_leave_no_secret_id_or_token(
    gaps_lab: LabState, report: Report
) -> None:
    """The rotation's timed steps record how long they took; its secret ids are destroyed and the tokens
    of its logins revoked after the run (the role's secret-id list is empty again)."""
    (rotation,) = [c for c in report.comparisons if c.spec.id == "vault-rotation"]
    for run in rotation.runs:
        for step in ("login-new", "login-old", "read-new-version"):
            obs = run.observation(step)
            assert obs is not None and obs.attempts is not None and obs.attempts >= 1
            assert obs.waited_seconds is not None and obs.waited_seconds >= 0
        revoked = [o for o in run.cleanup if o.probe == "vault.token_revoke"]
        assert revoked and all(o.outcome is Outcome.ALLOWED for o in revoked)
    for name in ("staging", "production"):
        root = (gaps_lab.directory / name / "secrets" / "root-token").read_text().strip()
        admin = hvac.Client(gaps_lab.server(name, "openbao").url, token=root)
        # hvac's list gives None for the 404 of a role without secret ids.
        assert admin.list("auth/approle/role/payments-app-rotation/secret-id") is None


def test_a_decision_names_the_configuration_drift_that_explains_it(report: Report) -> None:
    explained = {(scenario, f.step): f.explanation for scenario, f in findings(report)}
    because = "Configuration drift that may explain it: "
    assert (
        because + "staging's policy ${vars.workload} adds update, delete on secret/data/${vars.team}/*"
        in (explained[("vault-writes", "write-own")])
    )
    assert (
        because + "staging's role jwt/${vars.workload} bound_claims is (none)"
        in (explained[("vault-jwt", "jwt-other-namespace")])
    )
    assert "role approle/${vars.workload} token_ttl is 4h" in explained[("vault-tokens", "login")]


def test_the_break_glass_drill_runs_with_the_flag_once_per_hand_over_and_leaves_nothing(
    gaps_lab: LabState,
) -> None:
    """With --allow-break-glass the drill logs in through the approver's hand-over in both environments
    (equal: no finding) and everything is revoked afterwards; the hand-over is single use, so a second
    drill is denied, and says why."""
    redactor, registry = Redactor(), ProbeRegistry()
    drill = [REPO / "scenarios" / "vault-break-glass-drill.yaml"]
    the_plan = plan(gaps_lab.environments_file, drill, redactor, registry)
    (first,) = execute(the_plan, redactor, registry, allow_break_glass=True).comparisons
    assert first.findings == (), [(f.message, f.environments) for f in first.findings]
    for run in first.runs:
        assert [o.outcome for o in run.observations] == [Outcome.ALLOWED, Outcome.ALLOWED]
        assert all(o.outcome in (Outcome.ALLOWED, Outcome.NOT_FOUND) for o in run.cleanup)
        (revoked,) = [o for o in run.cleanup if o.probe == "vault.token_revoke"]
        assert revoked.outcome is Outcome.ALLOWED
    (again,) = execute(the_plan, redactor, registry, allow_break_glass=True).comparisons
    drills = [run.observation("drill") for run in again.runs]
    assert all(o is not None and o.reason == "wrapping token invalid or already used" for o in drills)
    # The drill's refusal in each environment, and the step that needed its token: no verdict.
    assert sorted((f.step, f.category.value) for f in again.findings) == [
        ("drill", "expectation_violation"),
        ("drill", "expectation_violation"),
        ("use", "inconclusive"),
    ]
