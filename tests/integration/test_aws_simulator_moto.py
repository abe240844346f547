"""``crosscheck: simulator`` against a real moto server with IAM enforcement on: moto cannot simulate, so the
cross-check is SKIPPED with moto's reason (HTTP 500 for a caller allowed to ask, AccessDenied for one that is
not), the live decision stands, and the report is never an all-clear."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from parityprobe.compare.comparator import compare
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import build_plan
from parityprobe.model import Category, ExitCode, Outcome, Report, Run, Severity
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.report.verdict import verdict
from parityprobe.runner import Runner
from tests.aws_support import (
    REGION,
    Key,
    Lab,
    bootstrap_client,
    enforce,
    moto_server,
    seed_users,
    static_credentials,
)

pytestmark = pytest.mark.lab

VICTIM = f"victim-{secrets.token_hex(4)}"
NOT_IMPLEMENTED = (
    "simulator cross-check skipped: the target does not implement iam:SimulatePrincipalPolicy (HTTP 500)"
)
MAY_NOT_ASK = (
    "simulator cross-check skipped: the caller may not call iam:SimulatePrincipalPolicy (AccessDenied)"
)


def _seed(url: str) -> dict[str, Key]:
    bootstrap_client(url, "iam").create_user(UserName=VICTIM)
    asker = ["iam:GetUser", "iam:SimulatePrincipalPolicy"]
    return seed_users(
        url,
        {
            "asker": [{"Effect": "Allow", "Action": asker, "Resource": "*"}],
            "mute": [{"Effect": "Allow", "Action": ["iam:GetUser"], "Resource": "*"}],
        },
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with moto_server(tmp_path_factory.mktemp("aws-simulator")) as server:
        keys = _seed(server.url)
        enforce(server.url)
        yield Lab(server, keys)


def _runs(lab: Lab, folder: Path) -> list[Run]:
    envs = {}
    for name, user in (("staging", "asker"), ("production", "mute")):
        credentials = static_credentials(folder, lab.keys[user], user)
        envs[name] = {
            "tier": name,
            "aws": {"region": REGION, "endpoint_url": lab.server.url, "credentials": credentials},
        }
    (folder / "environments.yaml").write_text(yaml.safe_dump({"environments": envs}, sort_keys=False))
    (folder / "scenarios").mkdir()
    scenario = {
        "id": "aws-simulated",
        "steps": [
            {
                "id": "read-victim",
                "probe": "aws.call",
                "with": {"service": "iam", "operation": "GetUser", "params": {"UserName": VICTIM}},
                "expect": {"outcome": "allowed"},
                "crosscheck": "simulator",
            }
        ],
    }
    (folder / "scenarios" / "s.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    registry = ProbeRegistry()
    plan = build_plan(
        load_environments(folder / "environments.yaml", Redactor()),
        load_scenarios([folder / "scenarios"]),
        registry,
    )
    (result,) = Runner(registry, Redactor(), step_timeout=15).run(plan)
    return list(result.runs)


def test_moto_cannot_simulate_so_the_crosscheck_is_skipped_with_its_reason_and_nothing_is_parity(
    lab: Lab, tmp_path: Path
) -> None:
    staging, production = _runs(lab, tmp_path)
    asked, mute = staging.observations[0], production.observations[0]
    # The live decisions stand: moto enforces GetUser for both callers.
    assert (asked.outcome, mute.outcome) == (Outcome.ALLOWED, Outcome.ALLOWED)
    assert (asked.declared, mute.declared) == (Outcome.SKIPPED, Outcome.SKIPPED)
    assert asked.declared_reason == NOT_IMPLEMENTED
    assert mute.declared_reason == MAY_NOT_ASK
    assert asked.target == f"iam:GetUser on arn:<partition>:iam::<account>:user/{VICTIM}"

    comparison = compare(staging.spec, [staging, production])
    assert [(f.category, f.severity) for f in comparison.findings] == [(Category.INCONCLUSIVE, Severity.LOW)]
    report = Report(datetime.now(UTC), (comparison,))
    assert report.exit_code is ExitCode.INCONCLUSIVE
    assert "NO PARITY GAPS FOUND" not in verdict(report).text
