"""The whole flow against the real lab, through the real command line: every planted gap found with its
category and severity, parity shown where it holds, the JSON contract, no secret anywhere, and bad input
refused before any action."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import hvac
import pytest

from parityprobe.cli_lab import profile_scenarios
from parityprobe.lab.profile import DEFAULT_PROFILE
from parityprobe.lab.servers import free_port
from parityprobe.lab.state import LabState

REPO = Path(__file__).resolve().parents[2]
# The default lab's scenarios (the library also holds scenarios for other lab profiles).
SCENARIOS = profile_scenarios(DEFAULT_PROFILE)
# OpenBao service tokens and accessors: "s." and 24 characters, or 24 characters alone.
TOKEN_SHAPE = re.compile(r"\bs\.[A-Za-z0-9]{24}\b")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "parityprobe", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def json_run(lab: LabState) -> Iterator[tuple[Result, dict[str, object]]]:
    result = cli("--verbose", "run", "--format", "json", "--environments", lab.environments_file, *SCENARIOS)
    yield result, json.loads(result.out)


def lab_secrets(lab: LabState) -> list[str]:
    """Every secret the lab knows: credential files, and the generated secret contents read as root."""
    values = [p.read_text().strip() for p in lab.directory.glob("*/secrets/*") if p.is_file()]
    for env in lab.environments:
        root = (lab.directory / env / "secrets" / "root-token").read_text().strip()
        client = hvac.Client(lab.server(env, "openbao").url, token=root)
        for path in ("payments/db", "billing/db"):
            data = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
            values.extend(data["data"]["data"].values())
    assert len(values) >= 10
    return [v for v in values if len(v) >= 8]


def findings_by_step(document: dict[str, object]) -> dict[tuple[str, str], list[dict[str, object]]]:
    out: dict[tuple[str, str], list[dict[str, object]]] = {}
    for finding in document["findings"]:  # type: ignore[attr-defined]
        out.setdefault((finding["scenario"], finding["step"]), []).append(finding)
    return out


@pytest.mark.parametrize(
    ("scenario", "step", "category", "severity", "field", "staging", "production"),
    [
        # (a) staging's policy also grants another team's secret
        (
            "forbidden-calls",
            "read-other-team",
            "expectation_violation",
            "high",
            "outcome",
            "allowed",
            "denied",
        ),
        # (b) token TTL 24h in staging, 1h in production
        ("token-fetch", "login", "expectation_violation", "medium", "ttl", "24h", "1h"),
        # (c) staging's break-glass role trusts the workload
        (
            "break-glass",
            "assume-break-glass",
            "expectation_violation",
            "high",
            "outcome",
            "allowed",
            "denied",
        ),
        # (d) staging's workload reads S3 objects outside its prefix
        (
            "forbidden-calls",
            "s3-other-prefix",
            "expectation_violation",
            "high",
            "outcome",
            "allowed",
            "denied",
        ),
        # (e) staging's workload may change its own secrets (found without writing: check-and-set)
        ("vault-writes", "write-own", "expectation_violation", "high", "outcome", "allowed", "denied"),
        # (f) staging's workload may list which secrets exist
        ("vault-writes", "list-team", "expectation_violation", "high", "outcome", "allowed", "denied"),
        # (h) staging's SIEM receives only successful requests: the denied call's audit event is missing
        (
            "forbidden-calls",
            "read-security-team",
            "evidence_gap",
            "medium",
            "siem[0]",
            "missing",
            "received",
        ),
        # (g) staging's workload may create access keys for other users (asked for an absent user)
        (
            "forbidden-calls",
            "create-key-for-other-user",
            "expectation_violation",
            "high",
            "outcome",
            "allowed",
            "denied",
        ),
    ],
)
def test_each_planted_gap_is_found(
    json_run: tuple[Result, dict[str, object]],
    scenario: str,
    step: str,
    category: str,
    severity: str,
    field: str,
    staging: str,
    production: str,
) -> None:
    (finding,) = [f for f in findings_by_step(json_run[1])[(scenario, step)] if f["field"] == field]
    assert (finding["category"], finding["severity"]) == (category, severity)
    values = finding["environments"]
    assert str(values["staging"]).startswith(staging)  # type: ignore[index]
    assert str(values["production"]).startswith(production)  # type: ignore[index]
    assert str(finding["message"]).startswith("staging:")


def test_equal_steps_give_no_finding_and_the_run_exits_1(json_run: tuple[Result, dict[str, object]]) -> None:
    result, document = json_run
    assert result.code == 1 and document["exit_code"] == 1
    by_step = findings_by_step(document)
    for equal in [
        ("forbidden-calls", "read-own"),
        ("forbidden-calls", "read-own-api-key"),
        ("forbidden-calls", "s3-own-prefix"),
        ("token-fetch", "aws-identity"),
    ]:
        assert equal not in by_step
    assert not [f for f in document["findings"] if f["category"] == "inconclusive"]  # type: ignore[attr-defined]
    observations = [o for run in document["runs"] for o in run["observations"]]  # type: ignore[attr-defined]
    assert len(observations) == 2 * (3 + 8 + 1 + 2)
    assert all(o["outcome"] in ("allowed", "denied") for o in observations)
    assert all(re.fullmatch(r"pp-[0-9a-f]{12}-[a-z0-9-]+", o["correlation_id"]) for o in observations)


def test_correlation_ids_reach_the_vault_audit_log(
    lab: LabState, json_run: tuple[Result, dict[str, object]]
) -> None:
    for run in json_run[1]["runs"]:  # type: ignore[attr-defined]
        audit = lab.audit_logs[run["environment"]].read_text()
        for obs in run["observations"]:
            if obs["probe"].startswith("vault."):
                assert f'"x-correlation-id":["{obs["correlation_id"]}"]' in audit


def test_no_secret_in_json_terminal_or_logs(
    lab: LabState, json_run: tuple[Result, dict[str, object]]
) -> None:
    terminal = cli("--verbose", "run", "--environments", lab.environments_file, *SCENARIOS)
    assert terminal.code == 1 and "PARITY GAPS FOUND" in terminal.out
    outputs = [json_run[0].out, json_run[0].err, terminal.out, terminal.err]
    secrets = lab_secrets(lab)
    for text in outputs:
        for value in secrets:
            assert value not in text
        assert not TOKEN_SHAPE.search(text)
    token_outputs = [
        o["outputs"]["token"]
        for run in json_run[1]["runs"]  # type: ignore[attr-defined]
        for o in run["observations"]
        if o["probe"] == "vault.approle_login"
    ]
    assert token_outputs and set(token_outputs) == {"***"}
    assert "DEBUG" in terminal.err  # the verbose logs were produced, and are covered above


def test_demo_json_is_the_documented_document(tmp_path: Path) -> None:
    result = cli("demo", "--format", "json", "--dir", tmp_path / "lab")
    assert result.code == 1, result.err
    document = json.loads(result.out)
    assert document["schema"] == "parityprobe.report/v5"
    assert set(document) >= {"findings", "causes", "runs", "summary", "exit_code", "generated_at"}
    for finding in document["findings"]:
        assert set(finding) >= {"category", "severity", "scenario", "step", "environments", "message"}
        assert set(finding["environments"]) == {"staging", "production"}
    assert document["summary"]["by_severity"]["high"] == 6
    # Grouped by cause: staging's 24h token shows on three steps of two scenarios, and is one cause; every
    # finding is kept as an occurrence of exactly one cause.
    causes = document["causes"]
    assert document["summary"]["causes"] == len(causes) < len(document["findings"])
    occurrences = [o for cause in causes for o in cause["occurrences"]]
    assert sorted(map(json.dumps, occurrences)) == sorted(map(json.dumps, document["findings"]))
    (ttl,) = [c for c in causes if c["field"] == "ttl"]
    assert ttl["steps"] == 3 and ttl["environments"] == {"staging": "24h", "production": "1h"}
    assert {o["scenario"] for o in ttl["occurrences"]} == {"forbidden-calls", "token-fetch"}
    assert not (tmp_path / "lab" / "lab-state.json").exists()  # the lab was stopped


BAD_SCENARIOS = {
    "malformed YAML": (
        "id: bad\nsteps:\n  - id: a\n    probe: [vault.kv_read\n",
        r"bad\.yaml:\d+: invalid YAML",
    ),
    "unknown probe": (
        "id: bad\nsteps:\n  - {id: a, probe: vault.kv_raed}\n",
        r"bad\.yaml:3: steps\[0\]\.probe: unknown probe",
    ),
    "unknown field": (
        "id: bad\nsteps:\n  - id: a\n    probe: vault.kv_read\n    with: {path: x}\n    expected: {}\n",
        r"bad\.yaml:6: steps\[0\]\.expected: unknown field",
    ),
    "wrong type": (
        "id: bad\nsteps:\n  - id: a\n    probe: vault.kv_read\n    with: {path: x, version: latest}\n",
        r"bad\.yaml:5: steps\[0\]\.with\.version: .*integer",
    ),
    "later step": (
        "id: bad\nsteps:\n  - id: a\n    probe: vault.kv_read\n"
        "    with: {path: x, token: '${{ steps.b.outputs.token }}'}\n"
        "  - {id: b, probe: vault.approle_login}\n",
        r"bad\.yaml:5: steps\[0\]\.with\.token: steps\.b is not a step before this one",
    ),
}


def edited_environments(lab: LabState, directory: Path, old: str, new: str) -> Path:
    """A copy of the lab's environments file with one edit; its relative secret references still resolve."""
    text = lab.environments_file.read_text()
    assert old in text
    copy = directory / "environments.yaml"
    copy.write_text(text.replace(old, new, 1))
    for entry in lab.environments_file.parent.iterdir():
        if entry.is_dir():
            (directory / entry.name).symlink_to(entry)
    return copy


def audit_sizes(lab: LabState) -> dict[str, int]:
    return {env: path.stat().st_size for env, path in lab.audit_logs.items()}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenario_is_refused_before_any_action(lab: LabState, tmp_path: Path, case: str) -> None:
    library = tmp_path / "scenarios"
    library.mkdir()
    for scenario in SCENARIOS:
        shutil.copy(scenario, library)
    text, expected = BAD_SCENARIOS[case]
    (library / "bad.yaml").write_text(text)
    before = audit_sizes(lab)
    result = cli("run", "--environments", lab.environments_file, library)
    assert result.code == 2
    assert re.search(expected, result.err), result.err
    assert "Traceback" not in result.err and result.out == ""
    assert audit_sizes(lab) == before  # the good scenarios beside it did not run either


def test_missing_secret_variable_is_refused(lab: LabState, tmp_path: Path) -> None:
    first = re.search(r"secret_id:\s*\{?\s*file: [^\n}]+\}?", lab.environments_file.read_text())
    assert first is not None
    envs = edited_environments(lab, tmp_path, first.group(0), "secret_id: {env: PP_TEST_UNSET_VARIABLE}")
    result = cli("run", "--environments", envs, *SCENARIOS, env={"PP_TEST_UNSET_VARIABLE": ""})
    assert result.code == 2
    assert re.search(
        r"environments\.yaml:\d+: environments\.\w+\.vault\.auth\.secret_id: environment variable "
        r"PP_TEST_UNSET_VARIABLE is not set",
        result.err,
    ), result.err


def test_usage_errors_exit_2_without_traceback(lab: LabState) -> None:
    for args in (
        ["run", *SCENARIOS],
        ["run", "--format", "xml", "-e", lab.environments_file, *SCENARIOS],
        ["run", "-e", lab.environments_file, "--env", "qa", *SCENARIOS],
    ):
        result = cli(*args)
        assert result.code == 2 and "Traceback" not in result.err, result.err


def test_dry_run_prints_the_plan_and_touches_nothing(lab: LabState) -> None:
    before = audit_sizes(lab)
    result = cli("run", "--dry-run", "--environments", lab.environments_file, *SCENARIOS)
    assert result.code == 0, result.err
    assert "step read-other-team: vault.kv_read [read, expect denied]" in result.out
    assert "dry run: nothing was executed" in result.out
    assert audit_sizes(lab) == before


def test_an_unreachable_vault_is_inconclusive_never_parity(lab: LabState, tmp_path: Path) -> None:
    closed = free_port()
    production_vault = lab.server("production", "openbao").url
    envs = edited_environments(lab, tmp_path, production_vault, f"http://127.0.0.1:{closed}")
    scenario = tmp_path / "vault-login.yaml"
    scenario.write_text(
        "id: vault-login\nsteps:\n"
        "  - {id: login, probe: vault.approle_login, expect: {outcome: allowed}, tolerance: {ttl: 2d}}\n"
        "  - {id: lookup, probe: vault.token_lookup, with: {token: '${{ steps.login.outputs.token }}'},"
        " tolerance: {ttl: 2d}}\n"
        "  - {id: aws-identity, probe: aws.caller_identity, expect: {outcome: allowed}}\n"
    )
    result = cli("run", "--format", "json", "--environments", envs, scenario)
    document = json.loads(result.out)
    assert result.code == 3 and document["exit_code"] == 3, result.err
    by_step = findings_by_step(document)
    (login,) = by_step[("vault-login", "login")]
    assert login["category"] == "inconclusive"
    assert login["environments"]["production"] == "error: unreachable (connection failed)"
    (lookup,) = by_step[("vault-login", "lookup")]
    assert lookup["category"] == "inconclusive" and "skipped" in lookup["environments"]["production"]
    assert ("vault-login", "aws-identity") not in by_step  # AWS still answered, and agreed
    terminal = cli("run", "--no-color", "--environments", envs, scenario)
    assert terminal.code == 3 and "INCONCLUSIVE" in terminal.out and "NO PARITY GAPS" not in terminal.out


def test_each_run_records_the_vault_version_it_met(
    lab: LabState, json_run: tuple[Result, dict[str, object]]
) -> None:
    versions = {}
    for env in lab.environments:
        health = httpx.get(f"{lab.server(env, 'openbao').url}/v1/sys/health", timeout=10).json()
        versions[env] = health["version"]
    runs = json_run[1]["runs"]
    # A scenario with a Vault step records its version; break-glass has AWS steps only (AWS says none).
    for run in runs:  # type: ignore[attr-defined]
        vault = any(o["probe"].startswith("vault.") for o in run["observations"])
        assert run["servers"] == ({"vault": versions[run["environment"]]} if vault else {})
    # One OpenBao build in both environments: no version drift.
    assert not [f for f in json_run[1]["findings"] if str(f["field"]).startswith("server ")]  # type: ignore[attr-defined, index]
