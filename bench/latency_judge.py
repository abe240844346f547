"""The latency judge's error rates over many simulated pairs, and its cost per call.

Latencies are log-normal around a 50 ms median (sigma 0.3, 0.45 and 0.6: a steady endpoint to a noisy
one), one sample in 50 a retry or pause 3 to 20 times as long. For each sigma, PAIRS pairs of environments
with N samples each are judged:

- false alarms: both environments from the same distribution; target at most 1 %;
- detection: the second environment's median 1.5 times the first's; target at least 95 % at sigma 0.3.
  Noisier latencies need more samples (at sigma 0.6 no test separates 1.5x at n = 30 with 1 % false
  alarms), so their rates are printed for information, not judged.

Then what judging costs inside a comparison: a 20-step scenario compared with one latency per step and
environment, against the same with a full history (200 samples) of each.

The cost per call is compared, in the same process, with sorting both samples (the least any median-based
judge does) and with the textbook bootstrap (resampling and sorting each time) that the judge's exact
median distribution replaces.

    python bench/latency_judge.py [--pairs 2000] [--samples 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from parityprobe.compare.comparator import compare
from parityprobe.compare.latency import LatencyHistory
from parityprobe.compare.latency_judge import DEFAULT_SETTINGS, JudgeOutcome, judge
from parityprobe.model import Observation, Outcome, Run, Tier
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec

SIGMAS = (0.3, 0.45, 0.6)
SHIFT = 1.5
FALSE_ALARM_TARGET = 0.01
DETECTION_TARGET = 0.95
DETECTION_SIGMA = 0.3


def latencies(rng: random.Random, n: int, median_ms: float, sigma: float) -> list[float]:
    """Log-normal latencies around median_ms; one in 50 is 3 to 20 times as long."""
    values = []
    for _ in range(n):
        value = median_ms * math.exp(rng.gauss(0.0, sigma))
        if rng.random() < 0.02:
            value *= rng.uniform(3.0, 20.0)
        values.append(value)
    return values


def mismatch_rate(rng: random.Random, pairs: int, n: int, sigma: float, shift: float) -> float:
    found = 0
    for seed in range(pairs):
        a, b = latencies(rng, n, 50.0, sigma), latencies(rng, n, 50.0 * shift, sigma)
        found += judge(a, b, seed=seed).outcome is JudgeOutcome.MISMATCH
    return found / pairs


def textbook_bootstrap(a: list[float], b: list[float], rng: random.Random) -> tuple[float, float]:
    """The percentile interval on the ratio of medians by resampling and sorting each time."""

    def medians(values: list[float]) -> list[float]:
        n, middle = len(values), len(values) // 2
        out = []
        for _ in range(DEFAULT_SETTINGS.resamples):
            drawn = sorted(rng.choices(values, k=n))
            out.append(drawn[middle] if n % 2 else (drawn[middle - 1] + drawn[middle]) / 2)
        return out

    ratios = sorted(mb / ma for ma, mb in zip(medians(a), medians(b), strict=True))
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios))]


def per_call(action: Callable[[], object], budget: float = 0.5) -> float:
    """Seconds per call, over at least 3 calls and about ``budget`` seconds."""
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < budget:
        action()
        calls += 1
    return (time.perf_counter() - start) / calls


def scenario_with_history(
    rng: random.Random, steps: int, kept: int
) -> tuple[ScenarioSpec, list[Run], LatencyHistory]:
    """A scenario of ``steps`` allowed reads run in staging and production, and ``kept`` earlier latencies of
    each step in each."""
    spec = ScenarioSpec("bench", "d", steps=tuple(StepSpec(f"s{i}", "vault.kv_read") for i in range(steps)))
    at = datetime(2030, 1, 1, tzinfo=UTC)
    runs, samples = [], {}
    for env, tier in (("staging", Tier.STAGING), ("production", Tier.PRODUCTION)):
        observations = tuple(
            Observation(step.id, step.probe, env, f"c{i}", Outcome.ALLOWED, at, latency_ms=50.0)
            for i, step in enumerate(spec.steps)
        )
        runs.append(Run(env, spec, EnvironmentFacts(env, tier), at, at, observations))
        for step in spec.steps:
            samples[(step.id, env, Outcome.ALLOWED)] = tuple(latencies(rng, kept, 50.0, 0.3))
    return spec, runs, LatencyHistory(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    n = args.samples
    s = DEFAULT_SETTINGS
    print(
        f"latency judge: {args.pairs} pairs per row, n = {n} per environment, threshold {s.threshold}x, "
        f"alpha {s.alpha}, {s.resamples} bootstrap resamples"
    )
    print(f"{'sigma':>6} {'false alarms':>13} {'detected 1.5x':>14}")
    verdicts = []
    for sigma in SIGMAS:
        false_alarms = mismatch_rate(rng, args.pairs, n, sigma, 1.0)
        detected = mismatch_rate(rng, args.pairs, n, sigma, SHIFT)
        print(f"{sigma:6.2f} {false_alarms:13.2%} {detected:14.1%}")
        verdicts.append(("false alarms", sigma, false_alarms <= FALSE_ALARM_TARGET))
        if sigma == DETECTION_SIGMA:
            verdicts.append(("detection", sigma, detected >= DETECTION_TARGET))
    for what, sigma, met in verdicts:
        target = f"<= {FALSE_ALARM_TARGET:.0%}" if what == "false alarms" else f">= {DETECTION_TARGET:.0%}"
        print(f"{what} at sigma {sigma}: [{'within' if met else 'OVER'} target {target}]")

    a, b = latencies(rng, n, 50.0, 0.4), latencies(rng, n, 75.0, 0.4)
    judge(a, b)  # the exact median distribution is computed once per sample count, then kept
    sort_cost = per_call(lambda: (sorted(a), sorted(b)))
    judge_cost = per_call(lambda: judge(a, b))
    textbook_cost = per_call(lambda: textbook_bootstrap(a, b, rng))
    print(f"cost per call at n = {n}: judge {judge_cost * 1e3:.2f} ms, sorting both {sort_cost * 1e6:.1f} us")
    print(f"judge / sorting both samples: {judge_cost / sort_cost:8.0f}")
    print(f"judge / textbook bootstrap alone: {judge_cost / textbook_cost:8.3f}")

    # What judging adds to comparing a scenario: 20 steps, two environments, a full history of each.
    spec, runs, history = scenario_with_history(rng, steps=20, kept=s.max_samples)
    plain_cost = per_call(lambda: compare(spec, runs))
    judged_cost = per_call(lambda: compare(spec, runs, history))
    print(
        f"compare, 20 steps x 2 environments: {plain_cost * 1e3:.1f} ms with one sample per step, "
        f"{judged_cost * 1e3:.1f} ms with {s.max_samples} per step and environment"
    )
    print(f"full history / one sample: {judged_cost / plain_cost:8.1f}")
    return 0 if all(met for _, _, met in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
