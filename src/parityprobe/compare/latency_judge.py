"""The latency judge: does one step take noticeably longer in one environment than in another?

Given each environment's latency samples for one step (milliseconds, oldest first: the store's history, or
the repetitions of a step with ``repeat: N``), :func:`judge` reports a ``latency_mismatch`` only when all of
these hold:

1. both environments have at least ``min_samples`` samples — below that the verdict is
   :attr:`JudgeOutcome.INSUFFICIENT_DATA`, stated with the counts, never "no difference";
2. the distributions differ: two-sided Mann-Whitney p-value below ``alpha``;
3. the ratio of the medians is at least ``threshold`` (or at most its inverse): a real but small
   difference is not worth an SRE's attention;
4. the difference exceeds each environment's own noise floor: how much two halves of its own samples
   typically differ (:func:`~parityprobe.compare.latency_stats.noise_floor`). An environment whose
   latency wanders by 40 % on its own cannot show a 30 % difference against another.

The bootstrap interval on the ratio of medians is reported with the verdict so the reader sees how sure
the ratio is. Everything is deterministic for a given seed. The statistics live in
:mod:`parityprobe.compare.latency_stats`. Measured rates (``python bench/latency_judge.py``): on identical
log-normal distributions at most 1 % false alarms; a 1.5x shift detected at n = 30 per environment at
least 95 % of the time when the latencies' log-normal sigma is about 0.3 (noisier latencies need more
samples: no test tells 1.5x apart at n = 30 and sigma 0.6 with 1 % false alarms). The noise floors look at
halvings of each environment's samples, so a level shift inside one environment's history shows in its
earlier/later halving but is outvoted by the random halvings: the floor measures scatter, not drift.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from parityprobe.compare.latency_stats import (
    bootstrap_ratio_ci,
    checked,
    log_ratio,
    mann_whitney_p,
    median,
    noise_floor,
)
from parityprobe.model import JudgeOutcome


@dataclass(frozen=True)
class JudgeSettings:
    """How demanding the judge is. The defaults meet the rates in the module docstring."""

    min_samples: int = 10  # per environment; fewer is "insufficient data"
    threshold: float = 1.2  # the smallest ratio of medians worth reporting
    # The rank test's significance level. With the threshold, chosen on bench/latency_judge.py's simulation:
    # false alarms stay below 1 % with margin at any sigma (at 0.01 they reach it), and a 1.5x shift at
    # n = 30, sigma 0.3 is still found at least 95 % of the time.
    alpha: float = 0.005
    confidence: float = 0.95  # of the bootstrap interval on the ratio
    resamples: int = 1000  # bootstrap resamples
    splits: int = 25  # halvings per environment for its noise floor
    # The most recent samples kept per environment: older history says less about now, and costs.
    max_samples: int = 200

    def __post_init__(self) -> None:
        if self.min_samples < 4:
            raise ValueError(
                f"min_samples must be at least 4 (a noise floor needs halves), not {self.min_samples}"
            )
        if not self.threshold >= 1:
            raise ValueError(f"threshold is a ratio of medians, at least 1, not {self.threshold!r}")
        if not 0 < self.alpha < 1 or not 0 < self.confidence < 1:
            raise ValueError("alpha and confidence must be between 0 and 1")
        if self.resamples < 100 or self.splits < 2 or self.max_samples < self.min_samples:
            raise ValueError("resamples >= 100, splits >= 2 and max_samples >= min_samples are needed")


@dataclass(frozen=True)
class EnvironmentLatency:
    """One environment's side of a verdict. ``noise`` is relative (0.06 = its halves typically differ by
    6 %); it and ``median_ms`` are None when there are too few samples to say."""

    environment: str
    count: int
    median_ms: float | None
    noise: float | None


@dataclass(frozen=True)
class LatencyVerdict:
    """The judge's answer for one step, environment a against environment b.

    ``ratio`` is ``median_b / median_a`` (2.0: b takes twice as long); ``ci`` its bootstrap interval and
    ``p_value`` the rank test's, both None for insufficient data. ``explanation`` is one sentence for the
    report, with figures rounded for reading.
    """

    outcome: JudgeOutcome
    a: EnvironmentLatency
    b: EnvironmentLatency
    ratio: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    explanation: str
    settings: JudgeSettings = field(repr=False)

    @property
    def slower(self) -> str | None:
        """The environment that is slower, when the verdict is a mismatch."""
        if self.outcome is not JudgeOutcome.MISMATCH or self.ratio is None:
            return None
        return self.b.environment if self.ratio > 1 else self.a.environment


DEFAULT_SETTINGS = JudgeSettings()
TIMES = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"


def judge(
    a: Sequence[float],
    b: Sequence[float],
    settings: JudgeSettings = DEFAULT_SETTINGS,
    seed: int = 0,
    names: tuple[str, str] = ("a", "b"),
) -> LatencyVerdict:
    """Judge b's latencies against a's (milliseconds, oldest first). ValueError for a sample that is not a
    latency (NaN, infinite, negative). The same inputs and seed always give the same verdict."""
    name_a, name_b = names
    values_a = checked(a, name_a)[-settings.max_samples :]
    values_b = checked(b, name_b)[-settings.max_samples :]
    if min(len(values_a), len(values_b)) < settings.min_samples:
        return _insufficient(values_a, values_b, settings, names)

    rng = random.Random(seed)
    median_a, median_b = median(values_a), median(values_b)
    floor_a = noise_floor(values_a, settings.splits, rng)
    floor_b = noise_floor(values_b, settings.splits, rng)
    side_a = EnvironmentLatency(name_a, len(values_a), median_a, math.expm1(floor_a))
    side_b = EnvironmentLatency(name_b, len(values_b), median_b, math.expm1(floor_b))
    distance = log_ratio(median_b, median_a)
    ratio = math.exp(distance)
    p_value = mann_whitney_p(values_a, values_b)
    ci = bootstrap_ratio_ci(values_a, values_b, settings.confidence, settings.resamples, rng)

    # Both floors are log ratios, like the distance: "beyond the noise" compares like with like.
    noisier = [side for side, floor in ((side_a, floor_a), (side_b, floor_b)) if abs(distance) <= floor]
    held_back = []
    if p_value >= settings.alpha:
        held_back.append(f"not significant (needs p < {settings.alpha:g})")
    if abs(distance) < math.log(settings.threshold):
        held_back.append(f"within the {ratio_text(settings.threshold)}{TIMES} threshold")
    if noisier:
        held_back.append("within " + " and ".join(f"{s.environment}'s" for s in noisier) + " own noise")
    outcome = JudgeOutcome.NO_DIFFERENCE if held_back else JudgeOutcome.MISMATCH
    figures = _figures(side_a, side_b, ratio, ci, p_value, settings)
    if held_back:
        explanation = (
            f"{figures}: no latency mismatch, " + "; ".join(held_back) + f" ({_noises(side_a, side_b)})"
        )
    else:
        explanation = (
            f"{figures}, beyond both environments' own noise ({_noises(side_a, side_b)}) "
            f"and the {ratio_text(settings.threshold)}{TIMES} threshold"
        )
    return LatencyVerdict(outcome, side_a, side_b, ratio, ci, p_value, explanation, settings)


def _insufficient(
    values_a: Sequence[float], values_b: Sequence[float], settings: JudgeSettings, names: tuple[str, str]
) -> LatencyVerdict:
    sides = [
        EnvironmentLatency(name, len(values), median(values) if values else None, None)
        for name, values in zip(names, (values_a, values_b), strict=True)
    ]
    a, b = sides
    ratio = None
    if a.median_ms is not None and b.median_ms is not None:
        ratio = math.exp(log_ratio(b.median_ms, a.median_ms))
    explanation = (
        f"insufficient data: {a.environment} has {_count(a.count)} and {b.environment} {_count(b.count)}; "
        f"judging latency needs at least {settings.min_samples} in each"
    )
    return LatencyVerdict(JudgeOutcome.INSUFFICIENT_DATA, a, b, ratio, None, None, explanation, settings)


def _figures(
    a: EnvironmentLatency,
    b: EnvironmentLatency,
    ratio: float,
    ci: tuple[float, float],
    p_value: float,
    settings: JudgeSettings,
) -> str:
    """``production's median 210 ms is 2.1x staging's 100 ms (95% CI 1.8-2.5x, p < 0.001)`` (with the
    multiplication sign and an en dash): the slower
    environment first, so the ratio reads as "times as long"."""
    slow, fast, shown, low, high = b, a, ratio, ci[0], ci[1]
    if ratio < 1:
        slow, fast, shown, low, high = a, b, 1 / ratio, 1 / ci[1], 1 / ci[0]
    assert slow.median_ms is not None and fast.median_ms is not None
    level = f"{settings.confidence * 100:g}%"
    return (
        f"{slow.environment}'s median {milliseconds(slow.median_ms)} is {ratio_text(shown)}{TIMES} "
        f"{fast.environment}'s {milliseconds(fast.median_ms)} "
        f"({level} CI {ratio_text(low)}{DASH}{ratio_text(high)}{TIMES}, p {_p_clause(p_value)})"
    )


def _noises(a: EnvironmentLatency, b: EnvironmentLatency) -> str:
    return ", ".join(f"{s.environment} ±{_percent(s.noise or 0.0)}" for s in (a, b))


def _count(count: int) -> str:
    return f"{count} sample" + ("" if count == 1 else "s")


def milliseconds(value: float) -> str:
    """``210 ms``, ``52.3 ms``, ``0.412 ms``: three significant figures, no exponent."""
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.3g} ms" if value >= 0.001 else "<0.001 ms"


def ratio_text(value: float) -> str:
    """``2.1``, ``1.04``, ``12``."""
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _percent(relative: float) -> str:
    return "<1 %" if relative < 0.01 else f"{relative * 100:.0f} %"


def _p(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"{p_value:.2g}" if p_value < 0.01 else f"{p_value:.2f}"


def _p_clause(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"= {_p(p_value)}"
