"""The net-gaps lab profile against the built-in ``scenarios/net-*.yaml`` and ``scenarios/tls-*.yaml``: one
finding for each planted gap (a port reachable in staging only, mutual TLS required in production only, a
server certificate from another root in staging), none on the steps that are equal, and no private key in
any output; the lab brought up and run through the command line, with TCP listeners and a TLS server per
environment, certificates generated at ``lab up`` and removed by ``lab down``."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from parityprobe.cli import main
from parityprobe.cli_lab import profile_scenarios
from parityprobe.errors import InputError
from parityprobe.lab.profile import NET_GAPS_PROFILE, PROFILES, load_profile, profile_path
from parityprobe.lab.state import LabState, read_state

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]

# (scenario, step, category, field): the one finding of each planted gap, lettered as in the profile.
PLANTED = {
    ("net-reachability", "payments-db-direct", "expectation_violation", "outcome"),  # (a)
    ("tls-trust", "without-client-certificate", "expectation_violation", "outcome"),  # (b)
    ("tls-trust", "with-workload-certificate", "grant_mismatch", "root sha256"),  # (c)
}
EQUAL_STEPS = {("net-reachability", "internal-api"), ("net-reachability", "admin-port")}


@dataclass(frozen=True)
class Ran:
    """The lab while it runs, what it wrote, and the run's outputs (read before ``lab down``)."""

    state: LabState
    environments: dict[str, Any]
    report: dict[str, Any]
    outputs: str  # the JSON report file and the terminal output, together
    keys: dict[Path, bytes]  # every private key file the lab wrote, and its contents
    modes: dict[Path, int]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    """``lab up --profile net-gaps``, then ``run`` on the profile's scenarios; ``lab down`` afterwards."""
    root = tmp_path_factory.mktemp("net-gaps")
    directory = root / "lab"
    runner = CliRunner()
    up = runner.invoke(main, ["lab", "up", "--profile", "net-gaps", "--dir", str(directory)])
    state = read_state(directory.resolve())
    try:
        assert up.exit_code == 0, up.output
        assert state is not None and state.profile == NET_GAPS_PROFILE.resolve()
        assert "scenarios/tls-trust.yaml" in up.output  # lab up suggests the profile's scenarios
        report_file = root / "report.json"
        scenarios = [str(p) for p in profile_scenarios(NET_GAPS_PROFILE)]
        run = runner.invoke(
            main,
            ["run", "-e", str(state.environments_file), "-o", str(report_file), *scenarios],
        )
        assert run.exit_code == 1, run.output  # findings
        keys = {p: p.read_bytes() for p in directory.glob("*/tls/*.key")}
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in directory.glob("*/tls*")}
        modes.update((p, stat.S_IMODE(p.stat().st_mode)) for p in keys)
        yield Ran(
            state,
            yaml.safe_load(state.environments_file.read_text())["environments"],
            json.loads(report_file.read_text()),
            report_file.read_text() + run.output,
            keys,
            modes,
        )
    finally:
        down = runner.invoke(main, ["lab", "down", "--dir", str(directory)])
        assert down.exit_code == 0, down.output
        if state is not None:
            assert not any(s.alive() for s in state.servers)
        assert not list(directory.glob("*/tls")), "lab down removes the certificates and keys"


def findings(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(f["scenario"], f["step"], f["category"], f["field"]) for f in report["findings"]]


def observation(report: dict[str, Any], environment: str, step: str) -> dict[str, Any]:
    (found,) = [
        o
        for run in report["runs"]
        if run["environment"] == environment
        for o in run["observations"]
        if o["step"] == step
    ]
    return dict(found)


def test_the_profile_is_shipped_and_runs_the_net_and_tls_scenarios() -> None:
    assert profile_path("net-gaps") == NET_GAPS_PROFILE and "net-gaps" in PROFILES
    names = {p.stem for p in profile_scenarios(NET_GAPS_PROFILE)}
    shipped = {p.stem for pattern in ("net-*.yaml", "tls-*.yaml") for p in (REPO / "scenarios").glob(pattern)}
    assert names == shipped == {"net-reachability", "tls-trust"}
    text = NET_GAPS_PROFILE.read_text()
    assert [f"GAP ({letter})" in text for letter in "abc"] == [True, True, True]
    assert "GAP (d)" not in text


def test_each_planted_gap_gives_exactly_one_finding(ran: Ran) -> None:
    assert sorted(findings(ran.report)) == sorted(PLANTED)
    causes = ran.report["causes"]
    assert len(causes) == len(PLANTED) and all(c["steps"] == 1 for c in causes)
    for finding in ran.report["findings"]:
        if finding["category"] == "expectation_violation":
            assert finding["message"].startswith("staging:")  # production is the correct one


def test_the_gaps_show_what_each_environment_did(ran: Ran) -> None:
    report = ran.report
    # (a) The database's port: open in staging, refused in production.
    assert observation(report, "staging", "payments-db-direct")["outcome"] == "allowed"
    refused = observation(report, "production", "payments-db-direct")
    assert (refused["outcome"], refused["reason"]) == ("denied", "refused")
    # (b) No client certificate: production refuses the handshake, staging lets it through.
    required = observation(report, "production", "without-client-certificate")
    assert (required["outcome"], required["reason"]) == ("denied", "client certificate required")
    assert observation(report, "staging", "without-client-certificate")["outcome"] == "allowed"
    # (c) Both chains verify against their own trust stores, under the same root name; the roots differ.
    grants = {env: observation(report, env, "with-workload-certificate")["grant"] for env in ran.environments}
    staging, production = grants["staging"]["attributes"], grants["production"]["attributes"]
    assert staging["chain"] == production["chain"] == "verifies"
    assert staging["root"] == production["root"] and "Payments Internal CA" in staging["root"]
    assert staging["issuer"] == production["issuer"]
    assert staging["root sha256"] != production["root sha256"]
    (root,) = [f for f in report["findings"] if f["field"] == "root sha256"]
    assert root["environments"] == {
        "staging": staging["root sha256"],
        "production": production["root sha256"],
    }
    for env, folder in (("staging", "staging"), ("production", "production")):
        bundle = ran.state.directory / folder / "tls" / "ca-bundle.pem"
        assert Path(ran.environments[env]["tls"]["ca_bundle"]) == bundle


def test_the_root_fingerprints_are_those_of_the_generated_authorities(ran: Ran) -> None:
    """Production's bundle holds the internal CA only; staging's also the second root its server uses."""
    fingerprints = {}
    for env, entry in ran.environments.items():
        roots = x509.load_pem_x509_certificates(Path(entry["tls"]["ca_bundle"]).read_bytes())
        fingerprints[env] = [hashlib.sha256(r.public_bytes(Encoding.DER)).hexdigest() for r in roots]
    assert len(fingerprints["production"]) == 1 and len(fingerprints["staging"]) == 2
    assert fingerprints["production"][0] == fingerprints["staging"][0]  # the same internal CA, shared
    attributes = {
        env: observation(ran.report, env, "with-workload-certificate")["grant"]["attributes"]["root sha256"]
        for env in ran.environments
    }

    def bare(value: str) -> str:
        return value.replace(":", "").lower().removeprefix("sha256").strip(" :=")

    assert bare(attributes["production"]) == fingerprints["production"][0]
    assert bare(attributes["staging"]) == fingerprints["staging"][1]


def test_equal_steps_give_no_finding(ran: Ran) -> None:
    flagged = {(scenario, step) for scenario, step, _, _ in findings(ran.report)}
    assert not flagged & EQUAL_STEPS
    for env in ran.environments:
        assert observation(ran.report, env, "internal-api")["outcome"] == "allowed"
        admin = observation(ran.report, env, "admin-port")
        assert (admin["outcome"], admin["reason"]) == ("denied", "refused")


def test_the_lab_writes_vars_and_a_tls_section_with_keys_by_reference(ran: Ran) -> None:
    for name, entry in ran.environments.items():
        variables = entry["vars"]
        ports = {f"{n}_port" for n in ("db", "internal_api", "admin", "api", "mesh")}
        assert ports | {"tls_server_name"} <= set(variables)
        workload = entry["tls"]["client_certificates"]["workload"]
        assert set(workload["key"]) == {"file"}  # a reference, never the key
        key = ran.state.directory / workload["key"]["file"]
        assert key in ran.keys and key.parent == ran.state.directory / name / "tls"
    assert ran.keys and all(ran.modes[key] == 0o600 for key in ran.keys)
    assert all(mode == 0o700 for path, mode in ran.modes.items() if path.name == "tls")


def test_no_private_key_in_any_output(ran: Ran) -> None:
    assert "PRIVATE KEY" not in ran.outputs
    for content in ran.keys.values():
        body = [line for line in content.decode().splitlines() if line and not line.startswith("-----")]
        assert body and not [line for line in body if line in ran.outputs]


def _profile_with(tmp_path: Path, change: str, to: str) -> Path:
    text = NET_GAPS_PROFILE.read_text()
    assert change in text
    path = tmp_path / "profile.yaml"
    path.write_text(text.replace(change, to, 1))
    return path


def test_a_profile_naming_an_undeclared_authority_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _profile_with(tmp_path, "server_ca: staging-internal", "server_ca: staging-other")
    with pytest.raises(InputError) as refused:
        load_profile(path)
    (problem,) = refused.value.problems
    assert "undeclared certificate_authorities: staging-other" in problem.message


def test_a_listener_whose_vars_the_profile_also_sets_is_refused(tmp_path: Path) -> None:
    workload = "    workload: payments-app\n"
    path = _profile_with(tmp_path, workload, workload + "    db_port: '1'\n")
    with pytest.raises(InputError) as refused:
        load_profile(path)
    assert any("db_port are set by the lab's listeners" in p.message for p in refused.value.problems)
