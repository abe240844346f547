"""IAM policy documents normalised into statements, the AWS snapshot's keys, and how drift words them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from urllib.parse import quote

import pytest

from parityprobe.compare import aws_keys
from parityprobe.compare.context import StepView
from parityprobe.compare.drift import config_findings
from parityprobe.model import Category, Grant, Observation, Outcome, Severity, Tier
from parityprobe.probes.aws.config import (
    NEVER,
    OVERDUE,
    UNSCHEDULED,
    WITHIN,
    AwsConfigParams,
    rotation_bucket,
    schedule_text,
)
from parityprobe.probes.aws.policy_document import (
    UnreadDocument,
    action_list,
    condition_text,
    principal_text,
    statements,
    substitute,
)
from parityprobe.spec import EnvironmentFacts, StepSpec

STAGING = {"account_id": "111111111111", "app": "pay-stg", "partition": "aws-cn", "region": "cn-north-1"}
PRODUCTION = {"account_id": "222222222222", "app": "pay-prd", "partition": "aws", "region": "eu-west-1"}
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def doc(*statement: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statement)}


def trust(principal: object, **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


# --- substitution -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "variables", "expected"),
    [
        (
            "arn:aws:iam::111111111111:role/pay-stg-deploy",
            STAGING,
            "arn:aws:iam::${vars.account_id}:role/${vars.app}-deploy",
        ),
        ("arn:aws-cn:iam::111111111111:root", STAGING, "arn:${vars.partition}:iam::${vars.account_id}:root"),
        ("arn:aws:iam::222222222222:root", PRODUCTION, "arn:${vars.partition}:iam::${vars.account_id}:root"),
        (
            "arn:aws-cn:secretsmanager:cn-north-1:111111111111:secret:pay-stg/db-*",
            STAGING,
            "arn:${vars.partition}:secretsmanager:${vars.region}:${vars.account_id}:secret:${vars.app}/db-*",
        ),
        ("arn:aws:s3:::pay-stg-bucket/*", STAGING, "arn:aws:s3:::${vars.app}-bucket/*"),
        ("*", STAGING, "*"),
        ("111111111111", STAGING, "${vars.account_id}"),
        ("aws", PRODUCTION, "aws"),  # a short var value is replaced only in an ARN's fields
        ("arn:aws:iam::333333333333:root", STAGING, "arn:aws:iam::333333333333:root"),
        ("arn:broken", STAGING, "arn:broken"),
    ],
)
def test_vars_are_put_back(value: str, variables: dict[str, str], expected: str) -> None:
    assert substitute(value, variables) == expected


# --- fields -----------------------------------------------------------------------------------------------


def test_actions_sorted_deduplicated_prefix_lower_case() -> None:
    assert action_list(["S3:PutObject", "iam:GetUser", "s3:GetObject", "s3:putobject", "*"]) == [
        "*",
        "iam:GetUser",
        "s3:GetObject",
        "s3:PutObject",
    ]
    assert action_list("sts:AssumeRole") == action_list(["sts:AssumeRole"]) == ["sts:AssumeRole"]


def test_principal_forms() -> None:
    assert principal_text("*", {}) == principal_text({"AWS": "*"}, {}) == principal_text({"AWS": ["*"]}, {})
    bare = principal_text({"AWS": "111111111111"}, STAGING)
    assert bare == principal_text({"AWS": ["arn:aws:iam::111111111111:root"]}, STAGING)
    assert bare == principal_text({"AWS": "arn:aws-cn:iam::111111111111:root"}, STAGING)
    assert bare == "AWS ${vars.account_id}"
    assert principal_text({"AWS": "arn:aws:iam::111111111111:user/root"}, {}) != principal_text(
        {"AWS": "111111111111"}, {}
    )
    mixed = {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"], "AWS": "arn:aws:iam::1:user/b"}
    assert principal_text(mixed, {}) == (
        "AWS arn:aws:iam::1:user/b | Service ec2.amazonaws.com, lambda.amazonaws.com"
    )


def test_condition_order_and_scalar_forms() -> None:
    one = {"Bool": {"aws:SecureTransport": True}, "StringEquals": {"aws:SourceVpc": ["b", "a"]}}
    two = {"StringEquals": {"aws:SourceVpc": ["a", "b"]}, "Bool": {"aws:SecureTransport": "true"}}
    assert condition_text(one, {}) == condition_text(two, {})
    assert condition_text(one, {}) == "Bool aws:SecureTransport = true | StringEquals aws:SourceVpc = a, b"
    by_account = {"StringEquals": {"aws:SourceAccount": "111111111111"}}
    assert condition_text(by_account, STAGING) == "StringEquals aws:SourceAccount = ${vars.account_id}"


def test_an_external_id_is_compared_by_digest_and_never_shown() -> None:
    approval = "s3cr3t-approval-id"
    text = condition_text({"StringEquals": {"sts:ExternalId": approval}}, {})
    assert approval not in text and text.startswith("StringEquals sts:ExternalId = sha256:")
    assert text == condition_text({"StringEquals": {"STS:ExternalId": [approval]}}, {}).replace("STS", "sts")
    assert text != condition_text({"StringEquals": {"sts:ExternalId": "another-id"}}, {})


# --- documents --------------------------------------------------------------------------------------------


def test_equal_meaning_gives_equal_statements_across_accounts() -> None:
    stg = doc(
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "KMS:Decrypt"],
            "Resource": [
                "arn:aws-cn:secretsmanager:cn-north-1:111111111111:secret:pay-stg/*",
                "arn:aws-cn:kms:cn-north-1:111111111111:key/k",
            ],
        },
        trust({"AWS": "111111111111"}),
    )
    prd = doc(
        trust({"AWS": ["arn:aws:iam::222222222222:root"]}),
        {
            "Action": ["kms:Decrypt", "secretsmanager:GetSecretValue", "kms:Decrypt"],
            "Resource": [
                "arn:aws:kms:eu-west-1:222222222222:key/k",
                "arn:aws:secretsmanager:eu-west-1:222222222222:secret:pay-prd/*",
            ],
            "Effect": "Allow",
        },
    )
    s, p = statements(stg, STAGING), statements(quote(json.dumps(prd)), PRODUCTION)
    assert s == p
    assert isinstance(s, dict) and set(s) == {
        "Allow kms:Decrypt, secretsmanager:GetSecretValue",
        "Allow sts:AssumeRole",
    }
    assert s["Allow sts:AssumeRole"] == (
        "Effect Allow; Principal AWS ${vars.account_id}; Action sts:AssumeRole"
    )


def test_single_statement_object_and_url_encoded_text() -> None:
    single = {"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}}
    listed = doc({"Effect": "Deny", "NotAction": ["iam:*"], "Resource": ["*"]})
    assert (
        statements(single, {})
        == statements(json.dumps(listed), {})
        == statements(quote(json.dumps(listed)), {})
    )
    assert statements(single, {}) == {"Deny not iam:*": "Effect Deny; NotAction iam:*; Resource *"}


def test_sid_labels_and_duplicates() -> None:
    found = statements(
        doc(
            {"Sid": "ReadOwn", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            trust({"AWS": "arn:aws:iam::1:user/b"}),
            trust({"AWS": "arn:aws:iam::1:user/a"}),
        ),
        {},
    )
    assert isinstance(found, dict)
    assert list(found) == ["Allow sts:AssumeRole", "Allow sts:AssumeRole #2", "ReadOwn"]
    assert found["Allow sts:AssumeRole"].startswith("Effect Allow; Principal AWS arn:aws:iam::1:user/a")


def test_a_long_action_list_gets_a_short_stable_label() -> None:
    actions = [f"ec2:Describe{name}" for name in ("Instances", "Volumes", "Snapshots", "Images", "Vpcs")]
    one = statements(doc({"Effect": "Allow", "Action": actions, "Resource": "*"}), {})
    two = statements(doc({"Effect": "Allow", "Action": list(reversed(actions)), "Resource": "*"}), {})
    assert isinstance(one, dict) and one == two
    [label] = one
    assert label.startswith("Allow ec2:DescribeImages and 4 more (") and len(label) < 60


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "%7Bbroken",
        json.dumps({"Version": "x"}),
        json.dumps(doc("text")),
        {"Statement": [{"Effect": {}}]},
    ],
)
def test_unreadable_documents_are_a_digest(document: object) -> None:
    found = statements(document, {})
    assert isinstance(found, UnreadDocument) and found.digest.startswith("sha256:")
    assert statements(document, {}) == found


# --- rotation buckets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"AutomaticallyAfterDays": 30}, "every 30 days"),
        ({"AutomaticallyAfterDays": 30, "Duration": "3h"}, "every 30 days, window 3h"),
        ({"ScheduleExpression": "rate(10  days)"}, "rate(10 days)"),
        ({"AutomaticallyAfterDays": 0}, "(not set)"),
        ({}, "(not set)"),
    ],
)
def test_schedule_text(rules: dict[str, object], expected: str) -> None:
    assert schedule_text(rules) == expected


def test_rotation_buckets() -> None:
    days = {"AutomaticallyAfterDays": 30}
    assert rotation_bucket(None, None, days, NOW) == NEVER
    assert rotation_bucket(NOW - timedelta(days=30, hours=23), None, days, NOW) == WITHIN
    assert rotation_bucket(NOW - timedelta(days=31, hours=1), None, days, NOW) == OVERDUE
    short_window = {**days, "Duration": "2h"}
    assert rotation_bucket(NOW - timedelta(days=30, hours=3), None, short_window, NOW) == OVERDUE
    rate = {"ScheduleExpression": "rate(12 hours)"}
    assert rotation_bucket(NOW - timedelta(hours=30), None, rate, NOW) == WITHIN
    assert rotation_bucket(NOW - timedelta(hours=37), None, rate, NOW) == OVERDUE
    cron = {"ScheduleExpression": "cron(0 8 1 * ? *)"}
    assert rotation_bucket(NOW - timedelta(days=60), NOW + timedelta(days=1), cron, NOW) == WITHIN
    assert rotation_bucket(NOW - timedelta(days=60), NOW - timedelta(days=2), cron, NOW) == OVERDUE
    assert rotation_bucket(NOW - timedelta(days=60), None, {}, NOW) == UNSCHEDULED
    # A timestamp in another zone (boto3 gives tzlocal) or without one (taken as UTC) is the same moment.
    tokyo = (NOW - timedelta(days=31, hours=1)).astimezone(timezone(timedelta(hours=9)))
    assert rotation_bucket(tokyo, None, days, NOW) == OVERDUE
    assert rotation_bucket((NOW - timedelta(days=1)).replace(tzinfo=None), None, days, NOW) == WITHIN


def test_params_need_something_and_no_repeats() -> None:
    with pytest.raises(ValueError, match="at least one"):
        AwsConfigParams.model_validate({})
    with pytest.raises(ValueError, match="each role"):
        AwsConfigParams.model_validate({"roles": ["a", "a"]})
    with pytest.raises(ValueError):
        AwsConfigParams.model_validate({"users": ["has space"]})


# --- keys and drift ---------------------------------------------------------------------------------------

ROLE = aws_keys.principal_key("role", "${vars.app}-deploy")
TRUST = aws_keys.document_key("role", "${vars.app}-deploy")
INLINE = aws_keys.listing_key("role", "${vars.app}-deploy", aws_keys.INLINE)
POLICY = aws_keys.document_key("role", "${vars.app}-deploy", "reads")
MANAGED_LIST = aws_keys.listing_key("role", "${vars.app}-deploy", aws_keys.MANAGED)
MANAGED = aws_keys.document_key("role", "${vars.app}-deploy", "ReadOnly", managed=True)
ASSUME = aws_keys.statement_key(TRUST, "Allow sts:AssumeRole")
READS = aws_keys.statement_key(POLICY, "ReadOwn")
SECRET = aws_keys.secret_key("${vars.app}/db")
ROTATION = aws_keys.secret_key("${vars.app}/db", aws_keys.ROTATION)
SCHEDULE = aws_keys.secret_key("${vars.app}/db", aws_keys.SCHEDULE)
LAST = aws_keys.secret_key("${vars.app}/db", aws_keys.LAST_ROTATED)


def test_key_parents() -> None:
    assert aws_keys.parent(ROLE) is None and aws_keys.parent(SECRET) is None
    assert aws_keys.parent(TRUST) == ROLE and aws_keys.parent(INLINE) == ROLE
    assert aws_keys.parent(POLICY) == INLINE and aws_keys.parent(MANAGED) == MANAGED_LIST
    assert aws_keys.parent(ASSUME) == TRUST and aws_keys.parent(READS) == POLICY
    assert aws_keys.parent(aws_keys.statement_key(MANAGED, "Allow s3:Get*")) == MANAGED
    assert aws_keys.parent(ROTATION) == SECRET
    assert aws_keys.parent(SCHEDULE) == ROTATION and aws_keys.parent(LAST) == ROTATION
    assert aws_keys.parent("policy payments path secret/*") is None  # not an AWS key
    assert not aws_keys.is_aws_key("role approle/x token_ttl")


def test_statement_text_round_trip() -> None:
    text = aws_keys.statement_text([("Effect", "Allow"), ("Action", "a:B; C"), ("Condition", "X k = v")])
    assert aws_keys.statement_fields(text) == {"Effect": "Allow", "Action": "a:B; C", "Condition": "X k = v"}


def _snapshot(**changes: str | None) -> dict[str, str]:
    base = {
        "snapshot": aws_keys.SNAPSHOT,
        ROLE: "present",
        TRUST: "present",
        ASSUME: "Effect Allow; Principal AWS arn:aws:iam::${vars.account_id}:user/ci; Action sts:AssumeRole",
        INLINE: "listed",
        POLICY: "present",
        READS: "Effect Allow; Action s3:GetObject; Resource arn:aws:s3:::${vars.app}/*",
        MANAGED_LIST: "listed",
        SECRET: "present",
        ROTATION: "enabled",
        SCHEDULE: "every 30 days",
        LAST: WITHIN,
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def _view(staging: dict[str, str], production: dict[str, str]) -> StepView:
    observations = tuple(
        Observation(
            "config",
            "aws.config",
            env,
            f"pp-x-{env}",
            Outcome.ALLOWED,
            NOW,
            grant=Grant(attributes=MappingProxyType(attributes)),
        )
        for env, attributes in (("staging", staging), ("production", production))
    )
    facts = (EnvironmentFacts("staging", Tier.STAGING), EnvironmentFacts("production", Tier.PRODUCTION))
    return StepView("sc", StepSpec("config", "aws.config"), facts, observations)


def test_equal_snapshots_give_no_finding() -> None:
    assert config_findings(_view(_snapshot(), _snapshot())) == []


def test_a_differing_trust_principal_is_one_finding_naming_it() -> None:
    wider = "Effect Allow; Principal AWS *; Action sts:AssumeRole"
    [finding] = config_findings(_view(_snapshot(**{ASSUME: wider}), _snapshot()))
    assert (finding.category, finding.severity, finding.field) == (
        Category.CONFIG_DRIFT,
        Severity.HIGH,
        ASSUME,
    )
    assert finding.message == (
        "staging's role ${vars.app}-deploy trust statement Allow sts:AssumeRole has Principal AWS *; "
        "production's has Principal AWS arn:aws:iam::${vars.account_id}:user/ci"
    )
    assert "who may assume the role" in finding.explanation


def test_statements_and_policies_present_on_one_side() -> None:
    extra = aws_keys.statement_key(POLICY, "WriteAll")
    findings = config_findings(
        _view(_snapshot(**{extra: "Effect Allow; Action s3:*; Resource *"}), _snapshot(**{READS: None}))
    )
    messages = {f.field: f.message for f in findings}
    assert messages == {
        extra: "staging's role ${vars.app}-deploy policy reads has statement WriteAll: "
        "Effect Allow; Action s3:*; Resource *; production's has none",
        READS: "staging's role ${vars.app}-deploy policy reads has statement ReadOwn: Effect Allow; "
        "Action s3:GetObject; Resource arn:aws:s3:::${vars.app}/*; production's has none",
    }
    # A policy missing on one side is one finding; its statements are not compared.
    [whole] = config_findings(_view(_snapshot(), _snapshot(**{POLICY: None, READS: None})))
    assert whole.field == POLICY and whole.severity is Severity.HIGH
    assert (
        whole.message == "staging's role ${vars.app}-deploy has policy reads (present); production's has none"
    )


def test_an_unlisted_policy_set_is_inconclusive_not_drift() -> None:
    refused = _snapshot(**{INLINE: "not readable (AccessDenied)", POLICY: None, READS: None})
    findings = config_findings(_view(refused, _snapshot()))
    assert [(f.category, f.field) for f in findings] == [(Category.INCONCLUSIVE, INLINE)]


def test_rotation_differences() -> None:
    [disabled] = config_findings(_view(_snapshot(**{ROTATION: "disabled", LAST: NEVER}), _snapshot()))
    assert disabled.field == ROTATION and disabled.severity is Severity.MEDIUM
    assert disabled.message == "staging's secret ${vars.app}/db rotation is disabled; production's is enabled"
    assert "rotation" in disabled.explanation.lower()
    [late] = config_findings(_view(_snapshot(**{LAST: OVERDUE}), _snapshot()))
    assert (
        late.message
        == "staging's secret ${vars.app}/db last rotated is overdue; production's is within schedule"
    )


def test_an_absent_role_is_one_finding() -> None:
    absent = {
        "snapshot": aws_keys.SNAPSHOT,
        ROLE: "absent",
        **{k: v for k, v in _snapshot().items() if k.startswith("secret")},
    }
    [finding] = config_findings(_view(absent, _snapshot()))
    assert finding.field == ROLE
    assert finding.message == "staging's role ${vars.app}-deploy is absent; production's is present"
