"""The live-versus-declared rule: a step with ``crosscheck`` also asked the target what it declares for the
same action (Vault's ``sys/capabilities-self``); a live decision that disagrees is a finding of its own.

It is judged per environment, not between them: even where every environment agrees, policy tooling that
answers from the declared capabilities (a review, a dashboard, an access request) is wrong there.
"""

from __future__ import annotations

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.model import Category, Finding, Outcome

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
                {
                    e.name: f"{o.describe()}; declared {o.declared.value if o.declared else '-'}"
                    for e, o in view.pairs()
                },
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
