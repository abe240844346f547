"""No secret ever leaves, wherever a scenario puts one: every parameter of every built-in probe receives a
secret output (the Vault token of an AppRole login, the secret key of an assumed AWS role), whole and
embedded in longer text, and ``validate``, ``-v run --format json`` and ``-v run --format terminal`` are run
through the real command line against the lab.

Whatever the exit code, no lab secret value and nothing shaped like a token or an AWS credential appears
on standard output or standard error. A secret passed whole to a secret parameter runs; passed to any other
parameter, or embedded in longer text, it is refused at validation (exit 2, an error naming the file, the
line and the parameter) and nothing runs.
"""

from __future__ import annotations

import re
import types
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import pytest

from parityprobe.lab.state import LabState
from parityprobe.model import Effect
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret
from tests.integration.test_end_to_end import TOKEN_SHAPE, Result, audit_sizes, cli, lab_secrets

pytestmark = pytest.mark.lab

# Secret outputs of the two login steps every scenario starts with.
SOURCES = {
    "target-vault": "${{ steps.login.outputs.token }}",
    "target-aws": "${{ steps.assume.outputs.secret_access_key }}",
}
FORMS = {"whole": "{}", "embedded": "prefix-{}-suffix"}
# What a required parameter gets when it is not the one under test: ordinary values that bind.
ORDINARY = {
    "path": "payments/db",
    "role_arn": "arn:aws:iam::${{ vars.account_id }}:role/${{ vars.break_glass_role }}",
    "secret_id": "payments/api-key",
    "bucket": "${{ vars.data_bucket }}",
    "key": "payments/report.csv",
    "method": "GET",
    "role": "payments-app",
    "version": "1",
    "lease_id": "database/creds/payments/lease",
    "user": "payments",
    "password": "not-a-secret",
    "role_id_file": "handed-over/role-id",
    "wrapped_secret_id_file": "handed-over/wrapped-secret-id",
    "external_id_file": "handed-over/external-id",
    "version_id": "5a0e7d8f-0000-4000-8000-000000000000",
    "token": "${{ steps.login.outputs.token }}",  # a required secret parameter takes the login's token
    "service": "sts",
    "operation": "GetCallerIdentity",
    "user_name": "payments-app",
    "host": "127.0.0.1",
    "port": "9",
    "verb": "get",
    "resource": "secrets",
}
# Credentials the lab's AWS hands out at run time (the lab cannot list them beforehand): their shapes.
SHAPES = {
    "OpenBao token": TOKEN_SHAPE,
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b"),
    "AWS session token": re.compile(r"FQoGZXIvYXdz"),
    "AWS secret access key": re.compile(
        r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[0-9])"
        r"[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])"
    ),
}


def _accepts_secret(annotation: Any) -> bool:
    if annotation is Secret:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, Annotated):
        return any(_accepts_secret(arg) for arg in typing.get_args(annotation))
    return False


def _cases() -> list[tuple[str, str, bool, str]]:
    """(probe, parameter, is a secret parameter, form) for every parameter of every registered probe."""
    registry = ProbeRegistry()
    cases: list[tuple[str, str, bool, str]] = []
    for name in registry.names():
        fields = registry.probe_class(name).Params.model_fields
        # A probe without parameters still gets one: a secret passed to a parameter it does not have.
        params = {p: _accepts_secret(info.annotation) for p, info in fields.items()} or {"token": False}
        for param, secret in params.items():
            cases.extend((name, param, secret, form) for form in FORMS)
    return cases


CASES = _cases()


def scenario_text(probe: str, param: str, form: str) -> tuple[str, list[int]]:
    """Log in to Vault and assume a role in AWS, then pass each one's secret output to ``param``; the text,
    and the line of ``param`` in each target step."""
    registry = ProbeRegistry()
    fields = registry.probe_class(probe).Params.model_fields
    required = [p for p, info in fields.items() if info.is_required() and p != param]
    missing = [p for p in required if p not in ORDINARY]
    assert not missing, f"give {probe}'s required parameters {missing} an ordinary value in ORDINARY"
    ident = re.sub(r"[^a-z0-9.-]", "-", f"leak-{probe}-{param}-{form}")
    lines = [
        f"id: {ident}",
        "steps:",
        "  - id: login",
        "    probe: vault.approle_login",
        "  - id: assume",
        "    probe: aws.assume_role",
        "    with:",
        f'      role_arn: "{ORDINARY["role_arn"]}"',
    ]
    targets = []
    for step, source in SOURCES.items():
        lines += [f"  - id: {step}", f"    probe: {probe}", "    with:"]
        lines += [f'      {p}: "{ORDINARY[p]}"' for p in required]
        lines.append(f'      {param}: "{FORMS[form].format(source)}"')
        targets.append(len(lines))
    return "\n".join(lines) + "\n", targets


@pytest.fixture(scope="module")
def secrets(lab: LabState) -> list[str]:
    return lab_secrets(lab)


def leaks(result: Result, secrets: list[str]) -> list[str]:
    """Where secrets show, described without the values themselves (a failing test must not print them)."""
    found = []
    for stream, text in (("stdout", result.out), ("stderr", result.err)):
        for i, value in enumerate(secrets):
            at = text.find(value)
            if at >= 0:
                found.append(f"lab secret #{i} ({len(value)} characters) on {stream} at offset {at}")
        for shape, pattern in SHAPES.items():
            match = pattern.search(text)
            if match is not None:
                context = text[max(0, match.start() - 40) : match.start()]
                found.append(f"{shape} on {stream} at offset {match.start()}, after {context!r}")
    return found


@pytest.mark.parametrize(
    ("probe", "param", "secret_param", "form"), CASES, ids=[f"{p}.{q}-{f}" for p, q, _, f in CASES]
)
def test_a_secret_output_in_any_parameter_never_leaks(
    lab: LabState, secrets: list[str], tmp_path: Path, probe: str, param: str, secret_param: bool, form: str
) -> None:
    text, targets = scenario_text(probe, param, form)
    scenario = tmp_path / "leak.yaml"
    scenario.write_text(text)
    envs = lab.environments_file
    before = audit_sizes(lab)
    commands = {
        "validate": ("validate", "--environments", envs, scenario),
        "run json": ("-v", "run", "--format", "json", "--environments", envs, scenario),
        "run terminal": ("-v", "run", "--no-color", "--environments", envs, scenario),
    }
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:  # three processes: the lab serves them all
        futures = {name: pool.submit(cli, *args) for name, args in commands.items()}
    results = {name: future.result() for name, future in futures.items()}
    found = {name: leaks(result, secrets) for name, result in results.items()}
    assert not any(found.values()), found
    codes = {name: result.code for name, result in results.items()}
    for result in results.values():
        assert "Traceback" not in result.err, result.err
    probe_class = ProbeRegistry().probe_class(probe)
    if probe_class.section not in (None, "vault", "aws"):
        # The lab has no such section (postgres): the plan is refused before any action.
        assert codes == {"validate": 2, "run json": 2, "run terminal": 2}, codes
        assert f"no '{probe_class.section}' section" in results["validate"].err
        assert audit_sizes(lab) == before
        return
    if probe_class.effect is Effect.WRITE:
        # The lab's environments allow reads only: the plan is refused for its effect, before any action.
        # (A privileged step is not refused: it is skipped, so it goes through the checks below.)
        assert codes == {"validate": 2, "run json": 2, "run terminal": 2}, codes
        assert "is not allowed in environments" in results["validate"].err
        assert audit_sizes(lab) == before
        return
    if secret_param and form == "whole":
        assert codes["validate"] == 0, results["validate"].err
        assert codes["run json"] in (0, 1, 3) and codes["run terminal"] in (0, 1, 3), codes
        assert "DEBUG" in results["run json"].err  # the verbose logs were produced, and were checked
        return
    # Refused before anything runs: exit 2 everywhere, each target located, Vault's audit log untouched.
    assert codes == {"validate": 2, "run json": 2, "run terminal": 2}, codes
    for step_index, line in enumerate(targets, start=2):
        location = rf"^error: {re.escape(str(scenario))}:{line}: steps\[{step_index}\]\.with\.{param}: "
        assert re.search(location, results["validate"].err, re.MULTILINE), results["validate"].err
    assert results["run json"].out == "" and results["run terminal"].out == ""
    assert audit_sizes(lab) == before


def test_the_leak_check_knows_every_shape() -> None:
    moto_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # the shape moto's secret keys have
    leaked = "\n".join(
        [
            "token s." + "Ab1" * 8,
            "key ASIA1234567890ABCDEF",
            "FQoGZXIvYXdzEBYaDxyz",
            f"secret {moto_key}",
            "lab-secret",
        ]
    )
    found = leaks(Result(2, leaked, ""), ["lab-secret"])
    assert len(found) == 1 + len(SHAPES), found
    digest = "0123456789abcdef" * 4  # a sha256 in a report is not a key
    assert not leaks(Result(0, f"digest {digest} id pp-0123456789ab-login", ""), [])
