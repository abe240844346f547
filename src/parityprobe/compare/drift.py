"""Configuration drift: what a configuration snapshot (``vault.config``) says differs between environments,
one ``config_drift`` finding per differing field, and which drift explains a behavioural finding.

A snapshot is a grant whose ``attributes`` hold one key per comparable field, named for people. The keys form
a tree, which this module defines and the probes build with its functions:

- sections, always present: ``auth methods``, ``audit devices``, ``audited headers`` (value ``listed``, or
  ``not readable (…)``), with one member each: ``auth method approle/``, ``audit device file/``,
  ``audited header x-correlation-id``;
- ``role approle/payments`` (``present``, ``absent``, ``not readable (…)``) and its fields
  ``role approle/payments token_ttl``;
- ``policy payments`` (``present``, ``absent``, ``present, not read as HCL (sha256:…)``, …), its rules
  ``policy payments path secret/data/payments/*`` (the capabilities) and their attributes
  ``policy payments path secret/data/payments/* allowed_parameters``.

An AWS snapshot (``aws.config``) has keys of its own (IAM roles and users, their policies' statements,
secrets' rotation), named, parented and worded by :mod:`parityprobe.compare.aws_keys`.

Names and values are already normalised by the probe (each environment's ``vars`` replaced by
``${vars.NAME}``), so keys are equal across environments. A key is compared only where its parent has the
same value everywhere (else the parent's difference is the one finding); a key without a parent that some
environment lacks was not collected there, and is not compared. A part the token could not read is reported
as ``inconclusive``, never as parity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from parityprobe.compare import aws_keys, severity
from parityprobe.compare.context import StepView
from parityprobe.model import Category, Finding, Outcome, Severity, Tier
from parityprobe.spec import EnvironmentFacts

SNAPSHOT = "snapshot"  # present in every snapshot: its value names what was read ("vault configuration")
AUTH_METHODS, AUDIT_DEVICES, AUDITED_HEADERS = "auth methods", "audit devices", "audited headers"
_MEMBERS = {AUTH_METHODS: "auth method ", AUDIT_DEVICES: "audit device ", AUDITED_HEADERS: "audited header "}
LISTED, PRESENT, ABSENT, NOT_SET = "listed", "present", "absent", "(not set)"
_UNREADABLE = "not readable"

_POLICY_PATH = re.compile(r"^policy (\S+) path (\S+)$")
_PATH_ATTRIBUTE = re.compile(r"^policy (\S+) path (\S+) (\S+)$")
_POLICY = re.compile(r"^policy (\S+)$")
_ROLE_FIELD = re.compile(r"^role (\S+) (\S+)$")
_TEMPLATE = re.compile(r"\{\{[^}]*\}\}")
# Which role fields can explain a grant difference, by the grant field's label.
_ROLE_FIELDS_FOR = {
    "ttl": ("token_ttl", "token_period", "token_explicit_max_ttl"),
    "max ttl": ("token_max_ttl", "token_explicit_max_ttl", "token_period"),
    "policies": ("token_policies", "token_no_default_policy"),
    # A decision: the policies the role attaches, or (for a login) what the role binds its logins to.
    "outcome": (
        "token_policies",
        "token_no_default_policy",
        "bind_secret_id",
        "secret_id_bound_cidrs",
        "token_bound_cidrs",
        "bound_audiences",
        "bound_subject",
        "bound_claims",
        "bound_claims_type",
        "bound_service_account_names",
        "bound_service_account_namespaces",
        "bound_service_account_namespace_selector",
    ),
}
BEHAVIOURAL = frozenset({Category.OUTCOME_MISMATCH, Category.EXPECTATION_VIOLATION, Category.GRANT_MISMATCH})


def unreadable(reason: str) -> str:
    """The value of a part the probe was refused: ``not readable (permission denied)``."""
    return f"{_UNREADABLE} ({reason})"


def member_key(section: str, name: str) -> str:
    """``auth method approle/``, ``audit device file/``, ``audited header x-correlation-id``."""
    return _MEMBERS[section] + name


def role_key(role: str, field: str | None = None) -> str:
    """``role approle/payments`` (``role`` is ``<method>/<name>``, as a login's identity is) and, with
    ``field``, ``role approle/payments token_ttl``."""
    return f"role {role} {field}" if field else f"role {role}"


def policy_key(name: str, path: str | None = None, attribute: str | None = None) -> str:
    """``policy payments``, ``policy payments path secret/*``, ``policy payments path secret/* <attr>``."""
    key = f"policy {name}"
    if path is not None:
        key += f" path {path}"
        if attribute is not None:
            key += f" {attribute}"
    return key


def is_config_snapshot(view: StepView) -> bool:
    """True when the step's observations are configuration snapshots (compared by :func:`config_findings`)."""
    return any(SNAPSHOT in obs.grant.attributes for obs in view.observations)


def config_findings(view: StepView) -> list[Finding]:
    """One ``config_drift`` finding per field that differs between the environments whose snapshot was
    taken (ALLOWED), and one ``inconclusive`` finding per part some environment could not read."""
    taken = [(env, obs.grant.attributes) for env, obs in view.pairs() if obs.outcome is Outcome.ALLOWED]
    if len(taken) < 2:
        return []
    keys = sorted({key for _, attributes in taken for key in attributes})
    findings: list[Finding] = []
    for key in keys:
        parent = _parent(key, keys)
        values = {env.name: attributes.get(key) for env, attributes in taken}
        if parent is not None and len({attributes.get(parent) for _, attributes in taken}) > 1:
            continue  # the parent differs (or was not read): its finding says so
        if parent is None and None in values.values():
            continue  # not collected everywhere (a policy only one environment's role attaches)
        refused = [name for name, value in values.items() if value and value.startswith(_UNREADABLE)]
        if refused:
            findings.append(_inconclusive(view, key, refused))
        elif len(set(values.values())) > 1:
            findings.append(_drift(view, key, parent, taken))
    return findings


def _parent(key: str, keys: Sequence[str]) -> str | None:
    if aws_keys.is_aws_key(key):
        return aws_keys.parent(key)
    if key in _MEMBERS:
        return None
    for section, prefix in _MEMBERS.items():
        if key.startswith(prefix):
            return section
    prefixes = [k for k in keys if key.startswith(k + " ")]
    return max(prefixes, key=len) if prefixes else None


def _inconclusive(view: StepView, key: str, refused: list[str]) -> Finding:
    return view.finding(
        Category.INCONCLUSIVE,
        severity.INCONCLUSIVE,
        _side_by_side(view, key),
        f"{key} not compared: not readable in {', '.join(refused)}",
        "The token the configuration probe acts with may not read this part (give the environment a "
        "read-only auditor token, vault.config_token). Until it can, this part is neither parity nor drift.",
        field=key,
    )


def _drift(
    view: StepView, key: str, parent: str | None, taken: list[tuple[EnvironmentFacts, Mapping[str, str]]]
) -> Finding:
    base_env, base = next(((e, a) for e, a in taken if e.tier is Tier.PRODUCTION), taken[0])
    base_value = base.get(key)
    parts = [
        _difference(key, env.name, attributes.get(key), base_env.name, base_value)
        for env, attributes in taken
        if env is not base_env and attributes.get(key) != base_value
    ]
    return view.finding(
        Category.CONFIG_DRIFT,
        _grade(key, parent, taken),
        _side_by_side(view, key),
        "; ".join(parts),
        _why(key, parent),
        field=key,
    )


def _difference(key: str, name: str, value: str | None, base_name: str, base: str | None) -> str:
    """One environment's value against the baseline's, in words."""
    if aws_keys.is_aws_key(key):
        worded = aws_keys.difference(key, name, value, base_name, base)
        if worded is not None:
            return worded
    rule = _POLICY_PATH.match(key)
    if rule is not None:
        policy, path = rule.groups()
        if value is None:
            return f"{name}'s policy {policy} has no rule for {path}; {base_name}'s grants {base}"
        if base is None:
            return f"{name}'s policy {policy} grants {value} on {path}; {base_name}'s has no rule for it"
        mine, theirs = _names(value), _names(base)
        added = [c for c in mine if c not in theirs]
        lacking = [c for c in theirs if c not in mine]
        change = []
        if added:
            change.append(f"adds {', '.join(added)}")
        if lacking:
            change.append(f"lacks {', '.join(lacking)}")
        return f"{name}'s policy {policy} {' and '.join(change)} on {path}"
    header = _MEMBERS[AUDITED_HEADERS]
    if key.startswith(header) and (value is None or base is None):
        header = key.removeprefix(header)
        if value is None:
            return f"{name} does not audit header {header}; {base_name} does ({base})"
        return f"{name} audits header {header} ({value}); {base_name} does not"
    if value is None:
        return f"{name} has no {key}; {base_name}'s is {base}"
    if base is None:
        return f"{name}'s {key} is {value}; {base_name} has none"
    return f"{name}'s {key} is {value}; {base_name}'s is {base}"


def _names(value: str) -> list[str]:
    return [] if value == "(none)" else value.split(", ")


def _grade(key: str, parent: str | None, taken: list[tuple[EnvironmentFacts, Mapping[str, str]]]) -> Severity:
    """The facts :func:`severity.config_drift` grades: a policy rule, or an audit piece production lacks."""
    policy_rule = bool(_POLICY_PATH.match(key) or _PATH_ATTRIBUTE.match(key) or _POLICY.match(key))
    policy_rule = policy_rule or aws_keys.is_policy(key)
    missing_in_production = parent in (AUDIT_DEVICES, AUDITED_HEADERS) and any(
        env.tier is Tier.PRODUCTION and attributes.get(key) is None for env, attributes in taken
    )
    return severity.config_drift(policy_rule, missing_in_production)


def _why(key: str, parent: str | None) -> str:
    aws = aws_keys.why(key)
    if aws is not None:
        return aws
    if key.startswith("policy "):
        return (
            "Policies decide what the workload's token may do: on this path one environment allows what the "
            "other refuses, so a step there proves nothing about the other environment."
        )
    if key.startswith("role "):
        return (
            "The role decides the tokens the workload receives (their lifetime, policies and where they may "
            "be used); a role that differs hides expiry, renewal and access failures."
        )
    if parent in (AUDIT_DEVICES, AUDITED_HEADERS):
        return (
            "Requests are audited differently: evidence present in one environment is missing or unlinkable "
            "in the other, so detections proven in one prove nothing in the other."
        )
    if parent == AUTH_METHODS:
        return "The environments offer different ways to log in, or tune their tokens' lifetimes differently."
    return "The environments are configured differently."


def _side_by_side(view: StepView, key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for env, obs in view.pairs():
        if obs.outcome is not Outcome.ALLOWED:
            out[env.name] = obs.describe()
        else:
            out[env.name] = obs.grant.attributes.get(key) or "-"
    return out


def explaining(
    finding: Finding, drift: Sequence[Finding], *, target: str | None = None, identity: str | None = None
) -> list[Finding]:
    """The drift findings that may explain a behavioural ``finding`` on a step, most specific first.

    ``target`` is the Vault path the step acted on (``secret/data/payments/db``) and ``identity`` the role
    it acted as (``approle/payments``), both normalised like the snapshot (each environment's vars replaced
    by ``${vars.NAME}``); for an AWS step the target is ``<action> on <resource>``. A decision is explained
    by a policy rule whose pattern matches ``target`` (Vault's globs: ``*`` at the end, ``+`` for one
    segment), by an IAM statement naming its action, by a policy present in one environment only, or by
    the role's attached policies; a TTL difference by the role's TTLs or its auth method's tuning; a
    policies difference by the role's policies. A matching rule may still be outranked by a more specific
    one the environments share: "may explain". An ``evidence_gap`` is explained by audit devices and
    audited headers
    that differ.
    """
    if finding.category is Category.EVIDENCE_GAP:
        audit = (AUDIT_DEVICES, AUDITED_HEADERS, _MEMBERS[AUDIT_DEVICES], _MEMBERS[AUDITED_HEADERS])
        return [f for f in drift if f.category is Category.CONFIG_DRIFT and (f.field or "").startswith(audit)]
    if finding.category not in BEHAVIOURAL:
        return []
    about = finding.field or "outcome"
    role_fields = {role_key(identity, f) for f in _ROLE_FIELDS_FOR.get(about, ())} if identity else set()
    method = identity.split("/", 1)[0] if identity else None
    rules: list[tuple[str, Finding]] = []
    others: list[Finding] = []
    for candidate in drift:
        key = candidate.field
        if candidate.category is not Category.CONFIG_DRIFT or key is None:
            continue
        if about == "outcome" and target is not None:
            if aws_keys.covers(key, candidate.environments.values(), target):
                others.append(candidate)
                continue
            rule = _POLICY_PATH.match(key) or _PATH_ATTRIBUTE.match(key)
            if rule is not None and path_matches(rule.group(2), target):
                rules.append((rule.group(2), candidate))
                continue
            if _POLICY.match(key):
                others.append(candidate)
                continue
        if key in role_fields:
            others.append(candidate)
        elif about in ("ttl", "max ttl") and method and key == member_key(AUTH_METHODS, f"{method}/"):
            others.append(candidate)
    rules.sort(key=lambda pair: priority(pair[0]), reverse=True)
    return [f for _, f in rules] + others


def explained(
    finding: Finding, drift: Sequence[Finding], *, target: str | None = None, identity: str | None = None
) -> Finding:
    """``finding`` with the drift that may explain it (:func:`explaining`) added to its explanation."""
    found = explaining(finding, drift, target=target, identity=identity)
    if not found:
        return finding
    because = "; ".join(f.message for f in found)
    explanation = f"{finding.explanation} Configuration drift that may explain it: {because}."
    return replace(finding, explanation=explanation.strip())


def path_matches(pattern: str, path: str) -> bool:
    """Whether a policy path ``pattern`` covers ``path`` as Vault matches them: a trailing ``*`` matches any
    rest, a ``+`` segment any one segment; an identity template (``{{identity.entity.name}}``) is taken to
    match any text within its segment."""
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    segments = []
    for segment in body.split("/"):
        if segment == "+":
            segments.append("[^/]*")
        else:
            segments.append("[^/]*".join(re.escape(part) for part in _TEMPLATE.split(segment)))
    regex = re.compile("/".join(segments))
    path = path.removeprefix("/")
    return (regex.match(path) if glob else regex.fullmatch(path)) is not None


def priority(pattern: str) -> tuple[int, bool, int, int, str]:
    """A sort key, higher for the pattern Vault prefers when several match: wildcards later, no trailing
    ``*``, fewer ``+`` segments, longer, then lexically greater."""
    segments = pattern.split("/")
    plus = [i for i, s in enumerate(segments) if s == "+"]
    first_plus = len("/".join(segments[: plus[0]])) if plus else len(pattern)
    first_star = len(pattern) - 1 if pattern.endswith("*") else len(pattern)
    return (min(first_plus, first_star), not pattern.endswith("*"), -len(plus), len(pattern), pattern)
