"""The live-versus-declared rule: a step with ``crosscheck`` also asked the target what it declares for the
same action (Vault's ``sys/capabilities-self``, IAM's policy simulator); a live decision that disagrees is a
finding of its own.

It is judged per environment, not between them: even where every environment agrees, policy tooling that
answers from the declared capabilities (a review, a dashboard, an access request) is wrong there.

A target that cannot answer the question at all (moto has no policy simulator; a caller may not ask it) has
its observation's ``declared`` SKIPPED and the reason in its ``declared_reason`` (:func:`skipped_note`):
an inconclusive finding of low severity, never agreement, never a mismatch — the
other environments' agreement says nothing about this one. A question that failed (ERROR) is no finding:
the step's own decision stands.
"""

from __future__ import annotations

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.model import Category, Finding, Outcome

_SKIPPED = "cross-check skipped: "


def skipped_note(kind: str, reason: str | None) -> str:
    """``simulator cross-check skipped: <reason>``: what an observation says of a cross-check its target could
    not answer."""
    return f"{kind} {_SKIPPED}{reason or 'no reason given'}"


def _values(view: StepView) -> dict[str, str]:
    return {
        e.name: f"{o.describe()}; declared {o.declared.value if o.declared else '-'}" for e, o in view.pairs()
    }


def unanswered(view: StepView) -> list[Finding]:
    """One inconclusive finding when any environment could not answer the step's cross-check."""
    skipped = [(env, obs) for env, obs in view.pairs() if obs.declared is Outcome.SKIPPED]
    if not skipped:
        return []
    names = ", ".join(env.name for env, _ in skipped)
    notes = "; ".join(f"{env.name}: {obs.declared_reason or 'no reason recorded'}" for env, obs in skipped)
    return [
        view.finding(
            Category.INCONCLUSIVE,
            severity.CROSSCHECK_SKIPPED,
            _values(view),
            f"no declared decision for {view.step.probe} in {names}",
            f"{notes}. The live decision was judged; whether it matches what the target declares was not "
            "checked there: neither agreement nor a mismatch.",
            field="declared",
        )
    ]


# Live NOT_FOUND means the target let the request through to find nothing: the action was permitted.
_LIVE_AS_DECLARED = {Outcome.ALLOWED: Outcome.ALLOWED, Outcome.NOT_FOUND: Outcome.ALLOWED}


def disagreements(view: StepView) -> list[Finding]:
    """One finding per environment whose live decision disagrees with its declared one."""
    findings = []
    for env, obs in view.pairs():
        if obs.declared not in (Outcome.ALLOWED, Outcome.DENIED) or not obs.outcome.is_verdict:
            continue
        live = _LIVE_AS_DECLARED.get(obs.outcome, Outcome.DENIED)
        if live is obs.declared:
            continue
        wider = live is Outcome.ALLOWED
        findings.append(
            view.finding(
                Category.DECLARED_MISMATCH,
                severity.declared_mismatch(wider, env.tier),
                _values(view),
                f"{env.name}: {view.step.probe} was {obs.describe()}, but the target declares it "
                f"{obs.declared.value}",
                (
                    "The action works although the declared capabilities refuse it: whatever grants it "
                    "(a default policy, an identity group, a root-like path) is invisible to reviews that "
                    "read the policies."
                    if wider
                    else "The declared capabilities allow an action the target refuses (parameter "
                    "constraints, a control group, a sentinel rule): access reviews overstate what works."
                ),
                field="declared",
            )
        )
    return findings
