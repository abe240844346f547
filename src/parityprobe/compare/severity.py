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
- Configuration drift: a policy rule (or a whole policy) that differs, one environment allowing what another
  refuses: ``high``, as such a decision difference is; an audit device or audited header production lacks
  (its evidence is missing where it matters): ``high``; any other field: ``medium``.
- A live decision that disagrees with the declared one: wider than declared (access nobody sees in the
  policies) ``high`` in production, ``medium`` elsewhere; narrower than declared: ``low``.
- An expected SIEM event missing, or one that must be absent present: ``high`` in production, ``medium``
  elsewhere; SIEM receipt slower beyond the tolerance: ``medium``.
- A step's median latency beyond both environments' own noise and the step's threshold (the latency judge):
  ``medium`` when one environment takes three times as long or more (callers' timeouts meet it), else ``low``.
- A plane's server versions that differ between environments: ``low``; ``medium`` when a behavioural finding
  of the scenario concerns a step on that plane (the version may explain it).
- A cross-check the target could not answer (no policy simulator there; an inconclusive finding): ``low`` —
  the live decision was judged, only its comparison with the declared one is missing; never agreement.
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


def config_drift(policy_rule: bool, missing_in_production: bool) -> Severity:
    """Severity of a configuration field that differs (see the module docstring)."""
    if policy_rule:
        return mismatch({Outcome.ALLOWED, Outcome.DENIED})
    return Severity.HIGH if missing_in_production else DRIFT


def evidence_gap(tier: Tier) -> Severity:
    """An expected SIEM event missing (or a forbidden one present): blind detection in production is
    ``high``; elsewhere ``medium`` (the detection cannot be tested there)."""
    return Severity.HIGH if tier is Tier.PRODUCTION else Severity.MEDIUM


def server_version(explains: bool) -> Severity:
    """Severity of a plane's server versions that differ: ``medium`` when they may explain a behavioural
    finding on that plane, else ``low``."""
    return Severity.MEDIUM if explains else Severity.LOW


def latency(ratio: float) -> Severity:
    """Severity of a latency mismatch; ``ratio`` is the slower environment's median over the faster's."""
    return Severity.MEDIUM if ratio >= 3 else Severity.LOW


# A cross-check the target could not answer: the step's own decision was judged, its declared twin was not.
CROSSCHECK_SKIPPED = Severity.LOW


def declared_mismatch(wider: bool, tier: Tier) -> Severity:
    """Severity of a live decision wider (or narrower) than the target declares."""
    if wider:
        return Severity.HIGH if tier is Tier.PRODUCTION else Severity.MEDIUM
    return Severity.LOW
