"""Report-wide linking: a decision in one scenario names the configuration drift another scenario found."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from parityprobe.compare.aws_keys import covers
from parityprobe.compare.comparator import compare
from parityprobe.compare.drift import (
    AUDIT_DEVICES,
    AUDITED_HEADERS,
    AUTH_METHODS,
    LISTED,
    PRESENT,
    SNAPSHOT,
    policy_key,
    role_key,
)
from parityprobe.compare.explain import explain
from parityprobe.model import Category, Grant, Observation, Outcome, Run, Severity, Tier
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
VARS = {"staging": {"app": "payments-stg"}, "production": {"app": "payments-prd"}}
TIERS = {"staging": Tier.STAGING, "production": Tier.PRODUCTION}


def run(spec: ScenarioSpec, env: str, *observations: Observation) -> Run:
    facts = EnvironmentFacts(env, TIERS[env], MappingProxyType(VARS[env]))
    return Run(f"r-{spec.id}-{env}", spec, facts, NOW, NOW, observations)


def snapshot(env: str, capabilities: str) -> Observation:
    app = "${vars.app}"
    attributes = {
        SNAPSHOT: "vault configuration",
        AUTH_METHODS: LISTED,
        AUDIT_DEVICES: LISTED,
        AUDITED_HEADERS: LISTED,
        role_key(f"approle/{app}"): PRESENT,
        policy_key(app): PRESENT,
        policy_key(app, f"secret/data/{app}/*"): capabilities,
    }
    grant = Grant(attributes=MappingProxyType(attributes))
    return Observation("config", "vault.config", env, f"pp-c-{env}", Outcome.ALLOWED, NOW, grant=grant)


def write(env: str, outcome: Outcome) -> Observation:
    target = f"secret/data/{VARS[env]['app']}/db"  # each environment's own name for its path
    return Observation("write", "vault.kv_write", env, f"pp-w-{env}", outcome, NOW, target=target)


def test_a_decision_names_the_policy_drift_found_by_another_scenario() -> None:
    config = ScenarioSpec("vault-config", "d1", steps=(StepSpec("config", "vault.config"),))
    writes = ScenarioSpec(
        "vault-writes", "d2", steps=(StepSpec("write", "vault.kv_write", expect_outcome=Outcome.DENIED),)
    )
    comparisons = [
        compare(
            config,
            [
                run(config, "staging", snapshot("staging", "read, update")),
                run(config, "production", snapshot("production", "read")),
            ],
        ),
        compare(
            writes,
            [
                run(writes, "staging", write("staging", Outcome.ALLOWED)),
                run(writes, "production", write("production", Outcome.DENIED)),
            ],
        ),
    ]
    (drift,) = comparisons[0].findings
    assert drift.category is Category.CONFIG_DRIFT and "update" in drift.message
    (violation,) = comparisons[1].findings
    assert violation.severity is Severity.HIGH and "drift" not in violation.explanation

    linked = explain(comparisons)
    (explained,) = linked[1].findings
    assert explained.explanation.endswith(f"Configuration drift that may explain it: {drift.message}.")
    assert linked[0].findings == comparisons[0].findings  # the drift itself is unchanged


def test_without_drift_nothing_changes() -> None:
    writes = ScenarioSpec(
        "vault-writes", "d2", steps=(StepSpec("write", "vault.kv_write", expect_outcome=Outcome.DENIED),)
    )
    comparison = compare(
        writes,
        [
            run(writes, "staging", write("staging", Outcome.ALLOWED)),
            run(writes, "production", write("production", Outcome.DENIED)),
        ],
    )
    assert explain([comparison]) == (comparison,)


def test_an_aws_decision_names_the_iam_statement_with_its_action() -> None:
    staging_value = "Effect Allow; Action iam:AttachUserPolicy, iam:Put*; Resource *"
    statement = "iam user ${vars.workload} policy workload statement AttachPolicies"
    assert covers(statement, [staging_value, "-"], "iam:PutUserPolicy on *")
    assert covers(statement, [staging_value], "IAM:AttachUserPolicy on arn:aws:iam::1:user/x")
    assert not covers(statement, [staging_value], "s3:PutObject on arn:aws:s3:::b/k")
    assert covers(statement, ["Effect Allow; NotAction iam:*; Resource *"], "s3:PutObject on *")
    # Not a statement (a secret's rotation), or not an AWS target (a Vault path): never linked this way.
    assert not covers("secret ${vars.team}/api-key rotation", ["enabled"], "iam:PutUserPolicy on *")
    assert not covers(statement, [staging_value], "secret/data/payments/db")
