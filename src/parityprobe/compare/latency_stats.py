"""The statistics behind the latency judge (:mod:`parityprobe.compare.latency_judge`), in pure Python.

Latencies are skewed (a long right tail, the odd retry or pause ten times the median), so everything here
works on medians and ranks, never on means and standard deviations:

- :func:`mann_whitney_p`: the two-sided Mann-Whitney U test, normal approximation with tie correction and
  continuity correction. Rank-based, so an outlier counts as "the largest", not as its value.
- :func:`bootstrap_ratio_ci`: a percentile bootstrap confidence interval on the ratio of two medians,
  drawn from a seeded :class:`random.Random` so that the same samples always give the same interval.
- :func:`noise_floor`: how much one environment differs from itself: the typical relative difference
  between the medians of two halves of its own samples, each halving an A/A comparison.

Medians are clamped to :data:`RESOLUTION_MS` before any ratio is taken: a clock or a store with
millisecond resolution records 0 for a loopback call, and 0 ms against 0.4 ms is not an infinite ratio.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Sequence

# One microsecond: below what a latency measurement can tell apart, and a floor that keeps ratios finite.
RESOLUTION_MS = 0.001


def checked(samples: Sequence[float], name: str) -> tuple[float, ...]:
    """The samples as floats, or ValueError naming the environment when one is not a latency (NaN,
    infinite, negative or not a number)."""
    values = []
    for index, sample in enumerate(samples):
        if isinstance(sample, bool) or not isinstance(sample, int | float):
            raise ValueError(f"{name}: latency sample {index} is not a number: {sample!r}")
        value = float(sample)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: latency sample {index} is {value!r} ms; latencies are finite and >= 0")
        values.append(value)
    return tuple(values)


def median_of_sorted(values: Sequence[float]) -> float:
    """The median of values already in ascending order (the mean of the two middle ones for an even count)."""
    n = len(values)
    middle = n // 2
    return values[middle] if n % 2 else (values[middle - 1] + values[middle]) / 2


def median(values: Sequence[float]) -> float:
    """The median of values in any order."""
    return median_of_sorted(sorted(values))


def log_ratio(numerator_ms: float, denominator_ms: float) -> float:
    """``ln(numerator / denominator)`` of two medians, each clamped to :data:`RESOLUTION_MS`."""
    return math.log(max(numerator_ms, RESOLUTION_MS) / max(denominator_ms, RESOLUTION_MS))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test that a and b come from the same distribution.

    Normal approximation with the tie correction of the variance and a continuity correction; accurate
    enough from about 8 samples per side, which the judge's minimum sample size ensures. When every value
    is the same (the variance is 0) there is no evidence of a difference: p = 1.
    """
    n_a, n_b = len(a), len(b)
    if n_a == 0 or n_b == 0:
        raise ValueError("the Mann-Whitney test needs samples on both sides")
    pooled = sorted([(v, 1) for v in a] + [(v, 0) for v in b])
    total = n_a + n_b
    rank_sum_a = 0.0
    ties = 0.0  # sum of t^3 - t over groups of equal values
    start = 0
    while start < total:
        value, end, from_a = pooled[start][0], start + 1, pooled[start][1]
        while end < total and pooled[end][0] == value:
            from_a += pooled[end][1]
            end += 1
        size = end - start
        rank_sum_a += from_a * (start + end + 1) / 2  # tied values share their mean (1-based) rank
        ties += size**3 - size
        start = end
    u_a = rank_sum_a - n_a * (n_a + 1) / 2
    mean = n_a * n_b / 2
    variance = n_a * n_b / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return 1.0
    z = max(abs(u_a - mean) - 0.5, 0.0) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))


@functools.lru_cache(maxsize=64)
def median_distribution(count: int) -> tuple[tuple[tuple[int, int], float], ...]:
    """The exact bootstrap distribution of the median of ``count`` sorted values, as index pairs.

    A resample draws ``count`` indices uniformly with replacement; its median is the value at the middle
    drawn index (odd count) or the mean of the values at the two middle ones (even count). Which indices
    those are has a closed form: the k-th smallest of the drawn indices is at most j exactly when at least
    k draws fall in 0..j, a binomial tail. Returns ``((i, j), probability)`` (i == j for an odd count),
    pairs of negligible probability left out; the probabilities sum to 1 within rounding. It depends on the
    count alone, so it is kept for the counts seen last.
    """
    if count < 1:
        raise ValueError("a median needs at least one value")
    n = count
    k = (n + 1) // 2 if n % 2 else n // 2  # 1-based rank of the (lower) middle draw
    cdf = [1.0 if j == n - 1 else _binomial_at_least(k, n, (j + 1) / n) for j in range(n)]
    pairs: list[tuple[tuple[int, int], float]] = []
    for i in range(n):
        p_i = cdf[i] - (cdf[i - 1] if i else 0.0)
        if p_i <= _NEGLIGIBLE:
            continue
        if n % 2:
            pairs.append(((i, i), p_i))
            continue
        # The next draw is above i only when exactly k draws fell in 0..i (one of them on i); the other
        # n - k draws are then uniform over i+1..n-1, and the smallest of them is the upper middle.
        above = 0.0
        if i < n - 1:
            p = (i + 1) / n
            exactly_k = math.exp(_log_binomial_pmf(k, n, p))
            above = min(p_i, exactly_k * (1 - (i / (i + 1)) ** k))
        pairs.append(((i, i), p_i - above))
        rest, width = n - k, n - 1 - i
        for t in range(width):
            share = ((width - t) / width) ** rest - ((width - t - 1) / width) ** rest
            if above * share <= _NEGLIGIBLE:
                break  # the smallest of the other draws is ever less likely to be further up
            pairs.append(((i, i + 1 + t), above * share))
    return tuple(pairs)


_NEGLIGIBLE = 1e-12


def _log_binomial_pmf(c: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(c + 1)
        - math.lgamma(n - c + 1)
        + c * math.log(p)
        + (n - c) * math.log1p(-p)
    )


def _binomial_at_least(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) >= k) for 0 < p < 1. Sums from k away from the mode (the shorter tail, through the
    complement when k is below the mean), where the terms only shrink: it stops once they no longer count,
    and no term underflows before it matters."""
    if k <= n * p:
        return max(0.0, 1.0 - _tail_sum(range(k - 1, -1, -1), n, p))
    return min(1.0, _tail_sum(range(k, n + 1), n, p))


def _tail_sum(counts: range, n: int, p: float) -> float:
    total = 0.0
    for c in counts:
        term = math.exp(_log_binomial_pmf(c, n, p))
        total += term
        if term < 1e-18:
            break
    return total


def bootstrap_medians(values: Sequence[float], resamples: int, rng: random.Random) -> list[float]:
    """The medians of ``resamples`` bootstrap resamples of values: the same distribution as resampling
    and sorting each time, drawn from :func:`median_distribution` in one call (the cost does not grow
    with the sample count once the distribution is known)."""
    return _draw_medians(values, resamples, rng, lambda m: m)


def bootstrap_ratio_ci(
    a: Sequence[float], b: Sequence[float], confidence: float, resamples: int, rng: random.Random
) -> tuple[float, float]:
    """Percentile bootstrap interval for ``median(b) / median(a)`` at the given confidence (0.95 = 95 %).

    Each side is resampled on its own (the environments are independent); resample i of a is paired with
    resample i of b. Medians are clamped to :data:`RESOLUTION_MS` like every ratio here. Deterministic for
    a given state of rng.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")

    def log(m: float) -> float:
        return math.log(max(m, RESOLUTION_MS))

    # In logs, a ratio is a difference: one logarithm per possible median instead of one per resample.
    logs_a = _draw_medians(a, resamples, rng, log)
    logs_b = _draw_medians(b, resamples, rng, log)
    differences = sorted([lb - la for la, lb in zip(logs_a, logs_b, strict=True)])
    tail = (1 - confidence) / 2
    return math.exp(_quantile(differences, tail)), math.exp(_quantile(differences, 1 - tail))


def _draw_medians(
    values: Sequence[float], resamples: int, rng: random.Random, transform: Callable[[float], float]
) -> list[float]:
    ordered = sorted(values)
    pairs, cumulative = _cumulative(len(ordered))
    medians = [transform((ordered[i] + ordered[j]) / 2) for i, j in pairs]
    return rng.choices(medians, cum_weights=cumulative, k=resamples)


@functools.lru_cache(maxsize=64)
def _cumulative(count: int) -> tuple[tuple[tuple[int, int], ...], tuple[float, ...]]:
    distribution = median_distribution(count)
    return tuple(pair for pair, _ in distribution), tuple(itertools.accumulate(p for _, p in distribution))


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks of ascending values."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def halvings(count: int, extra: int, rng: random.Random) -> list[tuple[list[int], list[int]]]:
    """Ways to split ``count`` samples (oldest first) into two halves of equal size, as index lists:
    alternate samples, earlier against later, then ``extra`` seeded random halvings. With an odd count
    the middle (or last) sample sits out."""
    half = count // 2
    indices = list(range(count))
    splits = [
        (indices[0 : 2 * half : 2], indices[1 : 2 * half : 2]),
        (indices[:half], indices[count - half :]),
    ]
    for _ in range(extra):
        keys = [
            rng.random() for _ in indices
        ]  # a random order by sorting on random keys: cheaper than shuffle
        drawn = sorted(indices, key=keys.__getitem__)
        splits.append((drawn[:half], drawn[half : 2 * half]))
    return splits


def noise_floor(values: Sequence[float], splits: int, rng: random.Random) -> float:
    """An environment's own noise: the median, over ``splits`` halvings of its samples (see
    :func:`halvings`), of ``|ln(median(half 1) / median(half 2))|``.

    Each halving is an A/A comparison: both halves come from the same environment, so the difference is
    noise. One halving alone is itself a noisy estimate (a lucky split says "no noise"), which is why the
    typical difference over several is taken. Returns a log ratio: 0.058 means the halves typically
    differ by about 6 %. Needs at least 2 samples.
    """
    if len(values) < 2:
        raise ValueError("a noise floor needs at least 2 samples")
    differences = [
        abs(log_ratio(median([values[i] for i in first]), median([values[i] for i in second])))
        for first, second in halvings(len(values), max(splits - 2, 0), rng)
    ]
    return median(differences)
