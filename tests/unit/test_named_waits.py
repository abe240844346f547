"""Named waits: conditions a probe awaits itself (``ctx.poll``), recorded on the observation and compared
across environments with the same tolerance rule as a step's ``expect.within`` wait."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import pytest

from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.compare.context import StepView
from parityprobe.compare.timing import wait_mismatch
from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import build_plan
from parityprobe.model import Category, Effect, Observation, Outcome, Run, Tier
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.report.build import cell
from parityprobe.runner import Runner
from parityprobe.spec import EnvironmentFacts, StepSpec
from tests.plugins import PROBES

PROBE = "aws.access_key_rotate"
ENVS = (EnvironmentFacts("staging", Tier.STAGING), EnvironmentFacts("production", Tier.PRODUCTION))


def observation(env: str, waits: dict[str, float]) -> Observation:
    return Observation(
        step="rotate",
        probe=PROBE,
        environment=env,
        correlation_id=f"pp-r-{env}",
        outcome=Outcome.ALLOWED,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        waits=MappingProxyType(waits),
    )


def view(staging: dict[str, float], production: dict[str, float], step: StepSpec | None = None) -> StepView:
    return StepView(
        "rotation",
        step or StepSpec("rotate", PROBE),
        ENVS,
        (observation("staging", staging), observation("production", production)),
    )


def test_a_named_wait_that_differs_beyond_the_default_tolerance_is_a_finding_naming_it() -> None:
    (finding,) = wait_mismatch(view({"new key works": 0.2}, {"new key works": 4.1}))
    assert finding.category is Category.GRANT_MISMATCH
    assert finding.field == "within new key works"
    assert (
        finding.message
        == "aws.access_key_rotate: the time until the new key works differs (took 0.2s to 4.1s)"
    )
    assert dict(finding.environments) == {"staging": "took 0.2s", "production": "took 4.1s"}


@pytest.mark.parametrize(
    ("staging", "production"),
    [
        (0.2, 1.1),  # under the 1 s floor
        (10.0, 11.9),  # under 20 % of the longest
    ],
)
def test_named_waits_within_the_default_tolerance_are_no_finding(staging: float, production: float) -> None:
    assert wait_mismatch(view({"old key refused": staging}, {"old key refused": production})) == []


def test_the_step_s_within_tolerance_applies_to_named_waits_too() -> None:
    strict = StepSpec("rotate", PROBE, within_tolerance=0)
    (finding,) = wait_mismatch(view({"old key refused": 0.2}, {"old key refused": 0.5}, strict))
    assert finding.field == "within old key refused"
    loose = StepSpec("rotate", PROBE, within_tolerance=10)
    assert wait_mismatch(view({"old key refused": 0.2}, {"old key refused": 9.0}, loose)) == []


def test_a_wait_only_some_environments_saw_is_left_to_the_grant_rules() -> None:
    # Production's old key was never refused: that is its attribute ("still accepted after 30s"), not a time.
    assert wait_mismatch(view({"new key works": 0.2, "old key refused": 0.3}, {"new key works": 0.4})) == []


def test_each_named_wait_is_judged_on_its_own_and_alongside_the_step_s_wait() -> None:
    step = StepSpec("rotate", PROBE, expect_outcome=Outcome.ALLOWED, expect_within=60, within_tolerance=0)
    pair = view(
        {"new key works": 0.2, "old key refused": 0.3}, {"new key works": 3.0, "old key refused": 0.3}, step
    )
    timed = StepView(
        pair.scenario,
        step,
        pair.environments,
        tuple(
            dataclasses.replace(o, waited_seconds=w, attempts=1)
            for o, w in zip(pair.observations, (1.0, 5.0), strict=True)
        ),
    )
    findings = wait_mismatch(timed)
    assert [f.field for f in findings] == ["within", "within new key works"]


def test_a_single_environment_has_nothing_to_compare_its_waits_with() -> None:
    alone = StepView("rotation", StepSpec("rotate", PROBE), ENVS[:1], (observation("staging", {"w": 1.0}),))
    assert wait_mismatch(alone) == []


# --- through the runner: a probe that polls, its waits on the observation, the comparison, the report ------


class AwaitParams(ProbeParams):
    ready_at: dict[str, int] = {}  # environment -> the look at which the condition first holds; 0: never


class Await:
    """Polls with ``ctx.poll`` for a condition holding on a given look, per environment; reports the wait."""

    name: ClassVar[str] = "test.await"
    Params: ClassVar[type[ProbeParams]] = AwaitParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: AwaitParams, ctx: ProbeContext) -> ProbeResult:
        looks = 0
        ready_at = params.ready_at.get(ctx.environment.name, 1)

        def ready() -> bool | None:
            nonlocal looks
            looks += 1
            return True if ready_at and looks >= ready_at else None

        polled = ctx.poll(ready, within=5, interval=0.01, backoff=1.0)
        waits = {"condition holds": polled.waited_seconds} if polled.value else {}
        return ProbeResult(waits=MappingProxyType(waits))

    def translate(self, exc: BaseException) -> Failure | None:
        return None


ENV_TEXT = """\
environments:
  staging: {tier: staging}
  production: {tier: production}
"""


def runs(tmp_path: Path, scenario: str) -> list[Run]:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "s.yaml").write_text(scenario)
    (tmp_path / "environments.yaml").write_text(ENV_TEXT)
    probes = ProbeRegistry.of(*PROBES, Await)
    plan = build_plan(
        load_environments(tmp_path / "environments.yaml", Redactor()), load_scenarios([folder]), probes
    )
    (result,) = Runner(probes, Redactor(), step_timeout=10).run(plan)
    return list(result.runs)


def test_a_probe_s_waits_reach_the_observation_the_comparison_the_codec_and_the_report(
    tmp_path: Path,
) -> None:
    text = (
        "id: waits\nsteps:\n  - id: await\n    probe: test.await\n"
        "    with: {ready_at: {staging: 1, production: 6}}\n    tolerance: {within: 0s}\n"
    )
    staging, production = runs(tmp_path, text)
    s, p = staging.observation("await"), production.observation("await")
    assert s is not None and p is not None
    assert set(s.waits) == set(p.waits) == {"condition holds"}
    assert p.waits["condition holds"] > s.waits["condition holds"]  # five pauses more; no bound on how long
    (finding,) = compare(staging.spec, [staging, production]).findings
    assert (finding.category, finding.field) == (Category.GRANT_MISMATCH, "within condition holds")
    again = from_record(Run, to_record(production)).observation("await")
    assert again is not None and again.waits == p.waits
    assert cell(p, "production").waits == (f"condition holds: took {p.waits['condition holds']:.1f}s",)
