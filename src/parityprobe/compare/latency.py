"""The latency rule: does a step take noticeably longer in one environment than in the scenario's first?

Each environment's samples for a step are its earlier latencies of the same decision (the result store's
history, :class:`LatencyHistory`) followed by this run's: one per step, or one per repetition of a step with
``repeat: N``. The :mod:`~parityprobe.compare.latency_judge` weighs them against the first environment's:
each environment's own noise first, then the difference between them, and a ``latency_mismatch`` only when
it is beyond both and beyond the step's ``tolerance.latency`` ratio (1.2 by default). Every judged step gets
a :class:`~parityprobe.model.LatencyJudgement`, including "insufficient data", so reports can say what was
not judged and why.

Only steps on which both environments reached the same decision are judged: an allowed call and a denied
one take different paths, and their difference is an outcome finding already; an error has no latency worth
comparing (it is inconclusive).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.compare.latency_judge import (
    DEFAULT_SETTINGS,
    TIMES,
    LatencyVerdict,
    judge,
    milliseconds,
    ratio_text,
)
from parityprobe.model import Category, Finding, JudgeOutcome, LatencyJudgement, Observation, Outcome

HistoryKey = tuple[str, str, Outcome]  # step, environment, decision


@dataclass(frozen=True)
class LatencyHistory:
    """Earlier latencies of one scenario's steps, oldest first: (step, environment, decision) →
    milliseconds. Empty when no store was given."""

    samples: Mapping[HistoryKey, tuple[float, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def of(self, step: str, environment: str, outcome: Outcome) -> tuple[float, ...]:
        return self.samples.get((step, environment, outcome), ())


NO_HISTORY = LatencyHistory()


def samples_of(obs: Observation) -> tuple[float, ...]:
    """This run's latencies of a step: each repetition's, or its one measurement (none when unmeasured)."""
    if obs.latency_samples_ms:
        return obs.latency_samples_ms
    return (obs.latency_ms,) if obs.latency_ms is not None else ()


def judged(view: StepView, history: LatencyHistory) -> tuple[list[LatencyJudgement], list[Finding]]:
    """The judge's verdict on ``view``'s step for every environment after the first, and a finding for each
    mismatch."""
    pairs = view.pairs()
    if len(pairs) < 2 or not pairs[0][1].outcome.is_verdict:
        return [], []
    reference, first = pairs[0]
    settings = DEFAULT_SETTINGS
    if view.step.latency_threshold is not None:
        settings = replace(settings, threshold=view.step.latency_threshold)
    base = history.of(view.step.id, reference.name, first.outcome) + samples_of(first)
    judgements: list[LatencyJudgement] = []
    findings: list[Finding] = []
    for env, obs in pairs[1:]:
        if obs.outcome is not first.outcome:
            continue
        mine = history.of(view.step.id, env.name, obs.outcome) + samples_of(obs)
        seed = zlib.crc32(f"{view.scenario}/{view.step.id}/{env.name}".encode())
        verdict = judge(base, mine, settings, seed=seed, names=(reference.name, env.name))
        judgements.append(
            LatencyJudgement(
                step=view.step.id,
                reference=reference.name,
                environment=env.name,
                outcome=verdict.outcome,
                explanation=verdict.explanation,
                samples=MappingProxyType({reference.name: base, env.name: mine}),
                ratio=verdict.ratio,
            )
        )
        if verdict.outcome is JudgeOutcome.MISMATCH:
            findings.append(_finding(view, verdict))
    return judgements, findings


def _finding(view: StepView, verdict: LatencyVerdict) -> Finding:
    assert verdict.ratio is not None and verdict.slower is not None
    slower = max(verdict.ratio, 1 / verdict.ratio)
    faster = verdict.a.environment if verdict.slower == verdict.b.environment else verdict.b.environment
    return view.finding(
        Category.LATENCY_MISMATCH,
        severity.latency(slower),
        {
            side.environment: f"median {milliseconds(side.median_ms or 0.0)} (n={side.count})"
            for side in (verdict.a, verdict.b)
        },
        f"{view.step.probe}: {verdict.slower}'s median latency is {ratio_text(slower)}{TIMES} {faster}'s",
        f"{verdict.explanation}. {_EXPLANATION}",
        field="latency",
    )


_EXPLANATION = (
    "An identity control that answers much more slowly in one environment times out callers there that the "
    "other environment's tests never see time out, and hides capacity or network-path differences."
)
