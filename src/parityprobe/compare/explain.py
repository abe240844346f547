"""Linking findings across a report: a behavioural finding names the configuration drift that may explain
it ("staging's policy payments-app adds update on secret/data/payments/*"), wherever the drift was found.

A ``vault.config`` snapshot usually runs in a scenario of its own, so this works on every comparison of a
report at once, after each was compared on its own. Each finding is linked through what its step was aimed
at (the observation's ``target``, a Vault path) and the identity it acted as, normalised with each
environment's vars exactly as the snapshot was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from parityprobe.compare import drift
from parityprobe.compare.grants import normalise
from parityprobe.model import Category, Comparison, Finding

_LINKED = drift.BEHAVIOURAL | {Category.EVIDENCE_GAP}


def explain(comparisons: Sequence[Comparison]) -> tuple[Comparison, ...]:
    """The comparisons, with each behavioural finding's explanation naming the drift that may explain it."""
    found = [f for c in comparisons for f in c.findings if f.category is Category.CONFIG_DRIFT and f.step]
    if not found:
        return tuple(comparisons)
    return tuple(replace(c, findings=tuple(_explained(f, c, found) for f in c.findings)) for c in comparisons)


def _explained(finding: Finding, comparison: Comparison, found: list[Finding]) -> Finding:
    if finding.category not in _LINKED or finding.step is None:
        return finding
    # Drift between the same environments only: a difference between two others explains nothing here.
    names = set(finding.environments)
    relevant = [f for f in found if names <= set(f.environments)]
    target, identity = _aim(comparison, finding.step)
    return drift.explained(finding, relevant, target=target, identity=identity)


def _aim(comparison: Comparison, step: str) -> tuple[str | None, str | None]:
    """The step's target and identity as the first environment that has them names them (vars replaced)."""
    target = identity = None
    for run in comparison.runs:
        obs = run.observation(step)
        if obs is None:
            continue
        target = target or normalise(obs.target, run.env.vars)
        identity = identity or normalise(obs.grant.identity, run.env.vars)
    return target, identity
