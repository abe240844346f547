"""``aws.call`` and the IAM access-key escalation check against a real moto server with IAM enforcement on.

The module owns its moto server (enforcement is per server process). Seeding is done before enforcement
with the bootstrap key; afterwards the admin user (Allow *) inspects and cleans up.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parityprobe.config.environments import Environment
from parityprobe.config.plan import least_effect
from parityprobe.model import Effect, ErrorKind, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.aws.call import (
    ABSENT_AUTHORIZED,
    ABSENT_PREFIX,
    DRY_RUN_IGNORED,
    PRECONDITION_AUTHORIZED,
    AwsCall,
    AwsCallParams,
)
from parityprobe.probes.aws.errors import DRY_RUN_PASSED, REFUSED_BY_STATE
from parityprobe.probes.aws.iam import (
    CREATED_AND_DELETED,
    DELETE_ACCESS_KEY,
    IamCreateAccessKey,
    IamDeleteAccessKey,
)
from parityprobe.undo import MemoryJournal, RunJournal
from tests.aws_support import (
    ACCOUNT,
    ALLOW_ALL,
    Key,
    Lab,
    bootstrap_client,
    enforce,
    key_environment,
    moto_server,
    run_undos,
    seed_users,
)
from tests.probe_support import observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(6)
BUCKET = "pp-call-objects"
OBJECT_KEY = "reports/q1.csv"
OBJECT_BODY = b"quarter,total\nq1,10\n"
VICTIM, FULL_USER = "victim", "full-keys"
CALL, CREATE, DELETE = AwsCall(), IamCreateAccessKey(), IamDeleteAccessKey()
ESCALATOR_POLICY = [
    {
        "Effect": "Allow",
        "Action": [
            "iam:CreateAccessKey",
            "iam:DeleteAccessKey",
            "iam:GetUser",
            "ec2:CreateSecurityGroup",
            "ec2:CreateVpc",
            "ec2:DescribeInstances",
            "s3:PutObject",
        ],
        "Resource": "*",
    }
]


def _seed(url: str) -> dict[str, Key]:
    keys = seed_users(
        url,
        {
            "admin": ALLOW_ALL,
            "escalator": ESCALATOR_POLICY,
            # May create keys but not delete them: the immediate delete fails.
            "creator": [{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}],
            "bystander": [],
            # Everything but CreateAccessKey: AWS would call this an explicit deny (moto does not say so).
            "denied": [*ALLOW_ALL, {"Effect": "Deny", "Action": "iam:CreateAccessKey", "Resource": "*"}],
        },
    )
    iam = bootstrap_client(url, "iam")
    iam.create_user(UserName=VICTIM)
    iam.create_user(UserName=FULL_USER)
    for _ in range(2):  # IAM's quota: two keys per user
        iam.create_access_key(UserName=FULL_USER)
    s3 = bootstrap_client(url, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=OBJECT_KEY, Body=OBJECT_BODY)
    return keys


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with moto_server(tmp_path_factory.mktemp("aws-call")) as server:
        keys = _seed(server.url)
        enforce(server.url)
        yield Lab(server, keys)


def _env(lab: Lab, tmp_path: Path, user: str, *, write: bool = False) -> Environment:
    safety = {"allow_effects": ["read", "write"] if write else ["read"]}
    return key_environment(tmp_path, lab.server.url, lab.keys[user], files=user, safety=safety)


def _ctx(env: Environment, step: str, journal: RunJournal | None = None) -> ProbeContext:
    return dataclasses.replace(probe_context(env, step, run=RUN), journal=journal)


def _journal(env: Environment) -> RunJournal:
    return RunJournal(MemoryJournal(), RUN, env.name)


def _keys_of(lab: Lab, user: str) -> list[str]:
    return [k["AccessKeyId"] for k in lab.admin("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]]


def _security_groups(lab: Lab, name: str) -> list[Any]:
    groups = lab.admin("ec2").describe_security_groups()["SecurityGroups"]
    return [group for group in groups if group["GroupName"] == name]


DENIED = Failure(Outcome.DENIED, "AccessDenied")


# --- effect and parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_", "effect"),
    [
        ({"service": "iam", "operation": "GetUser"}, Effect.READ),
        ({"service": "iam", "operation": "ListAccessKeys"}, Effect.READ),
        ({"service": "ec2", "operation": "DescribeInstances"}, Effect.READ),
        ({"service": "s3", "operation": "HeadObject"}, Effect.READ),
        ({"service": "iam", "operation": "CreateAccessKey"}, Effect.WRITE),
        ({"service": "iam", "operation": "Getaway"}, Effect.WRITE),  # not a Get operation
        ({"service": "ec2", "operation": "CreateVpc", "params": {"DryRun": True}}, Effect.READ),
        ({"service": "ec2", "operation": "CreateVpc", "params": {"DryRun": False}}, Effect.WRITE),
        ({"service": "iam", "operation": "DeleteUser", "probe_target": "absent"}, Effect.READ),
        ({"service": "iam", "operation": "${{ vars.op }}"}, Effect.WRITE),
    ],
)
def test_effect_follows_the_operation(with_: dict[str, Any], effect: Effect) -> None:
    assert AwsCall.effect_for(with_) is effect
    assert least_effect(AwsCall, with_) is effect


@pytest.mark.parametrize(
    ("with_", "message"),
    [
        ({"service": "nosuchservice", "operation": "GetUser"}, "unknown AWS service"),
        ({"service": "iam", "operation": "GetUserz"}, "has no operation"),
        ({"service": "iam", "operation": "GetUser", "params": {"Username": "x"}}, "takes no parameter"),
        ({"service": "iam", "operation": "CreateUser", "probe_target": "absent"}, "would create"),
        ({"service": "iam", "operation": "ListUsers", "probe_target": "absent"}, "names no user"),
        ({"service": "ec2", "operation": "CreateVpc", "probe_target": "absent"}, "iam and s3"),
        ({"service": "s3", "operation": "CreateBucket", "probe_target": "absent"}, "IfMatch"),
        (
            {"service": "s3", "operation": "PutObject", "probe_target": "absent", "params": {"IfMatch": "x"}},
            "sets IfMatch itself",
        ),
    ],
)
def test_parameters_are_checked_against_the_service_model(with_: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AwsCall.Params.model_validate(with_)


# --- aws.call ---------------------------------------------------------------------------------------------


def test_read_allowed(lab: Lab, tmp_path: Path) -> None:
    ctx = _ctx(_env(lab, tmp_path, "escalator"), "get-user")
    result = observe(CALL, {"service": "iam", "operation": "GetUser", "params": {"UserName": VICTIM}}, ctx)
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.ALLOWED, None)
    assert result.outputs == {"status": "200", "arn": f"arn:aws:iam::{ACCOUNT}:user/{VICTIM}", "id": ""}
    assert ctx.timer.used


def test_read_denied(lab: Lab, tmp_path: Path) -> None:
    ctx = _ctx(_env(lab, tmp_path, "bystander"), "get-user-denied")
    result = observe(CALL, {"service": "iam", "operation": "GetUser", "params": {"UserName": VICTIM}}, ctx)
    assert result == DENIED


def test_json_protocol_deny_is_normalised(lab: Lab, tmp_path: Path) -> None:
    ctx = _ctx(_env(lab, tmp_path, "bystander"), "list-secrets")
    assert observe(CALL, {"service": "secretsmanager", "operation": "ListSecrets"}, ctx) == DENIED


def test_caller_identity_names_the_caller(lab: Lab, tmp_path: Path) -> None:
    ctx = _ctx(_env(lab, tmp_path, "bystander"), "whoami")
    result = observe(CALL, {"service": "sts", "operation": "GetCallerIdentity"}, ctx)
    assert isinstance(result, ProbeResult)
    assert result.grant.identity == f"arn:aws:iam::{ACCOUNT}:user/bystander"


def test_write_refused_in_a_read_only_environment_before_any_request(lab: Lab, tmp_path: Path) -> None:
    name = "pp-ro-" + secrets.token_hex(4)
    params = {"service": "ec2", "operation": "CreateSecurityGroup"}
    params["params"] = {"GroupName": name, "Description": "parityprobe"}  # type: ignore[assignment]
    ctx = _ctx(_env(lab, tmp_path, "admin"), "write-read-only")
    result = observe(CALL, params, ctx)
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert "allow write" in result.reason
    assert not ctx.timer.used
    assert _security_groups(lab, name) == []


def test_real_write_outputs_only_known_non_secret_fields(lab: Lab, tmp_path: Path) -> None:
    ctx = _ctx(_env(lab, tmp_path, "escalator", write=True), "real-create-key")
    params = {"service": "iam", "operation": "CreateAccessKey", "params": {"UserName": VICTIM}}
    result = observe(CALL, params, ctx)
    try:
        assert isinstance(result, ProbeResult) and result.reason is None
        key_id = result.outputs["id"]
        assert isinstance(key_id, str) and key_id in _keys_of(lab, VICTIM)
        assert set(result.outputs) == {"status", "arn", "id"}
        assert "SecretAccessKey" not in repr(result)
    finally:
        for key in _keys_of(lab, VICTIM):
            lab.admin("iam").delete_access_key(UserName=VICTIM, AccessKeyId=key)


@pytest.mark.parametrize(("user", "expected"), [("escalator", DRY_RUN_PASSED), ("bystander", None)])
def test_dry_run_is_honoured_for_create_security_group(
    lab: Lab, tmp_path: Path, user: str, expected: str | None
) -> None:
    name = "pp-dry-" + secrets.token_hex(4)
    params = {
        "service": "ec2",
        "operation": "CreateSecurityGroup",
        "params": {"GroupName": name, "Description": "parityprobe", "DryRun": True},
    }
    result = observe(CALL, params, _ctx(_env(lab, tmp_path, user), "dry-sg"))
    if expected is None:
        assert result == DENIED
    else:
        assert result == Failure(Outcome.ALLOWED, expected)
    assert _security_groups(lab, name) == []


def test_dry_run_describe_instances(lab: Lab, tmp_path: Path) -> None:
    params = {"service": "ec2", "operation": "DescribeInstances", "params": {"DryRun": True}}
    result = observe(CALL, params, _ctx(_env(lab, tmp_path, "escalator"), "dry-describe"))
    assert result == Failure(Outcome.ALLOWED, DRY_RUN_PASSED)


def test_dry_run_ignored_by_the_target_is_reported_as_a_change(lab: Lab, tmp_path: Path) -> None:
    # moto's CreateVpc does not look at DryRun: the VPC is created, and the result must say so.
    cidr = "10.99.0.0/16"
    params = {"service": "ec2", "operation": "CreateVpc", "params": {"CidrBlock": cidr, "DryRun": True}}
    result = observe(CALL, params, _ctx(_env(lab, tmp_path, "escalator"), "dry-vpc"))
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.ALLOWED, DRY_RUN_IGNORED)
    vpc_id = result.outputs["id"]
    assert isinstance(vpc_id, str) and vpc_id.startswith("vpc-")
    lab.admin("ec2").delete_vpc(VpcId=vpc_id)


@pytest.mark.parametrize(
    ("user", "operation", "expected"),
    [
        ("escalator", "CreateAccessKey", Failure(Outcome.ALLOWED, ABSENT_AUTHORIZED)),
        ("escalator", "GetUser", Failure(Outcome.ALLOWED, ABSENT_AUTHORIZED)),
        ("escalator", "DeleteUser", DENIED),  # not in its policy
        ("bystander", "CreateAccessKey", DENIED),
        ("admin", "DeleteUser", Failure(Outcome.ALLOWED, ABSENT_AUTHORIZED)),
    ],
)
def test_iam_absent_target(lab: Lab, tmp_path: Path, user: str, operation: str, expected: Failure) -> None:
    params = {"service": "iam", "operation": operation, "params": {"UserName": VICTIM}}
    params["probe_target"] = "absent"
    result = observe(CALL, params, _ctx(_env(lab, tmp_path, user), f"absent-{operation}"))
    assert isinstance(result, ProbeResult | Failure)
    assert (result.outcome, result.reason) == (expected.outcome, expected.reason)
    # The named user was never touched.
    assert lab.admin("iam").get_user(UserName=VICTIM)["User"]["UserName"] == VICTIM
    assert _keys_of(lab, VICTIM) == []


def test_absent_name_is_random_and_never_the_given_one() -> None:
    bound = AwsCallParams.model_validate(
        {"service": "iam", "operation": "AddUserToGroup", "params": {"UserName": "a", "GroupName": "g"}}
        | {"probe_target": "absent"}
    )
    first, second = AwsCall._request(bound), AwsCall._request(bound)
    assert first["UserName"].startswith(ABSENT_PREFIX) and first["GroupName"] == first["UserName"]
    assert first["UserName"] != second["UserName"]


@pytest.mark.parametrize("key", [OBJECT_KEY, "reports/missing.csv"], ids=["existing", "missing"])
@pytest.mark.parametrize("user", ["escalator", "bystander"])
def test_s3_conditional_write_writes_nothing(lab: Lab, tmp_path: Path, key: str, user: str) -> None:
    params = {
        "service": "s3",
        "operation": "PutObject",
        "params": {"Bucket": BUCKET, "Key": key, "Body": "overwritten"},
        "probe_target": "absent",
    }
    result = observe(CALL, params, _ctx(_env(lab, tmp_path, user), "s3-conditional"))
    if user == "bystander":
        assert result == DENIED
    else:
        assert isinstance(result, ProbeResult)
        assert (result.outcome, result.reason) == (Outcome.ALLOWED, PRECONDITION_AUTHORIZED)
    s3 = lab.admin("s3")
    assert s3.get_object(Bucket=BUCKET, Key=OBJECT_KEY)["Body"].read() == OBJECT_BODY
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [OBJECT_KEY]


# --- aws.iam_create_access_key / aws.iam_delete_access_key ------------------------------------------------


def test_escalation_allowed_creates_deletes_and_leaves_no_key(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path, "escalator", write=True)
    journal = _journal(env)
    result = observe(CREATE, {"user_name": VICTIM}, _ctx(env, "escalate", journal))
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.ALLOWED, CREATED_AND_DELETED)
    key_id = result.outputs["access_key_id"]
    assert isinstance(key_id, str) and key_id.startswith("AKIA")
    assert _keys_of(lab, VICTIM) == []  # deleted at once
    [entry] = journal.pending()
    assert entry.undo.probe == DELETE_ACCESS_KEY
    assert dict(entry.undo.params) == {"user_name": VICTIM, "access_key_id": key_id}
    assert not entry.undo.held
    # The undo in cleanup finds it gone: NOT_FOUND, which the runner counts as removed.
    [undone] = run_undos(env, journal)
    assert undone == Failure(Outcome.NOT_FOUND, "NoSuchEntity")
    assert _keys_of(lab, VICTIM) == []


def test_escalation_denied_records_nothing(lab: Lab, tmp_path: Path) -> None:
    for user in ("bystander", "denied"):
        env = _env(lab, tmp_path, user, write=True)
        journal = _journal(env)
        assert observe(CREATE, {"user_name": VICTIM}, _ctx(env, f"escalate-{user}", journal)) == DENIED
        assert journal.pending() == []
    assert _keys_of(lab, VICTIM) == []


def test_escalation_on_a_missing_user_is_not_found(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path, "escalator", write=True)
    journal = _journal(env)
    result = observe(CREATE, {"user_name": "nobody-" + RUN}, _ctx(env, "escalate-missing", journal))
    assert result == Failure(Outcome.NOT_FOUND, "NoSuchEntity")
    assert journal.pending() == []


def test_escalation_at_the_key_quota_is_authorized_and_creates_nothing(lab: Lab, tmp_path: Path) -> None:
    before = _keys_of(lab, FULL_USER)
    env = _env(lab, tmp_path, "escalator", write=True)
    journal = _journal(env)
    result = observe(CREATE, {"user_name": FULL_USER}, _ctx(env, "escalate-full", journal))
    assert result == Failure(Outcome.ALLOWED, f"{REFUSED_BY_STATE}: LimitExceeded")
    assert journal.pending() == []
    assert _keys_of(lab, FULL_USER) == before


def test_escalation_refused_in_a_read_only_environment(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path, "escalator")
    journal = _journal(env)
    ctx = _ctx(env, "escalate-read-only", journal)
    result = observe(CREATE, {"user_name": VICTIM}, ctx)
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert journal.pending() == [] and not ctx.timer.used


def test_a_failed_immediate_delete_leaves_the_undo_to_cleanup(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path, "creator", write=True)
    journal = _journal(env)
    result = observe(CREATE, {"user_name": VICTIM}, _ctx(env, "escalate-no-delete", journal))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert (
        result.reason is not None and "left to cleanup" in result.reason and "AccessDenied" in result.reason
    )
    key_id = result.outputs["access_key_id"]
    assert _keys_of(lab, VICTIM) == [key_id]
    # The creator may not delete: its undo fails (a cleanup_failed finding); the admin's succeeds.
    [entry] = journal.pending()
    assert observe(DELETE, entry.undo.arguments(), _ctx(env, "undo-denied")) == DENIED
    admin = _env(lab, tmp_path, "admin", write=True)
    assert run_undos(admin, journal) == [ProbeResult()]
    assert _keys_of(lab, VICTIM) == []


def test_delete_without_a_key_id_deletes_nothing(lab: Lab, tmp_path: Path) -> None:
    env = _env(lab, tmp_path, "admin", write=True)
    result = observe(DELETE, {"user_name": FULL_USER}, _ctx(env, "undo-unknown"))
    assert isinstance(result, Failure)
    assert (result.outcome, result.error_kind) == (Outcome.ERROR, ErrorKind.HARNESS_ERROR)
    assert FULL_USER in result.reason
    assert len(_keys_of(lab, FULL_USER)) == 2


def test_a_reply_holding_credentials_puts_none_of_them_in_the_result(lab: Lab, tmp_path: Path) -> None:
    # The reply AssumeRole or CreateAccessKey sends: only the listed non-secret fields leave the probe.
    secret, token = "wJalrXUtnFEMI/K7MDENG/" + secrets.token_hex(8), "FQoGZXIvYXdz" + secrets.token_hex(8)
    reply = {
        "Credentials": {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": secret, "SessionToken": token},
        "AssumedRoleUser": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s", "AssumedRoleId": "AROA:s"},
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    bound = AwsCallParams.model_validate(
        {"service": "sts", "operation": "AssumeRole", "params": {"RoleArn": role, "RoleSessionName": "s"}}
    )
    result = AwsCall._result(bound, reply, _ctx(_env(lab, tmp_path, "admin"), "assume-reply"))
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s"
    assert result.outputs == {"status": "200", "arn": arn, "id": ""}
    assert result.grant.identity == f"arn:aws:sts::{ACCOUNT}:assumed-role/r/<session>"
    assert secret not in repr(result) and token not in repr(result)
