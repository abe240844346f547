"""The latency judge wired into comparing: a step's samples (its repetitions with ``repeat: N``, and the
store's history) weighed per environment against the first; a ``latency_mismatch`` only beyond the noise
and the step's ratio, "insufficient data" stated as such, and the judgements carried by the comparison, its
record and the report. The end-to-end cases run the CLI against real loopback HTTP servers, one of which
answers late."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.compare.latency import LatencyHistory
from parityprobe.model import Category, Comparison, JudgeOutcome, Observation, Outcome, Run, Severity, Tier
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec
from tests.fault_server import FaultServer, Reply, two_http_apis

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
FACTS = {
    "production": EnvironmentFacts("production", Tier.PRODUCTION),
    "staging": EnvironmentFacts("staging", Tier.STAGING),
}


def lognormal(median_ms: float, n: int, seed: int, sigma: float = 0.2) -> tuple[float, ...]:
    rng = random.Random(seed)
    return tuple(round(median_ms * rng.lognormvariate(0, sigma), 3) for _ in range(n))


def run(env: str, samples: tuple[float, ...], spec: ScenarioSpec, outcome: Outcome = Outcome.ALLOWED) -> Run:
    obs = Observation(
        "lookup", "vault.token_lookup", env, f"c-{env}", outcome, T0,
        latency_ms=sorted(samples)[len(samples) // 2] if samples else None, latency_samples_ms=samples,
    )  # fmt: skip
    return Run(f"r-{env}", spec, FACTS[env], T0, T0 + timedelta(seconds=1), (obs,))


def spec(threshold: float | None = None) -> ScenarioSpec:
    return ScenarioSpec(
        "tokens", "d", steps=(StepSpec("lookup", "vault.token_lookup", latency_threshold=threshold),)
    )


def test_a_tenfold_slower_environment_is_a_latency_mismatch_with_figures() -> None:
    s = spec()
    comparison = compare(
        s, [run("staging", lognormal(5, 20, 1), s), run("production", lognormal(50, 20, 2), s)]
    )
    (finding,) = [f for f in comparison.findings if f.category is Category.LATENCY_MISMATCH]
    assert finding.step == "lookup" and finding.field == "latency"
    assert finding.severity is Severity.MEDIUM  # three times as long or more
    assert "production's median latency is" in finding.message and "staging's" in finding.message
    assert set(finding.environments) == {"staging", "production"}
    assert "(n=20)" in finding.environments["production"]
    (judgement,) = comparison.latency
    assert judgement.outcome is JudgeOutcome.MISMATCH
    assert (judgement.reference, judgement.environment) == ("staging", "production")
    assert judgement.ratio is not None and 7 < judgement.ratio < 14
    assert len(judgement.samples["staging"]) == len(judgement.samples["production"]) == 20


def test_a_small_shift_is_held_to_the_step_threshold() -> None:
    fast, slow = lognormal(10, 40, 3, sigma=0.05), lognormal(15, 40, 4, sigma=0.05)
    default = compare(spec(), [run("staging", fast, spec()), run("production", slow, spec())])
    assert [f.severity for f in default.findings] == [Severity.LOW]  # 1.5x: beyond the 1.2x default
    lenient = spec(threshold=2.0)
    judged = compare(lenient, [run("staging", fast, lenient), run("production", slow, lenient)])
    assert judged.findings == ()
    (judgement,) = judged.latency
    assert judgement.outcome is JudgeOutcome.NO_DIFFERENCE and "within the 2" in judgement.explanation


def test_too_few_samples_is_stated_never_a_verdict() -> None:
    s = spec()
    comparison = compare(s, [run("staging", (5.0,), s), run("production", (500.0,), s)])
    assert comparison.findings == ()
    (judgement,) = comparison.latency
    assert judgement.outcome is JudgeOutcome.INSUFFICIENT_DATA
    assert judgement.explanation.startswith("insufficient data: staging has 1 sample and production 1 sample")


def test_history_adds_samples_of_the_same_decision_only() -> None:
    s = spec()
    history = LatencyHistory(
        {
            ("lookup", "staging", Outcome.ALLOWED): lognormal(5, 15, 5),
            ("lookup", "production", Outcome.ALLOWED): lognormal(50, 15, 6),
            ("lookup", "production", Outcome.DENIED): lognormal(1, 100, 7),  # another decision: not mixed in
        }
    )
    comparison = compare(s, [run("staging", (5.0,), s), run("production", (52.0,), s)], history)
    (judgement,) = comparison.latency
    assert judgement.outcome is JudgeOutcome.MISMATCH
    assert len(judgement.samples["production"]) == 16  # 15 earlier, then this run's one
    assert judgement.samples["production"][-1] == 52.0


def test_different_decisions_and_errors_are_not_judged() -> None:
    s = spec()
    denied = compare(
        s,
        [run("staging", lognormal(5, 20, 1), s), run("production", lognormal(50, 20, 2), s, Outcome.DENIED)],
    )
    assert denied.latency == ()
    assert all(f.category is not Category.LATENCY_MISMATCH for f in denied.findings)
    errored = compare(s, [run("staging", (), s, Outcome.ERROR), run("production", lognormal(50, 20, 2), s)])
    assert errored.latency == ()


def test_judgements_survive_the_codec() -> None:
    s = spec(threshold=1.5)
    comparison = compare(
        s, [run("staging", lognormal(5, 12, 1), s), run("production", lognormal(50, 12, 2), s)]
    )
    back = from_record(Comparison, json.loads(json.dumps(to_record(comparison))))
    assert back.latency == comparison.latency
    assert (
        back.runs[1].observations[0].latency_samples_ms
        == comparison.runs[1].observations[0].latency_samples_ms
    )
    assert back.spec.steps[0].latency_threshold == 1.5


# ---------------------------------------------------------------- the CLI, on real loopback servers


@pytest.fixture
def apis(tmp_path: Path) -> Iterator[tuple[FaultServer, FaultServer, Path, Path]]:
    with two_http_apis(tmp_path) as made:
        yield made


def repeated(scenario: Path, times: int) -> Path:
    scenario.write_text(
        "id: api\nsteps:\n"
        "  - {id: read, probe: http.request, with: {path: /data}, expect: {outcome: allowed}, "
        f"repeat: {times}}}\n"
    )
    return scenario


def test_repeat_finds_the_environment_that_answers_late(
    apis: tuple[FaultServer, FaultServer, Path, Path],
) -> None:
    staging, production, envs, scenario = apis
    staging.reply = Reply(200, "application/json", b"{}")
    production.reply = Reply(200, "application/json", b"{}", delay=0.04)
    args = ["run", "-e", str(envs), "--quiet", "--format", "json", str(repeated(scenario, 15))]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    (judgement,) = report["latency"]
    assert judgement["outcome"] == "mismatch" and judgement["environment"] == "production"
    assert judgement["scenario"] == "api" and judgement["step"] == "read"
    assert len(judgement["samples"]["production"]) == 15
    (finding,) = report["findings"]
    assert finding["category"] == "latency_mismatch" and finding["step"] == "read"
    (observation,) = next(r for r in report["runs"] if r["environment"] == "production")["observations"]
    assert len(observation["latency_samples_ms"]) == 15


def test_a_single_measurement_reports_insufficient_data(
    apis: tuple[FaultServer, FaultServer, Path, Path],
) -> None:
    staging, production, envs, scenario = apis
    staging.reply = production.reply = Reply(200, "application/json", b"{}")
    result = CliRunner().invoke(main, ["run", "-e", str(envs), "--quiet", "--format", "json", str(scenario)])
    assert result.exit_code == 0, result.output
    (judgement,) = json.loads(result.stdout)["latency"]
    assert judgement["outcome"] == "insufficient_data"
    assert "needs at least 10 in each" in judgement["explanation"]
    text = CliRunner().invoke(main, ["run", "-e", str(envs), "--quiet", "--no-color", str(scenario)]).stdout
    assert "Latency judged on 1 step: 1 insufficient data (needs 10 samples per environment" in text


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ("{id: w, probe: http.request, with: {path: /x, method: POST}, repeat: 5}", "must not be repeated"),
        ("{id: w, probe: http.request, with: {path: /x}, repeat: 1}", "greater than or equal to 2"),
        ("{id: w, probe: http.request, with: {path: /x}, repeat: 3, expect: {outcome: allowed, within: 5s}}",
         "do not go together"),
        ("{id: w, probe: http.request, with: {path: /x}, tolerance: {latency: 0.5}}",
         "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_bad_repeat_and_latency_tolerance_are_located_input_errors(
    apis: tuple[FaultServer, FaultServer, Path, Path], step: str, problem: str
) -> None:
    _, _, envs, scenario = apis
    scenario.write_text(f"id: api\nsteps:\n  - {step}\n")
    result = CliRunner().invoke(main, ["run", "-e", str(envs), "--quiet", str(scenario)])
    assert result.exit_code == 2, result.output
    assert f"{scenario}:3" in result.output and problem in result.output
    assert "Traceback" not in result.output
