"""``crosscheck: capabilities``: the live decision against the one the target declares for the same action."""

from __future__ import annotations

from pathlib import Path

import pytest

from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.errors import InputError
from parityprobe.model import Category, Outcome, Run, Severity
from parityprobe.redact import Redactor
from parityprobe.report.build import cell
from parityprobe.runner import Runner
from tests.plugins import build, registry

ENVS = """\
environments:
  staging: {tier: staging}
  production: {tier: production}
"""


def runs(tmp_path: Path, live: str, declared: str, crosscheck: str = "capabilities") -> list[Run]:
    text = (
        "id: c\nsteps:\n  - id: read\n    probe: test.declare\n"
        f"    with: {{live: {live}, declared: {declared}}}\n    crosscheck: {crosscheck}\n"
    )
    (result,) = Runner(registry(), Redactor(), step_timeout=5).run(build(tmp_path, ENVS, text))
    return list(result.runs)


def test_a_live_decision_wider_than_declared_is_a_finding_per_environment_graded_by_tier(
    tmp_path: Path,
) -> None:
    staging, production = runs(tmp_path, "{}", "{staging: denied, production: denied}")
    assert staging.observations[0].declared is Outcome.DENIED
    findings = compare(staging.spec, [staging, production]).findings
    assert [(f.category, f.severity) for f in findings] == [
        (Category.DECLARED_MISMATCH, Severity.HIGH),
        (Category.DECLARED_MISMATCH, Severity.MEDIUM),
    ]
    assert findings[0].message == "production: test.declare was allowed, but the target declares it denied"
    assert findings[0].environments["staging"] == "allowed; declared denied"


def test_a_live_refusal_of_a_declared_capability_is_a_low_finding(tmp_path: Path) -> None:
    staging, production = runs(tmp_path, "{staging: denied, production: denied}", "{}")
    findings = compare(staging.spec, [staging, production]).findings
    assert {(f.category, f.severity) for f in findings} == {(Category.DECLARED_MISMATCH, Severity.LOW)}
    assert len(findings) == 2


@pytest.mark.parametrize(
    ("live", "declared"),
    [("{}", "{}"), ("{staging: not_found, production: not_found}", "{}"), ("{}", "{staging: crash}")],
)
def test_agreement_found_nothing_and_a_declared_check_that_failed_is_no_finding(
    tmp_path: Path, live: str, declared: str
) -> None:
    staging, production = runs(tmp_path, live, declared)
    assert compare(staging.spec, [staging, production]).findings == ()
    if "crash" in declared:
        assert staging.observations[0].declared is Outcome.ERROR
        assert staging.observations[0].outcome is Outcome.ALLOWED  # the live decision stands


def test_the_declared_decision_survives_the_codec(tmp_path: Path) -> None:
    staging, _ = runs(tmp_path, "{}", "{staging: denied}")
    assert from_record(Run, to_record(staging)).observations[0].declared is Outcome.DENIED


def test_a_probe_that_declares_nothing_cannot_crosscheck(tmp_path: Path) -> None:
    text = "id: c\nsteps:\n  - {id: read, probe: test.echo, crosscheck: capabilities}\n"
    with pytest.raises(InputError) as caught:
        build(tmp_path, ENVS, text)
    assert "steps[0].crosscheck" in str(caught.value) and "cannot crosscheck" in str(caught.value)


def test_only_capabilities_can_be_crosschecked(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        runs(tmp_path, "{}", "{}", crosscheck="policies")
    assert "crosscheck" in str(caught.value)


def test_the_report_cell_shows_the_declared_decision(tmp_path: Path) -> None:
    staging, _ = runs(tmp_path, "{}", "{staging: denied}")
    assert cell(staging.observations[0], "staging").declared == "declared denied"
