"""The latency judge: its statistics checked against exact answers, its verdicts against simulated
latencies (log-normal, with outliers, fixed seeds), and its refusals of what is not a latency."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter

import pytest

from parityprobe.compare.latency_judge import DASH, TIMES, JudgeOutcome, JudgeSettings, judge
from parityprobe.compare.latency_stats import (
    bootstrap_medians,
    mann_whitney_p,
    median_distribution,
    noise_floor,
)

NAMES = ("staging", "production")


def latencies(rng: random.Random, n: int, median_ms: float, sigma: float) -> list[float]:
    """Log-normal latencies around median_ms; one in 50 is a retry or pause 3 to 20 times as long."""
    values = []
    for _ in range(n):
        value = median_ms * math.exp(rng.gauss(0.0, sigma))
        if rng.random() < 0.02:
            value *= rng.uniform(3.0, 20.0)
        values.append(value)
    return values


# --- the statistics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6])
def test_the_bootstrap_median_distribution_is_the_one_resampling_gives(count: int) -> None:
    exact: Counter[tuple[int, int]] = Counter()
    for draw in itertools.product(range(count), repeat=count):  # every possible resample, equally likely
        ordered, middle = sorted(draw), count // 2
        exact[
            (ordered[middle], ordered[middle]) if count % 2 else (ordered[middle - 1], ordered[middle])
        ] += 1
    computed = dict(median_distribution(count))
    for pair in set(exact) | set(computed):
        assert computed.get(pair, 0.0) == pytest.approx(exact[pair] / count**count, abs=1e-12)


def test_bootstrap_medians_follow_resampling_for_a_realistic_sample() -> None:
    values = latencies(random.Random(3), 30, 50.0, 0.4)
    fast = sorted(bootstrap_medians(values, 20_000, random.Random(1)))
    rng = random.Random(2)
    naive = sorted(
        sum(sorted(rng.choices(values, k=30))[14:16]) / 2 for _ in range(20_000)
    )  # resample and sort, the textbook way
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        index = int(q * 19_999)
        assert fast[index] == pytest.approx(naive[index], rel=0.03)


def test_mann_whitney_matches_the_normal_approximation_by_hand() -> None:
    # U = 0, mean 4.5, variance 3 * 3 * 7 / 12 = 5.25; z = (4.5 - 0.5) / sqrt(5.25)
    expected = math.erfc((4.0 / math.sqrt(5.25)) / math.sqrt(2))
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(expected)
    assert mann_whitney_p([4, 5, 6], [1, 2, 3]) == pytest.approx(expected)


def test_mann_whitney_corrects_the_variance_for_ties() -> None:
    # Ranks: the three 2s share rank 3; U_a = 1 + 3 + 3 - 6 = 1. Ties: one group of 3 -> 24.
    variance = 3 * 3 / 12 * (7 - 24 / 30)
    expected = math.erfc(((4.5 - 1) - 0.5) / math.sqrt(variance) / math.sqrt(2))
    assert mann_whitney_p([1, 2, 2], [2, 5, 6]) == pytest.approx(expected)
    assert mann_whitney_p([7.0] * 12, [7.0] * 15) == 1.0  # nothing but ties: no evidence, no division by 0


def test_a_noise_floor_is_zero_for_a_steady_environment_and_large_for_a_wandering_one() -> None:
    assert noise_floor([20.0] * 16, 25, random.Random(0)) == 0.0
    bimodal = [60.0, 200.0] * 15  # two halves always differ in which mode holds the majority
    assert noise_floor(bimodal, 25, random.Random(0)) == pytest.approx(math.log(200 / 60))


# --- the verdicts on simulated latencies ------------------------------------------------------------


def test_identical_distributions_raise_at_most_one_percent_false_alarms() -> None:
    rng = random.Random(20261130)
    alarms = pairs = 0
    for sigma in (0.3, 0.45, 0.6):
        for seed in range(600):
            a, b = latencies(rng, 30, 50.0, sigma), latencies(rng, 30, 50.0, sigma)
            alarms += judge(a, b, seed=seed).outcome is JudgeOutcome.MISMATCH
            pairs += 1
    assert alarms / pairs <= 0.01, f"{alarms} false alarms in {pairs} pairs"


def test_a_one_and_a_half_times_slower_median_is_found_at_thirty_samples_each() -> None:
    rng = random.Random(7)
    found = 0
    for seed in range(600):
        verdict = judge(latencies(rng, 30, 50.0, 0.3), latencies(rng, 30, 75.0, 0.3), seed=seed, names=NAMES)
        found += verdict.outcome is JudgeOutcome.MISMATCH and verdict.slower == "production"
    assert found / 600 >= 0.95, f"found {found} of 600"


def test_a_mismatch_names_the_slower_environment_with_its_figures() -> None:
    rng = random.Random(11)
    verdict = judge(latencies(rng, 40, 100.0, 0.2), latencies(rng, 40, 210.0, 0.2), names=NAMES)
    assert verdict.outcome is JudgeOutcome.MISMATCH and verdict.slower == "production"
    assert verdict.ratio is not None and verdict.ci is not None and verdict.p_value is not None
    assert verdict.ci[0] < verdict.ratio < verdict.ci[1] and verdict.p_value < 0.001
    assert verdict.b.median_ms is not None and verdict.a.median_ms is not None
    assert verdict.ratio == pytest.approx(verdict.b.median_ms / verdict.a.median_ms)
    x, dash = re.escape(TIMES), re.escape(DASH)
    pattern = (
        rf"production's median \d+ ms is [\d.]+{x} staging's [\d.]+ ms \(95% CI [\d.]+{dash}[\d.]+{x}, "
        rf"p < 0\.001\), beyond both environments' own noise \(staging ±\d+ %, production ±\d+ %\) "
        rf"and the 1\.2{x} threshold"
    )
    assert re.fullmatch(pattern, verdict.explanation), verdict.explanation

    reversed_ = judge(latencies(rng, 40, 210.0, 0.2), latencies(rng, 40, 100.0, 0.2), names=NAMES)
    assert reversed_.slower == "staging" and reversed_.ratio is not None and reversed_.ratio < 1
    assert reversed_.explanation.startswith("staging's median")


def test_the_same_samples_and_seed_give_the_same_verdict() -> None:
    rng = random.Random(5)
    a, b = latencies(rng, 30, 50.0, 0.4), latencies(rng, 30, 60.0, 0.4)
    assert judge(a, b, seed=3) == judge(list(a), list(b), seed=3)


def test_a_small_but_certain_difference_stays_below_the_threshold() -> None:
    rng = random.Random(9)
    a, b = latencies(rng, 60, 50.0, 0.05), latencies(rng, 60, 55.0, 0.05)
    verdict = judge(a, b, names=NAMES)
    assert verdict.outcome is JudgeOutcome.NO_DIFFERENCE and verdict.p_value is not None
    assert verdict.p_value < 0.001 and f"within the 1.2{TIMES} threshold" in verdict.explanation
    assert judge(a, b, JudgeSettings(threshold=1.05)).outcome is JudgeOutcome.MISMATCH


def test_a_difference_within_an_environments_own_noise_is_not_a_mismatch() -> None:
    rng = random.Random(4)
    steady = latencies(rng, 30, 50.0, 0.05)
    wandering = [60.0, 200.0] * 15  # its own halves differ 3.3 times; its median (130 ms) is 2.6 times 50
    verdict = judge(steady, wandering, names=NAMES)
    assert verdict.outcome is JudgeOutcome.NO_DIFFERENCE
    assert verdict.p_value is not None and verdict.p_value < 0.001 and verdict.ratio is not None
    assert verdict.ratio > 2.5 and verdict.b.noise is not None and verdict.b.noise > 2
    assert "within production's own noise" in verdict.explanation


def test_only_the_most_recent_samples_count() -> None:
    rng = random.Random(6)
    history = latencies(rng, 300, 500.0, 0.3) + latencies(rng, 200, 50.0, 0.3)  # it got faster long ago
    verdict = judge(latencies(rng, 200, 50.0, 0.3), history)
    assert verdict.outcome is JudgeOutcome.NO_DIFFERENCE and verdict.b.count == 200


# --- small samples and bad input --------------------------------------------------------------------


def test_below_the_minimum_sample_size_the_verdict_is_insufficient_data_with_the_counts() -> None:
    rng = random.Random(1)
    verdict = judge(latencies(rng, 9, 50.0, 0.3), latencies(rng, 30, 500.0, 0.3), names=NAMES)
    assert verdict.outcome is JudgeOutcome.INSUFFICIENT_DATA and verdict.slower is None
    assert (verdict.a.count, verdict.b.count) == (9, 30)
    assert verdict.ci is None and verdict.p_value is None and verdict.a.noise is None
    assert verdict.explanation == (
        "insufficient data: staging has 9 samples and production 30 samples; "
        "judging latency needs at least 10 in each"
    )
    empty = judge([], [], names=NAMES)
    assert empty.outcome is JudgeOutcome.INSUFFICIENT_DATA and empty.ratio is None
    assert "staging has 0 samples" in empty.explanation
    at_minimum = judge(latencies(rng, 10, 50.0, 0.3), latencies(rng, 10, 50.0, 0.3))
    assert at_minimum.outcome is not JudgeOutcome.INSUFFICIENT_DATA
    assert judge([1.0] * 5, [1.0] * 5, JudgeSettings(min_samples=5)).outcome is JudgeOutcome.NO_DIFFERENCE


@pytest.mark.parametrize("value", [0.0, 12.0])
def test_identical_constant_samples_are_no_difference(value: float) -> None:
    verdict = judge([value] * 20, [value] * 20, names=NAMES)
    assert verdict.outcome is JudgeOutcome.NO_DIFFERENCE
    assert (verdict.ratio, verdict.ci, verdict.p_value) == (1.0, (1.0, 1.0), 1.0)
    assert (verdict.a.noise, verdict.b.noise) == (0.0, 0.0)


def test_zero_latencies_against_measurable_ones_give_a_finite_ratio() -> None:
    verdict = judge([0.0] * 20, [0.5] * 20, names=NAMES)
    assert verdict.outcome is JudgeOutcome.MISMATCH and verdict.ratio is not None
    assert math.isfinite(verdict.ratio) and "<0.001 ms" in verdict.explanation


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, True, "12"])
def test_what_is_not_a_latency_is_refused(bad: object) -> None:
    samples = [10.0] * 20
    with pytest.raises(ValueError, match=r"production: latency sample 3"):
        judge(samples, [*samples[:3], bad, *samples[4:]], names=NAMES)  # type: ignore[list-item]


@pytest.mark.parametrize(
    "settings",
    [
        {"min_samples": 3},
        {"threshold": 0.9},
        {"threshold": math.nan},
        {"alpha": 0.0},
        {"confidence": 1.0},
        {"resamples": 10},
        {"splits": 1},
        {"max_samples": 5},
    ],
)
def test_settings_that_make_no_sense_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JudgeSettings(**settings)  # type: ignore[arg-type]
