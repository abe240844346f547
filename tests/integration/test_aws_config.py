"""aws.config against two real moto servers (IAM enforcement on, one account each), and the config_drift
findings its snapshots produce.

Both accounts hold the workload's role (trust policy, an inline policy, an attached managed policy), a user
and a secret, under each environment's names (vars tell them apart: the account id and the app name), written
differently where the meaning is the same (statement, action and resource order, single values against
lists, a bare account id against its root ARN). Three gaps are planted: staging's trust policy lets one more
principal assume the role, one inline statement allows ``s3:*`` in staging where production allows
``s3:PutObject``, and only production rotates the secret.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from parityprobe.compare.context import StepView
from parityprobe.compare.drift import config_findings
from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import Category, Observation, Outcome, Severity, Tier
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.aws.config import AwsConfig
from parityprobe.spec import EnvironmentFacts, StepSpec
from tests.aws_support import (
    ALLOW_ALL,
    REGION,
    Key,
    Statement,
    bootstrap_client,
    enforce,
    key_environment,
    moto_server,
    seed_users,
)
from tests.probe_support import observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
CONFIG = AwsConfig()
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SECRET_VALUE = "db-password-" + secrets.token_hex(8)
ROLE = "${vars.app}-deploy"
TRUST = f"iam role {ROLE} trust statement Allow sts:AssumeRole"
WRITE = f"iam role {ROLE} policy reads statement Write"
ROTATION = "secret ${vars.app}/db rotation"


@dataclass(frozen=True)
class Side:
    name: str
    tier: Tier
    server: ServerProcess
    vars: dict[str, str]
    keys: dict[str, Key]

    @property
    def account(self) -> str:
        return self.vars["account_id"]

    @property
    def app(self) -> str:
        return self.vars["app"]

    def params(self) -> dict[str, object]:
        return {"roles": [f"{self.app}-deploy"], "users": ["ci"], "secrets": [f"{self.app}/db"]}


def _statements(side: Side, staging: bool) -> dict[str, Any]:
    account, app = side.account, side.app
    principals: list[str] = [f"arn:aws:iam::{account}:user/ci", account]
    if staging:
        principals.append(f"arn:aws:iam::{account}:user/ops")  # planted: one more principal
        trust = {
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}]
        }
    else:
        trust = {
            "Statement": {
                "Action": ["sts:AssumeRole"],
                "Principal": {"AWS": principals[::-1]},
                "Effect": "Allow",
            }
        }
    read = {
        "Sid": "ReadOwn",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "SecretsManager:DescribeSecret"],
        "Resource": [
            f"arn:aws:secretsmanager:{REGION}:{account}:secret:{app}/*",
            f"arn:aws:s3:::{app}-reports/*",
        ],
    }
    if not staging:
        read = {**read, "Action": read["Action"][::-1], "Resource": read["Resource"][::-1]}
    write = {
        "Sid": "Write",
        "Effect": "Allow",
        "Action": "s3:*" if staging else "s3:PutObject",  # planted
        "Resource": f"arn:aws:s3:::{app}-reports/*",
    }
    managed = {
        "Effect": "Allow",
        "Action": "logs:PutLogEvents",
        "Resource": f"arn:aws:logs:{REGION}:{account}:*",
    }
    user = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": f"arn:aws:iam::{account}:role/{app}-deploy",
    }
    return {
        "trust": {"Version": "2012-10-17", **trust},
        "inline": {"Version": "2012-10-17", "Statement": [read, write] if staging else [write, read]},
        "managed": {"Version": "2012-10-17", "Statement": [managed]},
        "user": {"Version": "2012-10-17", "Statement": user if staging else [user]},
    }


POLICIES: dict[str, list[Statement]] = {
    "admin": ALLOW_ALL,
    "secrets-only": [{"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}],
    "nobody": [],
}


def _seed(side: Side, staging: bool) -> None:
    side.keys.update(seed_users(side.server.url, POLICIES))
    iam = bootstrap_client(side.server.url, "iam")
    documents = _statements(side, staging)
    role = f"{side.app}-deploy"
    iam.create_user(UserName="ci")
    iam.create_user(UserName="ops")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(documents["trust"]))
    iam.put_role_policy(RoleName=role, PolicyName="reads", PolicyDocument=json.dumps(documents["inline"]))
    arn = iam.create_policy(PolicyName="logs", PolicyDocument=json.dumps(documents["managed"]))["Policy"][
        "Arn"
    ]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    iam.put_user_policy(UserName="ci", PolicyName="assume", PolicyDocument=json.dumps(documents["user"]))
    sm = bootstrap_client(side.server.url, "secretsmanager")
    sm.create_secret(Name=f"{side.app}/db", SecretString=SECRET_VALUE)
    if not staging:  # planted: production rotates (moto: no Lambda, the value is copied to a new version)
        sm.rotate_secret(
            SecretId=f"{side.app}/db", RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
        )


@dataclass(frozen=True)
class Pair:
    staging: Side
    production: Side


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with ExitStack() as servers:
        sides = []
        for name, tier, account in (
            ("staging", Tier.STAGING, "111111111111"),
            ("production", Tier.PRODUCTION, "222222222222"),
        ):
            server = servers.enter_context(
                moto_server(tmp_path_factory.mktemp(f"aws-config-{name}"), account)
            )
            app = f"pay-{RUN}-{name[:3]}"
            side = Side(name, tier, server, {"account_id": account, "app": app}, {})
            _seed(side, staging=tier is Tier.STAGING)
            enforce(server.url)
            sides.append(side)
        yield Pair(*sides)


def _env(side: Side, tmp_path: Path, user: str = "admin", endpoint: str | None = None) -> Environment:
    return key_environment(
        tmp_path,
        endpoint or side.server.url,
        side.keys[user],
        files=f"{side.name}-{user}",
        name=side.name,
        tier=side.tier.value,
        vars=side.vars,
    )


def snapshot(side: Side, tmp_path: Path, user: str = "admin", **params: object) -> ProbeResult | Failure:
    ctx = probe_context(_env(side, tmp_path, user), f"config-{side.name}-{user}", run=RUN)
    result = observe(CONFIG, params or side.params(), ctx)
    assert ctx.timer.used
    return result


def observation(side: Side, result: ProbeResult | Failure) -> Observation:
    assert isinstance(result, ProbeResult)
    return Observation(
        "config",
        CONFIG.name,
        side.name,
        f"pp-{RUN}-config",
        result.outcome,
        NOW,
        reason=result.reason,
        grant=result.grant,
    )


def view(pair: Pair, staging: Observation, production: Observation) -> StepView:
    facts = (
        EnvironmentFacts("staging", Tier.STAGING, pair.staging.vars),
        EnvironmentFacts("production", Tier.PRODUCTION, pair.production.vars),
    )
    return StepView("drift", StepSpec("config", CONFIG.name), facts, (staging, production))


def test_snapshots_differ_exactly_in_the_planted_fields(pair: Pair, tmp_path: Path) -> None:
    stg, prod = snapshot(pair.staging, tmp_path), snapshot(pair.production, tmp_path)
    assert isinstance(stg, ProbeResult) and isinstance(prod, ProbeResult)
    assert (stg.outcome, prod.outcome, stg.reason, prod.reason) == (Outcome.ALLOWED,) * 2 + (None,) * 2
    s, p = stg.grant.attributes, prod.grant.attributes
    differing = {k for k in set(s) | set(p) if s.get(k) != p.get(k)}
    # The schedule and last rotation follow rotation itself (their parent), so they differ too, unreported.
    schedule, last = f"{ROTATION} schedule", "secret ${vars.app}/db last rotated"
    assert differing == {TRUST, WRITE, ROTATION, schedule, last}
    assert (s[ROTATION], p[ROTATION]) == ("disabled", "enabled")
    assert (s[schedule], p[schedule], s[last], p[last]) == (
        "(not set)",
        "every 30 days",
        "never",
        "within schedule",
    )
    # Equal where equal, across accounts, names and the written forms.
    assert p[TRUST] == (
        "Effect Allow; Principal AWS ${vars.account_id}, arn:aws:iam::${vars.account_id}:user/ci; "
        "Action sts:AssumeRole"
    )
    assert s[f"iam role {ROLE} policy reads statement ReadOwn"] == (
        "Effect Allow; Action secretsmanager:DescribeSecret, secretsmanager:GetSecretValue; "
        "Resource arn:aws:s3:::${vars.app}-reports/*, "
        "arn:aws:secretsmanager:us-east-1:${vars.account_id}:secret:${vars.app}/*"
    )
    assert s[f"iam role {ROLE} managed policy logs statement Allow logs:PutLogEvents"] == (
        "Effect Allow; Action logs:PutLogEvents; Resource arn:aws:logs:us-east-1:${vars.account_id}:*"
    )
    assert s["iam user ci policy assume statement Allow sts:AssumeRole"] == (
        "Effect Allow; Action sts:AssumeRole; "
        "Resource arn:aws:iam::${vars.account_id}:role/${vars.app}-deploy"
    )
    assert s["iam user ci"] == s[f"iam role {ROLE}"] == "present"
    for result in (stg, prod):
        assert SECRET_VALUE not in repr(result)
        assert not [v for v in result.grant.attributes.values() if "111111111111" in v or "222222222222" in v]


def test_findings_name_each_planted_difference(pair: Pair, tmp_path: Path) -> None:
    stg = observation(pair.staging, snapshot(pair.staging, tmp_path))
    prod = observation(pair.production, snapshot(pair.production, tmp_path))
    findings = config_findings(view(pair, stg, prod))
    assert {f.category for f in findings} == {Category.CONFIG_DRIFT}
    by_field = {f.field: f for f in findings}
    assert set(by_field) == {TRUST, WRITE, ROTATION}
    trust = by_field[TRUST]
    assert trust.severity is Severity.HIGH
    assert trust.message == (
        f"staging's role {ROLE} trust statement Allow sts:AssumeRole has Principal AWS ${{vars.account_id}}, "
        "arn:aws:iam::${vars.account_id}:user/ci, arn:aws:iam::${vars.account_id}:user/ops; "
        "production's has Principal AWS ${vars.account_id}, arn:aws:iam::${vars.account_id}:user/ci"
    )
    write = by_field[WRITE]
    assert write.severity is Severity.HIGH
    assert write.message == (
        f"staging's role {ROLE} policy reads statement Write has Action s3:*; "
        "production's has Action s3:PutObject"
    )
    assert write.environments == {
        "staging": "Effect Allow; Action s3:*; Resource arn:aws:s3:::${vars.app}-reports/*",
        "production": "Effect Allow; Action s3:PutObject; Resource arn:aws:s3:::${vars.app}-reports/*",
    }
    rotation = by_field[ROTATION]
    assert rotation.severity is Severity.MEDIUM
    assert rotation.message == "staging's secret ${vars.app}/db rotation is disabled; production's is enabled"


def test_an_identity_that_may_read_only_secrets_leaves_iam_inconclusive(pair: Pair, tmp_path: Path) -> None:
    results = {
        side.name: snapshot(side, tmp_path, "secrets-only") for side in (pair.staging, pair.production)
    }
    for result in results.values():
        assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
        assert result.reason == f"not readable: iam role {ROLE}, iam user ci"
        assert result.grant.attributes[f"iam role {ROLE}"] == "not readable (AccessDenied)"
    findings = config_findings(
        view(
            pair,
            observation(pair.staging, results["staging"]),
            observation(pair.production, results["production"]),
        )
    )
    assert {(f.category, f.field) for f in findings} == {
        (Category.INCONCLUSIVE, f"iam role {ROLE}"),
        (Category.INCONCLUSIVE, "iam user ci"),
        (Category.CONFIG_DRIFT, ROTATION),
    }


def test_an_identity_that_may_read_nothing_is_denied(pair: Pair, tmp_path: Path) -> None:
    assert snapshot(pair.staging, tmp_path, "nobody") == ProbeResult(Outcome.DENIED, reason="AccessDenied")


def test_absent_parts_are_recorded_as_absent(pair: Pair, tmp_path: Path) -> None:
    result = snapshot(
        pair.staging, tmp_path, roles=[f"none-{RUN}"], users=[f"none-{RUN}"], secrets=[f"none/{RUN}"]
    )
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert {k: v for k, v in result.grant.attributes.items() if k != "snapshot"} == {
        f"iam role none-{RUN}": "absent",
        f"iam user none-{RUN}": "absent",
        f"secret none/{RUN}": "absent",
    }


def test_an_unreachable_endpoint_is_an_error_not_a_verdict(pair: Pair, tmp_path: Path) -> None:
    env = _env(pair.staging, tmp_path, endpoint="http://127.0.0.1:9")
    result = observe(CONFIG, {"roles": ["x"]}, probe_context(env, "dead", run=RUN, seconds=5))
    assert isinstance(result, Failure) and result.outcome is Outcome.ERROR
