"""Privileged steps (break-glass drills) run only where the environment's safety allows them and the run
passes ``--allow-break-glass``; elsewhere they are skipped, by choice, with the reason, and are no finding."""

from __future__ import annotations

from pathlib import Path

from parityprobe.compare.comparator import compare
from parityprobe.model import NEEDS_BREAK_GLASS, Outcome, Run
from parityprobe.pipeline import describe
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from tests.plugins import build, registry

ENVS = """\
environments:
  staging: {tier: staging}
  production: {tier: production, safety: {allow_effects: [read, write, privileged]}}
"""
DRILL = """\
id: drill
steps:
  - {id: login, probe: test.echo, effect: privileged, with: {value: bg}, expect: {outcome: allowed}}
  - {id: use, probe: test.echo, with: {token: '${{ steps.login.outputs.token }}'}}
"""


def runs(tmp_path: Path, allow: bool) -> list[Run]:
    runner = Runner(registry(), Redactor(), step_timeout=5, allow_break_glass=allow)
    (result,) = runner.run(build(tmp_path, ENVS, DRILL))
    return list(result.runs)


def outcomes(run: Run) -> list[tuple[Outcome, str | None]]:
    return [(o.outcome, o.reason) for o in run.observations]


def test_without_the_flag_the_drill_and_what_needs_it_are_skipped_everywhere_and_found_nothing(
    tmp_path: Path,
) -> None:
    staging, production = runs(tmp_path, allow=False)
    assert outcomes(staging) == [(Outcome.SKIPPED, "effect privileged not allowed here")] * 2
    assert outcomes(production) == [(Outcome.SKIPPED, NEEDS_BREAK_GLASS)] * 2
    assert compare(staging.spec, [staging, production]).findings == ()


def test_with_the_flag_it_runs_only_where_safety_allows_privileged(tmp_path: Path) -> None:
    staging, production = runs(tmp_path, allow=True)
    assert [o.outcome for o in production.observations] == [Outcome.ALLOWED, Outcome.ALLOWED]
    assert all(o.skipped_by_choice for o in staging.observations)
    assert compare(staging.spec, [staging, production]).findings == ()


def test_validate_and_dry_run_say_where_the_drill_is_skipped(tmp_path: Path) -> None:
    the_plan = build(tmp_path, ENVS, DRILL)
    text = describe(the_plan)
    assert "skipped in staging: safety.allow_effects has no privileged" in text
    assert "skipped everywhere without --allow-break-glass" in text
    assert "without --allow-break-glass" not in describe(the_plan, allow_break_glass=True)
