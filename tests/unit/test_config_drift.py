"""config_drift findings from configuration snapshots, and the drift that explains a behavioural finding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from parityprobe.compare.context import StepView
from parityprobe.compare.drift import (
    ABSENT,
    AUDIT_DEVICES,
    AUDITED_HEADERS,
    AUTH_METHODS,
    LISTED,
    PRESENT,
    SNAPSHOT,
    config_findings,
    explained,
    explaining,
    is_config_snapshot,
    member_key,
    path_matches,
    policy_key,
    priority,
    role_key,
    unreadable,
)
from parityprobe.model import Category, ErrorKind, Finding, Grant, Observation, Outcome, Severity, Tier
from parityprobe.probes.vault import role_fields
from parityprobe.spec import EnvironmentFacts, StepSpec

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
APP = "${vars.app}"
DATA = policy_key(APP, f"secret/data/{APP}/*")
TTL = role_key(f"approle/{APP}", "token_ttl")
DENIED = unreadable("permission denied")


def snapshot(**changes: str | None) -> dict[str, str]:
    """A production-like snapshot; ``changes`` (key → value, None removes the key) make another."""
    base = {
        SNAPSHOT: "vault configuration",
        AUTH_METHODS: LISTED,
        member_key(AUTH_METHODS, "approle/"): "approle",
        AUDIT_DEVICES: LISTED,
        member_key(AUDIT_DEVICES, "file/"): "file (file_path ${vars.dir}/audit.log, format json)",
        AUDITED_HEADERS: LISTED,
        member_key(AUDITED_HEADERS, "x-correlation-id"): "hmac false",
        role_key(f"approle/{APP}"): PRESENT,
        TTL: "1h",
        role_key(f"approle/{APP}", "token_policies"): f"{APP}, default",
        policy_key(APP): PRESENT,
        DATA: "read",
        policy_key(APP, f"secret/data/{APP}/*", "allowed_parameters"): '{"*": []}',
        policy_key(APP, "secret/metadata/*"): "list",
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def obs(env: str, attributes: Mapping[str, str] | None, outcome: Outcome = Outcome.ALLOWED) -> Observation:
    grant = Grant(attributes=MappingProxyType(dict(attributes))) if attributes is not None else Grant()
    kind = ErrorKind.UNREACHABLE if outcome is Outcome.ERROR else None
    return Observation(
        "config", "vault.config", env, f"pp-x-{env}", outcome, NOW, error_kind=kind, grant=grant
    )


def view(*observations: Observation) -> StepView:
    tiers = {"production": Tier.PRODUCTION, "staging": Tier.STAGING, "dev": Tier.DEVELOPMENT}
    facts = tuple(EnvironmentFacts(o.environment, tiers[o.environment]) for o in observations)
    return StepView("sc", StepSpec("config", "vault.config"), facts, observations)


def findings(staging: Mapping[str, str], production: Mapping[str, str] | None = None) -> list[Finding]:
    return config_findings(view(obs("staging", staging), obs("production", production or snapshot())))


def by_field(found: list[Finding]) -> dict[str | None, Finding]:
    return {f.field: f for f in found}


def test_equal_snapshots_have_no_drift() -> None:
    assert findings(snapshot()) == []
    assert is_config_snapshot(view(obs("staging", snapshot()), obs("production", snapshot())))
    assert not is_config_snapshot(view(obs("staging", {}), obs("production", {"ttl": "x"})))


def test_a_policy_that_adds_a_capability_names_it_and_the_path() -> None:
    [finding] = findings(snapshot(**{DATA: "read, update"}))
    assert finding.category is Category.CONFIG_DRIFT and finding.field == DATA
    assert finding.message == f"staging's policy {APP} adds update on secret/data/{APP}/*"
    assert finding.environments == {"staging": "read, update", "production": "read"}
    assert finding.severity is Severity.HIGH  # one environment allows what the other refuses
    assert (finding.scenario, finding.step) == ("sc", "config")
    assert "Policies decide" in finding.explanation


@pytest.mark.parametrize(
    ("staging_value", "message"),
    [
        ("list", f"staging's policy {APP} adds list and lacks read on secret/data/{APP}/*"),
        ("(none)", f"staging's policy {APP} lacks read on secret/data/{APP}/*"),
        (None, f"staging's policy {APP} has no rule for secret/data/{APP}/*; production's grants read"),
    ],
)
def test_capability_differences_in_words(staging_value: str | None, message: str) -> None:
    found = by_field(findings(snapshot(**{DATA: staging_value})))
    assert found[DATA].message == message
    # A rule missing in staging takes its attribute with it: the rule's finding is the one finding.
    assert set(found) == {DATA}


def test_a_rule_production_lacks() -> None:
    extra = policy_key(APP, "sys/*")
    [finding] = findings(snapshot(**{extra: "sudo"}))
    assert finding.message == f"staging's policy {APP} grants sudo on sys/*; production's has no rule for it"
    assert finding.environments == {"staging": "sudo", "production": "-"}


def test_a_role_field_that_differs() -> None:
    [finding] = findings(snapshot(**{TTL: "24h"}))
    assert finding.message == f"staging's role approle/{APP} token_ttl is 24h; production's is 1h"
    assert finding.severity is Severity.MEDIUM
    assert "The role decides" in finding.explanation


def test_a_role_absent_in_one_environment_is_one_finding_not_one_per_field() -> None:
    staging = {k: v for k, v in snapshot().items() if not k.startswith(role_key(f"approle/{APP}") + " ")}
    staging[role_key(f"approle/{APP}")] = ABSENT
    [finding] = findings(staging)
    assert finding.message == f"staging's role approle/{APP} is absent; production's is present"


def test_a_policy_not_read_as_hcl_is_compared_whole() -> None:
    unread = {k: v for k, v in snapshot().items() if not k.startswith(policy_key(APP) + " ")}
    unread[policy_key(APP)] = "present, not read as HCL (sha256:0123456789abcdef)"
    [finding] = findings(unread)
    assert finding.field == policy_key(APP)
    assert finding.severity is Severity.HIGH
    assert findings(unread, unread) == []


def test_audit_device_and_header_missing_in_production_is_high_in_staging_medium() -> None:
    device, header = member_key(AUDIT_DEVICES, "file/"), member_key(AUDITED_HEADERS, "x-correlation-id")
    lacking = snapshot(**{device: None, header: None})
    missing_in_staging = by_field(findings(lacking))
    assert {f.severity for f in missing_in_staging.values()} == {Severity.MEDIUM}
    assert missing_in_staging[device].message == (
        "staging has no audit device file/; "
        "production's is file (file_path ${vars.dir}/audit.log, format json)"
    )
    assert missing_in_staging[header].message == (
        "staging does not audit header x-correlation-id; production does (hmac false)"
    )
    missing_in_production = by_field(findings(snapshot(), lacking))
    assert {f.severity for f in missing_in_production.values()} == {Severity.HIGH}
    assert missing_in_production[header].message == (
        "staging audits header x-correlation-id (hmac false); production does not"
    )
    assert "audited differently" in missing_in_production[device].explanation


def test_an_auth_method_only_one_environment_has() -> None:
    k8s = member_key(AUTH_METHODS, "kubernetes/")
    [finding] = findings(snapshot(**{k8s: "kubernetes (default_lease_ttl 1h)"}))
    assert (
        finding.message
        == "staging's auth method kubernetes/ is kubernetes (default_lease_ttl 1h); production has none"
    )
    assert finding.severity is Severity.MEDIUM


def test_a_part_not_readable_is_inconclusive_and_its_members_are_not_compared() -> None:
    refused = {k: v for k, v in snapshot().items() if not k.startswith("audit device ")}
    refused[AUDIT_DEVICES] = DENIED
    [finding] = findings(refused)
    assert finding.category is Category.INCONCLUSIVE and finding.severity is Severity.MEDIUM
    assert finding.message == "audit devices not compared: not readable in staging"
    assert finding.environments == {"staging": DENIED, "production": LISTED}
    # Refused in both: still inconclusive, never parity.
    [both] = findings(refused, refused)
    assert both.message == "audit devices not compared: not readable in staging, production"


def test_a_policy_only_one_environment_collected_is_not_compared() -> None:
    # Staging's role attaches "debug" too, so staging read it; the role's token_policies is the finding.
    staging = snapshot(
        **{
            role_key(f"approle/{APP}", "token_policies"): f"{APP}, debug, default",
            policy_key("debug"): PRESENT,
            policy_key("debug", "secret/*"): "read",
        }
    )
    [finding] = findings(staging)
    assert finding.field == role_key(f"approle/{APP}", "token_policies")


def test_environments_without_a_snapshot_are_left_to_the_outcome_rules() -> None:
    assert (
        config_findings(view(obs("staging", snapshot(**{TTL: "2h"})), obs("production", None, Outcome.ERROR)))
        == []
    )
    three = view(
        obs("staging", snapshot(**{TTL: "2h"})),
        obs("dev", None, Outcome.DENIED),
        obs("production", snapshot()),
    )
    [finding] = config_findings(three)
    assert finding.environments == {"staging": "2h", "dev": "denied", "production": "1h"}


def test_production_is_the_baseline_whatever_the_order() -> None:
    three = view(
        obs("production", snapshot()),
        obs("dev", snapshot(**{DATA: "read, delete"})),
        obs("staging", snapshot(**{DATA: "read, update"})),
    )
    [finding] = config_findings(three)
    assert finding.message == (
        f"dev's policy {APP} adds delete on secret/data/{APP}/*; "
        f"staging's policy {APP} adds update on secret/data/{APP}/*"
    )


# --- explaining -------------------------------------------------------------------------------------------


def behaviour(category: Category, field: str) -> Finding:
    return Finding(category, Severity.HIGH, "sc", "write", {}, "differs", "Why.", field=field)


def test_a_policy_rule_matching_the_steps_path_explains_a_decision() -> None:
    drift = findings(snapshot(**{DATA: "read, update", TTL: "24h", policy_key(APP, "secret/*"): "deny"}))
    decided = behaviour(Category.OUTCOME_MISMATCH, "outcome")
    found = explaining(decided, drift, target=f"secret/data/{APP}/db")
    # The more specific pattern first (Vault applies the highest-priority match).
    assert [f.field for f in found] == [DATA, policy_key(APP, "secret/*")]
    assert [f.field for f in explaining(decided, drift, target="secret/data/billing/db")] == [
        policy_key(APP, "secret/*")
    ]
    assert explaining(decided, drift, target="auth/token/lookup-self") == []
    violated = behaviour(Category.EXPECTATION_VIOLATION, "outcome")
    assert explaining(violated, drift, target=f"/secret/data/{APP}/db")[0].field == DATA


def test_a_policy_present_in_one_environment_only_may_explain_any_decision() -> None:
    staging = {k: v for k, v in snapshot().items() if not k.startswith(policy_key(APP))}
    staging[policy_key(APP)] = ABSENT
    drift = findings(staging)
    found = explaining(behaviour(Category.OUTCOME_MISMATCH, "outcome"), drift, target="anything/at/all")
    assert [f.field for f in found] == [policy_key(APP)]


def test_ttl_drift_explains_a_ttl_difference_of_the_same_role() -> None:
    method = member_key(AUTH_METHODS, "approle/")
    drift = findings(snapshot(**{TTL: "24h", DATA: "read, update", method: "approle (max_lease_ttl 2h)"}))
    ttl = behaviour(Category.GRANT_MISMATCH, "ttl")
    assert [f.field for f in explaining(ttl, drift, identity=f"approle/{APP}")] == [method, TTL]
    assert [f.field for f in explaining(ttl, drift, identity="approle/other")] == [method]
    assert [f.field for f in explaining(ttl, drift, identity="jwt/other")] == []
    # A policy rule does not explain a TTL, whatever the path.
    assert explaining(ttl, drift, target=f"secret/data/{APP}/db") == []


def test_policies_drift_explains_a_policies_difference_and_a_decision() -> None:
    policies = role_key(f"approle/{APP}", "token_policies")
    drift = findings(snapshot(**{policies: f"{APP}, admin, default"}))
    for finding in (
        behaviour(Category.GRANT_MISMATCH, "policies"),
        behaviour(Category.OUTCOME_MISMATCH, "outcome"),
    ):
        assert [f.field for f in explaining(finding, drift, identity=f"approle/{APP}")] == [policies]


def test_only_behavioural_findings_are_explained_and_only_by_drift() -> None:
    drift = findings(snapshot(**{DATA: "read, update"}))
    for category in (
        Category.LATENCY_MISMATCH,
        Category.EVIDENCE_GAP,
        Category.INCONCLUSIVE,
        Category.CONFIG_DRIFT,
    ):
        assert explaining(behaviour(category, "outcome"), drift, target=f"secret/data/{APP}/x") == []
    not_drift = [replace(f, category=Category.INCONCLUSIVE) for f in drift]
    assert (
        explaining(behaviour(Category.OUTCOME_MISMATCH, "outcome"), not_drift, target=f"secret/data/{APP}/x")
        == []
    )


def test_audit_drift_explains_an_evidence_gap() -> None:
    device, header = member_key(AUDIT_DEVICES, "file/"), member_key(AUDITED_HEADERS, "x-correlation-id")
    drift = findings(snapshot(**{device: None, header: None, DATA: "read, update"}))
    gap = behaviour(Category.EVIDENCE_GAP, "evidence")
    assert [f.field for f in explaining(gap, drift, target=f"secret/data/{APP}/db")] == [device, header]
    assert explaining(gap, findings(snapshot(**{DATA: "read, update"}))) == []


def test_explained_adds_the_drift_to_the_explanation() -> None:
    drift = findings(snapshot(**{DATA: "read, update"}))
    decided = behaviour(Category.OUTCOME_MISMATCH, "outcome")
    out = explained(decided, drift, target=f"secret/data/{APP}/db")
    assert out.explanation == (
        "Why. Configuration drift that may explain it: "
        f"staging's policy {APP} adds update on secret/data/{APP}/*."
    )
    assert replace(out, explanation=decided.explanation) == decided
    assert explained(decided, drift, target="elsewhere") is decided


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("secret/data/app", "secret/data/app", True),
        ("secret/data/app", "secret/data/app/x", False),
        ("secret/data/app", "secret/data/app\n", False),
        ("secret/data/app/*", "secret/data/app/x/y", True),
        ("secret/data/app/*", "secret/data/app/", True),
        ("secret/data/app/*", "secret/data/app", False),
        ("secret/zip-*", "secret/zip-zap/zong", True),
        ("secret/+/teamb", "secret/foo/teamb", True),
        ("secret/+/teamb", "secret/foo/bar/teamb", False),
        ("secret/+/teamb/*", "secret/foo/teamb/x", True),
        ("secret/+", "secret/foo", True),
        ("secret/a.b", "secret/aXb", False),  # not a regular expression
        ("secret/data/{{identity.entity.name}}/*", "secret/data/payments/db", True),
        ("secret/data/{{identity.entity.name}}/*", "secret/data/a/b/c", True),
        ("secret/data/{{identity.entity.name}}", "secret/data/a/b", False),
        ("*", "anything/at/all", True),
        ("secret/data/${vars.app}/*", "secret/data/${vars.app}/db", True),
    ],
)
def test_vault_glob_matching(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path) is matches


def test_priority_prefers_what_vault_prefers() -> None:
    ordered = sorted(
        ["secret/*", "secret/data/*", "secret/data/app", "secret/+/app", "secret/data/+"], key=priority
    )
    assert ordered[-1] == "secret/data/app"  # no wildcard at all
    assert ordered.index("secret/data/*") > ordered.index("secret/*")  # wildcard later
    assert ordered.index("secret/data/+") > ordered.index("secret/+/app")


# --- role field values (what the probe records) -----------------------------------------------------------


def same(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("token_ttl", 3600, "1h"),
        ("token_ttl", 0, "0s (the mount's default)"),
        ("secret_id_ttl", 0, "0s (never expires)"),
        ("token_num_uses", 0, "0 (unlimited)"),
        ("token_num_uses", 3, "3"),
        ("token_policies", ["b", "a"], "a, b"),
        ("token_bound_cidrs", [], "(none)"),
        ("secret_id_bound_cidrs", None, "(none)"),  # null and [] alike
        ("bind_secret_id", True, "true"),
        ("bound_claims", {"repo": "a", "env": ["y", "x"]}, '{"env": ["x", "y"], "repo": ["a"]}'),
        ("claim_mappings", {}, "(none)"),
        ("bound_subject", "", "(none)"),
        ("token_type", "batch", "batch"),
    ],
)
def test_role_values_are_shown_normalised(field: str, value: object, shown: str) -> None:
    assert role_fields.show(field, value, same) == shown


def test_role_fields_never_include_secret_ones() -> None:
    for method in ("approle", "jwt", "kubernetes"):
        fields = role_fields.fields(method)
        assert "token_ttl" in fields and "token_policies" in fields
        assert not [f for f in fields if f in ("role_id", "secret_id", "secret_id_accessor")]
