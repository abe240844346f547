"""``expect.within``: a step repeated until its expected outcome holds, how long that took, and what
comparing those times finds."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.errors import InputError
from parityprobe.model import Category, Observation, Outcome, Run
from parityprobe.redact import Redactor
from parityprobe.report.build import cell
from parityprobe.runner import Runner
from tests.plugins import build, registry

ENVS = """\
environments:
  staging: {tier: staging, safety: {allow_effects: [read, write]}}
  production: {tier: production, safety: {allow_effects: [read, write]}}
"""


def scenario(refusals: str, expect: str = "{outcome: allowed, within: 10s}", extra: str = "") -> str:
    key = "k" + secrets.token_hex(4)  # Flip counts calls per key: each test starts from zero (and YAML text)
    return (
        "id: w\nsteps:\n  - id: wait\n    probe: test.flip\n"
        f"    with: {{key: {key}, refusals: {refusals}}}\n    expect: {expect}\n{extra}"
    )


def runs(tmp_path: Path, text: str) -> list[Run]:
    (result,) = Runner(registry(), Redactor(), step_timeout=5).run(build(tmp_path, ENVS, text))
    return list(result.runs)


def waited(run: Run) -> Observation:
    obs = run.observation("wait")
    assert obs is not None
    return obs


def test_the_step_repeats_until_its_expected_outcome_and_records_how_long_and_how_often(
    tmp_path: Path,
) -> None:
    staging, production = runs(tmp_path, scenario("{staging: 0, production: 3}"))
    s, p = waited(staging), waited(production)
    assert s.outcome is p.outcome is Outcome.ALLOWED
    assert (s.attempts, p.attempts) == (1, 4)
    assert s.waited_seconds is not None and p.waited_seconds is not None
    assert p.waited_seconds > s.waited_seconds  # three pauses more; no bound on how long they took
    assert cell(p, "production").waited is not None and "4 attempts" in (cell(p, "production").waited or "")


def test_an_outcome_never_reached_in_time_is_the_last_attempt_s_and_an_expectation_violation(
    tmp_path: Path,
) -> None:
    staging, production = runs(
        tmp_path, scenario("{staging: 0, production: 1000}", "{outcome: allowed, within: 1s}")
    )
    p = waited(production)
    assert p.outcome is Outcome.DENIED and p.waited_seconds is None
    assert p.attempts is not None and p.attempts > 1
    assert cell(p, "production").waited == f"not reached ({p.attempts} attempts)"
    (finding,) = compare(staging.spec, [staging, production]).findings
    assert finding.category is Category.EXPECTATION_VIOLATION
    assert finding.message.endswith("the scenario expects allowed within 1s")


def test_an_attempt_without_a_verdict_ends_the_wait(tmp_path: Path) -> None:
    text = scenario("{staging: 2, production: 0}").replace("refusals:", "crash_at: 2, refusals:")
    staging, _ = runs(tmp_path, text)
    s = waited(staging)
    assert s.outcome is Outcome.ERROR and s.attempts == 2 and s.waited_seconds is None


def test_waits_that_differ_beyond_the_tolerance_are_a_finding_and_equal_ones_are_not(tmp_path: Path) -> None:
    same = runs(tmp_path / "same", scenario("{staging: 0, production: 0}"))
    assert compare(same[0].spec, same).findings == ()
    text = scenario("{staging: 0, production: 2}", extra="    tolerance: {within: 0s}\n")
    staging, production = runs(tmp_path / "differ", text)
    (finding,) = compare(staging.spec, [staging, production]).findings
    assert finding.category is Category.GRANT_MISMATCH and finding.field == "within"
    assert set(finding.environments) == {"staging", "production"}
    assert all(v.startswith("took ") for v in finding.environments.values())


def test_the_wait_survives_the_codec(tmp_path: Path) -> None:
    staging, _ = runs(tmp_path, scenario("{staging: 1, production: 0}"))
    again = from_record(Run, to_record(staging))
    assert waited(again).attempts == 2 and waited(again).waited_seconds == waited(staging).waited_seconds
    assert again.spec.steps[0].expect_within == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (scenario("{}", "{within: 5s}"), "within needs an expected outcome"),
        (
            "id: w\nsteps:\n  - {id: wait, probe: test.write, expect: {outcome: allowed, within: 5s}}\n",
            "must not be repeated",
        ),
    ],
)
def test_within_is_refused_without_an_outcome_and_on_a_step_that_changes_something(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        build(tmp_path, ENVS, text)
    assert message in str(caught.value)
    assert "expect" in str(caught.value)  # located at the step's expect
