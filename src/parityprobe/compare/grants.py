"""Rules on the access received: grant expectations (TTL bounds, policies) and differences between
environments, field by field as :data:`~parityprobe.grant.GRANT_FIELDS` says (durations within tolerance,
sets and flags equal, identity equal after normalising each environment's vars)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.config.durations import humanise
from parityprobe.grant import (
    DEFAULT_TOLERANCE_RATIO,
    DEFAULT_TOLERANCE_SECONDS,
    FIELDS_BY_NAME,
    GRANT_FIELDS,
    GrantField,
    Rule,
    attribute_field,
)
from parityprobe.model import Category, Finding, Grant, Outcome

_MIN_VAR_LENGTH = 4
_TTL = FIELDS_BY_NAME["ttl_seconds"]
_POLICIES = FIELDS_BY_NAME["policies"]


def _allowed(view: StepView) -> list[tuple[str, Grant, Mapping[str, str]]]:
    return [(env.name, obs.grant, env.vars) for env, obs in view.pairs() if obs.outcome is Outcome.ALLOWED]


def expectation_violations(view: StepView) -> tuple[list[Finding], set[str]]:
    """Grants outside the scenario's bounds, and the grant fields those findings cover."""
    step = view.step
    findings: list[Finding] = []
    fields: set[str] = set()
    for name, grant, _ in _allowed(view):
        ttl = grant.ttl_seconds
        if step.expect_ttl is not None and ttl is not None and not step.expect_ttl.contains(ttl):
            fields.add(_TTL.name)
            bounds = " and ".join(
                f"{label} {humanise(v)}"
                for label, v in (("at least", step.expect_ttl.min), ("at most", step.expect_ttl.max))
                if v is not None
            )
            findings.append(
                view.finding(
                    Category.EXPECTATION_VIOLATION,
                    severity.GRANT,
                    _values(view, _TTL),
                    f"{name}: {step.probe} granted a TTL of {humanise(ttl)}; the scenario allows {bounds}",
                    "Credentials that live longer than intended widen the window in which a leaked "
                    "token is useful; a TTL that differs from production's hides expiry failures.",
                    field="ttl",
                )
            )
        if grant.policies is not None:
            missing = sorted(set(step.policies_include or ()) - grant.policies)
            extra = sorted(set(step.policies_exclude or ()) & grant.policies)
            if missing or extra:
                fields.add(_POLICIES.name)
                parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
                    [f"carries {', '.join(extra)}"] if extra else []
                )
                findings.append(
                    view.finding(
                        Category.EXPECTATION_VIOLATION,
                        severity.GRANT,
                        _values(view, _POLICIES),
                        f"{name}: the grant of {step.probe} {' and '.join(parts)}",
                        "The policies attached to the credential decide what it can reach.",
                        field="policies",
                    )
                )
    findings.extend(_expiring(view))
    return findings, fields


def _span(seconds: float) -> str:
    """``12d`` from two days on (certificates live for months), else ``5h 30m``."""
    whole = max(0, int(seconds))
    return f"{whole // 86400}d" if whole >= 2 * 86400 else humanise(whole)


def _expiring(view: StepView) -> list[Finding]:
    """``expect.valid_for``: each environment whose grant (a token, a certificate) expires sooner after the
    step than the scenario asks; the others' remaining validity shown beside it."""
    wanted = view.step.expect_valid_for
    if wanted is None:
        return []
    left = {
        env.name: (obs.grant.expires_at - obs.started_at).total_seconds()
        for env, obs in view.pairs()
        if obs.outcome is Outcome.ALLOWED and obs.grant.expires_at is not None
    }
    values = {name: f"valid for {_span(seconds)}" for name, seconds in left.items()}
    return [
        view.finding(
            Category.EXPECTATION_VIOLATION,
            severity.GRANT,
            values,
            f"{name}: what {view.step.probe} was granted expires in {_span(seconds)}; the scenario wants it "
            f"valid for at least {_span(wanted)}",
            "A certificate or credential this close to its expiry fails soon; where only one environment's "
            "is, its renewal is not the other's, and tests there say nothing about it.",
            field="expires",
        )
        for name, seconds in left.items()
        if seconds < wanted
    ]


def mismatches(view: StepView, covered: set[str]) -> list[Finding]:
    """Grant fields that differ between the environments that allowed the step, in table order."""
    allowed = _allowed(view)
    if len(allowed) < 2:
        return []
    keys = sorted({key for _, grant, _ in allowed for key in grant.attributes})
    descriptors = [*GRANT_FIELDS, *(attribute_field(key) for key in keys)]
    return [
        view.finding(
            Category.GRANT_MISMATCH,
            severity.GRANT,
            _values(view, descriptor),
            f"{view.step.probe}: {descriptor.differs}",
            descriptor.why,
            field=descriptor.label,
        )
        for descriptor in descriptors
        if descriptor.name not in covered and _differs(descriptor, allowed, view.step.ttl_tolerance)
    ]


def _differs(
    descriptor: GrantField, allowed: list[tuple[str, Grant, Mapping[str, str]]], tolerance: int | None
) -> bool:
    if descriptor.rule is Rule.NONE:
        return False
    values = [_value(descriptor, grant) for _, grant, _ in allowed]
    if descriptor.rule is Rule.IDENTITY:
        present = {normalise(v, variables) for v, (_, _, variables) in zip(values, allowed, strict=True) if v}
        return len(present) > 1
    if descriptor.rule is Rule.TOLERANCE:
        # A duration compares only when every environment reports it: a missing one is not a difference.
        if any(v is None for v in values):
            return False
        return _beyond_tolerance(values, tolerance)
    if descriptor.name == _POLICIES.name and any(v is None for v in values):
        return False
    present_values = [v for v in values if v is not None]
    return len(set(present_values)) > 1


def _value(descriptor: GrantField, grant: Grant) -> Any:
    if descriptor.name.startswith("attributes."):
        return grant.attributes.get(descriptor.label)
    return getattr(grant, descriptor.name)


def normalise(identity: str | None, variables: Mapping[str, str]) -> str | None:
    """``identity`` with each var's value replaced by ``${vars.NAME}`` (longest values first)."""
    if identity is None:
        return None
    for name, value in sorted(variables.items(), key=lambda kv: len(kv[1]), reverse=True):
        if len(value) >= _MIN_VAR_LENGTH:
            identity = identity.replace(value, "${vars." + name + "}")
    return identity


def _beyond_tolerance(seconds: list[int], tolerance: int | None) -> bool:
    low, high = min(seconds), max(seconds)
    allowed = (
        tolerance
        if tolerance is not None
        else max(DEFAULT_TOLERANCE_SECONDS, int(high * DEFAULT_TOLERANCE_RATIO))
    )
    return high - low > allowed


def _values(view: StepView, descriptor: GrantField) -> dict[str, str]:
    """Each environment's value of a grant field, or its decision where it was not allowed."""
    out: dict[str, str] = {}
    for env, obs in view.pairs():
        if obs.outcome is not Outcome.ALLOWED:
            out[env.name] = obs.describe()
            continue
        value = _value(descriptor, obs.grant)
        if value is None:
            out[env.name] = "-"
        elif descriptor.rule is Rule.IDENTITY:
            out[env.name] = normalise(value, env.vars) or "-"
        else:
            out[env.name] = descriptor.show(value)
    return out
