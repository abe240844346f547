"""Rules on the access received: grant expectations (TTL bounds, policies) and differences between
environments (TTL beyond tolerance, policy sets, identity after normalising each environment's vars)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.config.durations import humanise
from parityprobe.model import Category, Finding, Grant, Outcome

# Environments legitimately differ by a few seconds of clock and request time; relative tolerance covers
# the rest of the noise in long TTLs.
DEFAULT_TTL_TOLERANCE_SECONDS = 60
DEFAULT_TTL_TOLERANCE_RATIO = 0.10
_MIN_VAR_LENGTH = 4


def _allowed(view: StepView) -> list[tuple[str, Grant, Mapping[str, str]]]:
    return [(env.name, obs.grant, env.vars) for env, obs in view.pairs() if obs.outcome is Outcome.ALLOWED]


def expectation_violations(view: StepView) -> tuple[list[Finding], set[str]]:
    """Grants outside the scenario's bounds, and the grant fields those findings cover."""
    expect = view.step.expect
    findings: list[Finding] = []
    fields: set[str] = set()
    for name, grant, _ in _allowed(view):
        if (
            expect.ttl is not None
            and grant.ttl_seconds is not None
            and not expect.ttl.contains(grant.ttl_seconds)
        ):
            fields.add("ttl")
            bounds = " and ".join(
                f"{label} {humanise(v)}"
                for label, v in (("at least", expect.ttl.min), ("at most", expect.ttl.max))
                if v is not None
            )
            findings.append(
                view.finding(
                    Category.EXPECTATION_VIOLATION,
                    severity.GRANT,
                    _values(view, _ttl),
                    f"{name}: {view.step.probe} granted a TTL of {humanise(grant.ttl_seconds)}; "
                    f"the scenario allows {bounds}",
                    "Credentials that live longer than intended widen the window in which a leaked token "
                    "is useful; a TTL that differs from production's hides expiry failures.",
                    field="ttl",
                )
            )
        if expect.policies is not None and grant.policies is not None:
            missing = sorted(set(expect.policies.includes) - grant.policies)
            extra = sorted(set(expect.policies.excludes) & grant.policies)
            if missing or extra:
                fields.add("policies")
                parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
                    [f"carries {', '.join(extra)}"] if extra else []
                )
                findings.append(
                    view.finding(
                        Category.EXPECTATION_VIOLATION,
                        severity.GRANT,
                        _values(view, _policies),
                        f"{name}: the grant of {view.step.probe} {' and '.join(parts)}",
                        "The policies attached to the credential decide what it can reach.",
                        field="policies",
                    )
                )
    return findings, fields


def mismatches(view: StepView, covered: set[str]) -> list[Finding]:
    """Grant fields that differ between the environments that allowed the step."""
    allowed = _allowed(view)
    if len(allowed) < 2:
        return []
    findings = []
    ttls = [g.ttl_seconds for _, g, _ in allowed if g.ttl_seconds is not None]
    if "ttl" not in covered and len(ttls) == len(allowed) and _ttl_differs(ttls, view.step.tolerance.ttl):
        findings.append(
            _mismatch(view, "ttl", _ttl, "granted TTLs differ", "Expiry and renewal behave differently.")
        )
    policies = [g.policies for _, g, _ in allowed]
    if "policies" not in covered and None not in policies and len(set(policies)) > 1:
        findings.append(
            _mismatch(
                view,
                "policies",
                _policies,
                "attached policies differ",
                "The credentials reach different paths.",
            )
        )
    identities = {normalise(g.identity, v) for _, g, v in allowed if g.identity is not None}
    if len(identities) > 1:
        findings.append(
            _mismatch(
                view,
                "identity",
                _identity,
                "the identity received differs (after substituting each environment's vars)",
                "The workload acts as a different principal; policies for one will not match the other.",
            )
        )
    renewable = {g.renewable for _, g, _ in allowed if g.renewable is not None}
    if len(renewable) > 1:
        findings.append(
            _mismatch(
                view,
                "renewable",
                _renewable,
                "renewability differs",
                "A token renewable in one environment only hides renewal failures.",
            )
        )
    return findings


def normalise(identity: str | None, variables: Mapping[str, str]) -> str | None:
    """``identity`` with each var's value replaced by ``${vars.NAME}`` (longest values first)."""
    if identity is None:
        return None
    for name, value in sorted(variables.items(), key=lambda kv: len(kv[1]), reverse=True):
        if len(value) >= _MIN_VAR_LENGTH:
            identity = identity.replace(value, "${vars." + name + "}")
    return identity


def _ttl_differs(ttls: list[int], tolerance: int | None) -> bool:
    low, high = min(ttls), max(ttls)
    allowed = (
        tolerance
        if tolerance is not None
        else max(DEFAULT_TTL_TOLERANCE_SECONDS, int(high * DEFAULT_TTL_TOLERANCE_RATIO))
    )
    return high - low > allowed


Show = Callable[[Grant, Mapping[str, str]], str]


def _ttl(grant: Grant, _: Mapping[str, str]) -> str:
    return humanise(grant.ttl_seconds) if grant.ttl_seconds is not None else "-"


def _policies(grant: Grant, _: Mapping[str, str]) -> str:
    return ", ".join(sorted(grant.policies)) if grant.policies is not None else "-"


def _identity(grant: Grant, variables: Mapping[str, str]) -> str:
    return normalise(grant.identity, variables) or "-"


def _renewable(grant: Grant, _: Mapping[str, str]) -> str:
    return "-" if grant.renewable is None else str(grant.renewable).lower()


def _values(view: StepView, show: Show) -> dict[str, str]:
    """Each environment's value of a grant field, or its decision where it was not allowed."""
    return {
        env.name: show(obs.grant, env.vars) if obs.outcome is Outcome.ALLOWED else obs.describe()
        for env, obs in view.pairs()
    }


def _mismatch(view: StepView, field: str, show: Show, what: str, why: str) -> Finding:
    return view.finding(
        Category.GRANT_MISMATCH,
        severity.GRANT,
        _values(view, show),
        f"{view.step.probe}: {what}",
        why,
        field=field,
    )
