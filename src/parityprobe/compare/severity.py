"""How severe a finding is. All grading rules live here, so they can be read (and changed) in one place.

- A call the scenario says must be refused, **allowed in production**: ``critical`` — a live hole.
- The same, allowed in a **non-production** environment: ``high`` — staging hides the failure (or the
  hole) that production has, so tests there prove nothing about this control.
- A call the scenario says must be allowed, refused in production: ``high`` (the workload is broken where
  it matters); refused elsewhere: ``medium``.
- Refused, but differently (denied where not-found is expected, or the reverse): ``low`` — the control
  holds, only what the refusal reveals differs.
- Environments deciding differently with no expectation to judge them: ``high`` when one allows what another
  refuses, ``low`` when both refuse differently.
- Grant differences (TTL, policies, identity) and grant expectations not met: ``medium``.
- No verdict (an error, or a step skipped because its inputs were missing): ``medium`` — never parity,
  never a deny.
- An undo that failed (something a probe created may remain): ``high`` in production, ``medium`` elsewhere.
- Environments that ran different texts of one scenario (the digests differ): ``medium``.
"""

from __future__ import annotations

from parityprobe.model import Outcome, Severity, Tier

_REFUSED = frozenset({Outcome.DENIED, Outcome.NOT_FOUND})

GRANT = Severity.MEDIUM
INCONCLUSIVE = Severity.MEDIUM


def expectation(expected: Outcome, observed: Outcome, tier: Tier) -> Severity:
    """Severity of an environment deciding ``observed`` where the scenario expects ``expected``."""
    production = tier is Tier.PRODUCTION
    if expected in _REFUSED and observed is Outcome.ALLOWED:
        return Severity.CRITICAL if production else Severity.HIGH
    if expected is Outcome.ALLOWED and observed in _REFUSED:
        return Severity.HIGH if production else Severity.MEDIUM
    return Severity.LOW


def mismatch(outcomes: set[Outcome]) -> Severity:
    """Severity of environments that decided differently, with no expectation to say which is right."""
    if Outcome.ALLOWED in outcomes and outcomes & _REFUSED:
        return Severity.HIGH
    return Severity.LOW


def cleanup_failed(tier: Tier) -> Severity:
    """Severity of an undo that failed: something the probe created may still exist."""
    return Severity.HIGH if tier is Tier.PRODUCTION else Severity.MEDIUM


# Runs of one scenario id whose texts differ: the comparison may pair steps that no longer mean the same.
DRIFT = Severity.MEDIUM
