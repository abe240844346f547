"""The runner: order, correlation ids, faults as data, skips, cleanup, secrets registered."""

from __future__ import annotations

import re
from pathlib import Path

from parityprobe.model import ErrorKind, Outcome, Run
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner, ScenarioRuns
from tests.plugins import Echo, Track, Write, build, registry
from tests.unit.test_plan import plan_for

REGISTRY = ProbeRegistry.of(Echo, Write)


def run(tmp_path: Path, scenario: str, redactor: Redactor | None = None, timeout: float = 5.0) -> list[Run]:
    plan = plan_for(tmp_path, scenario)
    (result,) = Runner(REGISTRY, redactor or Redactor(), step_timeout=timeout).run(plan)
    return list(result.runs)


def test_steps_run_in_order_in_every_environment_with_correlation_ids(tmp_path: Path) -> None:
    staging, production = run(
        tmp_path,
        "id: s\nsteps:\n  - {id: first, probe: test.echo, with: {value: '${{ vars.team }}'}}\n"
        "  - {id: second, probe: test.echo, with: {value: '${{ steps.first.outputs.value }}-2'}}\n",
    )
    assert (staging.environment, production.environment) == ("staging", "production")
    assert staging.id != production.id
    for r in (staging, production):
        first, second = r.observations
        assert first.outcome is Outcome.ALLOWED and first.outputs["value"] == "payments"
        assert second.outputs["value"] == "payments-2"
        assert first.correlation_id == f"pp-{r.id}-first"
        assert re.fullmatch(r"pp-[0-9a-f]{12}-second", second.correlation_id)
        assert second.outputs["correlation_id"] == second.correlation_id  # what the probe was given
        assert first.latency_ms is not None and first.latency_ms >= 0


def test_a_crashing_probe_is_an_error_observation_and_the_run_goes_on(tmp_path: Path) -> None:
    redactor = Redactor()
    (staging, _) = run(
        tmp_path,
        "id: s\nsteps:\n  - {id: login, probe: test.echo, with: {value: abcdefgh}}\n"
        "  - {id: crash, probe: test.echo, with: {crash: true, token: '${{ steps.login.outputs.token }}'}}\n"
        "  - {id: after, probe: test.echo}\n",
        redactor,
    )
    _, crash, after = staging.observations
    assert crash.outcome is Outcome.ERROR and crash.error_kind is ErrorKind.HARNESS_ERROR
    assert crash.reason == "unexpected RuntimeError"
    # The probe echoed the secret in its message: the runner registered it and masked it.
    assert crash.detail == "RuntimeError: crashed holding ***"
    assert after.outcome is Outcome.ALLOWED


def test_translated_refusal_is_a_verdict(tmp_path: Path) -> None:
    (staging, _) = run(tmp_path, "id: s\nsteps:\n  - {id: a, probe: test.echo, with: {refuse: true}}\n")
    (obs,) = staging.observations
    assert obs.outcome is Outcome.DENIED and obs.reason == "refused" and obs.error_kind is None


def test_timeout_is_an_error_never_a_deny(tmp_path: Path) -> None:
    (staging, _) = run(
        tmp_path, "id: s\nsteps:\n  - {id: slow, probe: test.echo, with: {sleep: 2}, timeout: 1}\n", timeout=5
    )
    (obs,) = staging.observations
    assert obs.outcome is Outcome.ERROR and obs.error_kind is ErrorKind.TIMEOUT
    assert obs.latency_ms is None


def test_step_whose_input_was_not_produced_is_skipped(tmp_path: Path) -> None:
    (staging, _) = run(
        tmp_path,
        "id: s\nsteps:\n  - {id: login, probe: test.echo, with: {refuse: true}}\n"
        "  - {id: use, probe: test.echo, with: {token: '${{ steps.login.outputs.token }}'}}\n",
    )
    _, use = staging.observations
    assert use.outcome is Outcome.SKIPPED
    assert use.reason == "needs steps.login.outputs.token (denied (refused))"


def test_cleanup_always_runs_and_sees_outputs(tmp_path: Path) -> None:
    Echo.calls.clear()
    (staging, production) = run(
        tmp_path,
        "id: s\nsteps:\n  - {id: make, probe: test.echo, with: {value: thing}}\n"
        "  - {id: broken, probe: test.echo, with: {crash: true}}\n"
        "cleanup:\n  - {id: undo, probe: test.echo, with: {value: '${{ steps.make.outputs.value }}'}}\n",
    )
    for r in (staging, production):
        (undo,) = r.cleanup
        assert undo.outcome is Outcome.ALLOWED and undo.outputs["value"] == "thing"
    assert sum(1 for cid, _ in Echo.calls if cid.endswith("-undo")) == 2


def test_secret_outputs_are_registered_with_the_redactor(tmp_path: Path) -> None:
    redactor = Redactor()
    (staging, _) = run(
        tmp_path, "id: s\nsteps:\n  - {id: a, probe: test.echo, with: {value: zyxwvut}}\n", redactor
    )
    (obs,) = staging.observations
    token = obs.outputs["token"]
    assert str(token) == "***"
    assert redactor.redact("leaked tok-zyxwvut here") == "leaked *** here"


# --- concurrency: scenarios of one environment side by side, steps of one scenario in order ---------------

CONCURRENT_ENVS = """\
environments:
  staging: {vars: {team: payments}}
  production: {vars: {team: payments}}
"""


def tracked_scenarios(count: int, steps: int, *, meet: bool) -> list[str]:
    """``count`` scenarios of ``steps`` tracked steps each; the first scenario's steps are the slowest, so it
    finishes last when scenarios run side by side."""
    texts = []
    for n in range(count):
        sleep = 0.03 if n == 0 else 0.005
        lines = [f"id: sc-{n}", "steps:"]
        for i in range(steps):
            together = "true" if meet and i == 0 else "false"
            lines.append(
                f"  - {{id: s{i}, probe: test.track, with: {{key: k{n}, sleep: {sleep}, meet: {together}}}}}"
            )
        lines += ["cleanup:", "  - {id: tidy, probe: test.track}"]
        texts.append("\n".join(lines) + "\n")
    return texts


def run_tracked(tmp_path: Path, concurrency: int, *, meet: bool) -> list[ScenarioRuns]:
    Track.reset()
    plan = build(tmp_path, CONCURRENT_ENVS, *tracked_scenarios(4, 3, meet=meet))
    return Runner(registry(), Redactor(), step_timeout=10, concurrency=concurrency).run(plan)


def assert_steps_in_order_and_results_in_plan_order(results: list[ScenarioRuns]) -> None:
    assert [result.spec.id for result in results] == [f"sc-{n}" for n in range(4)]
    for result in results:
        assert [r.environment for r in result.runs] == ["staging", "production"]
        for r in result.runs:
            assert r.scenario == result.spec.id
            assert [o.step for o in r.observations] == ["s0", "s1", "s2"]
            assert all(o.outcome is Outcome.ALLOWED for o in (*r.observations, *r.cleanup))
            assert [o.correlation_id for o in r.observations] == [f"pp-{r.id}-s{i}" for i in range(3)]
            assert {o.outputs["key"] for o in r.observations} == {f"k{result.spec.id[3:]}"}
            # What the probe saw, in the order it saw it: each call left before the next one entered.
            seen = [(event, cid) for event, _, cid in Track.events if cid.startswith(f"pp-{r.id}-")]
            expected = [f"pp-{r.id}-{step}" for step in ("s0", "s1", "s2", "tidy")]
            assert seen == [(event, cid) for cid in expected for event in ("enter", "exit")]


def test_at_concurrency_1_scenarios_of_one_environment_never_overlap(tmp_path: Path) -> None:
    results = run_tracked(tmp_path, 1, meet=False)
    assert_steps_in_order_and_results_in_plan_order(results)
    assert Track.peak == {"staging": 1, "production": 1}


def test_at_concurrency_4_scenarios_of_one_environment_overlap(tmp_path: Path) -> None:
    # Each scenario's first step waits (up to 5s) for another call of its environment to be under way:
    # the peak shows whether the runner let two scenarios of one environment run at once.
    results = run_tracked(tmp_path, 4, meet=True)
    assert_steps_in_order_and_results_in_plan_order(results)
    assert Track.peak["staging"] >= 2 and Track.peak["production"] >= 2
