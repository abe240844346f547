"""Seeding one lab moto server from the profile (boto3), then switching IAM enforcement on."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from parityprobe.errors import LabError
from parityprobe.lab.profile import AwsProfile, PolicyDocument
from parityprobe.redact import Redactor
from parityprobe.secret import Secret

if TYPE_CHECKING:
    from boto3.session import Session
    from botocore.config import Config
    from mypy_boto3_iam import IAMClient

REGION = "us-east-1"
# The lab's own administrator, made with moto's bootstrap key before enforcement locks that key out.
ADMIN_USER = "parityprobe-lab-admin"
_BOOTSTRAP_KEY = "testing"
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@dataclass(frozen=True)
class AccessKey:
    """An IAM access key pair."""

    access_key_id: Secret
    secret_access_key: Secret


_BOOTSTRAP = AccessKey(
    Secret(_BOOTSTRAP_KEY, "moto bootstrap key"), Secret(_BOOTSTRAP_KEY, "moto bootstrap key")
)


@dataclass(frozen=True)
class AwsSeed:
    """The keys the lab made: the workload's (for the environments file) and the lab administrator's; and
    the external ids roles ask for, by the var their approval file goes to (``external_id_var``)."""

    workload: AccessKey
    admin: AccessKey
    approvals: dict[str, Secret]
    auditor: AccessKey | None


def seed_aws(url: str, profile: AwsProfile) -> AwsSeed:
    """Users, keys, roles, buckets and secrets (generated values), then IAM enforcement on."""
    import botocore.exceptions  # only the lab needs boto3 here; the engine must import without it

    generated: list[Secret] = []
    try:
        bootstrap = _session(_BOOTSTRAP).client("iam", endpoint_url=url, config=_config())
        bootstrap.create_user(UserName=ADMIN_USER)
        bootstrap.put_user_policy(UserName=ADMIN_USER, PolicyName="admin", PolicyDocument=_ADMIN_POLICY)
        admin = _create_key(bootstrap, ADMIN_USER, generated)
        keys, approvals = _seed(url, admin, profile, generated)
        _enforce(url, admin)
        auditor = keys[profile.auditor_user] if profile.auditor_user else None
        return AwsSeed(keys[profile.workload_user], admin, approvals, auditor)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, httpx.HTTPError) as exc:
        message = Redactor(generated).redact(str(exc))
        raise LabError(f"seeding moto at {url} failed: {type(exc).__name__}: {message}") from None


def _seed(
    url: str, admin: AccessKey, profile: AwsProfile, generated: list[Secret]
) -> tuple[dict[str, AccessKey], dict[str, Secret]]:
    iam = _session(admin).client("iam", endpoint_url=url, config=_config())
    arns: dict[str, str] = {}
    keys: dict[str, AccessKey] = {}
    for name, user in profile.users.items():
        arns[name] = iam.create_user(UserName=name)["User"]["Arn"]
        for policy_name, document in user.policies.items():
            iam.put_user_policy(UserName=name, PolicyName=policy_name, PolicyDocument=document.to_json())
        for policy_name, document in user.managed_policies.items():
            iam.attach_user_policy(UserName=name, PolicyArn=_managed_policy(iam, policy_name, document))
        if user.access_key:
            keys[name] = _create_key(iam, name, generated)
    approvals: dict[str, Secret] = {}
    for name, role in profile.roles.items():
        statement: dict[str, object] = {
            "Sid": "Trusted",
            "Effect": "Allow",
            "Principal": {"AWS": [arns[u] for u in role.trusted_users]},
            "Action": "sts:AssumeRole",
        }
        if role.external_id_var is not None:
            external_id = Secret(secrets.token_urlsafe(18), f"external id of role {name}")
            generated.append(external_id)
            approvals[role.external_id_var] = external_id
            if role.require_external_id:
                statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id.reveal()}}
        trust = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        extra = {} if role.max_session_duration is None else {"MaxSessionDuration": role.max_session_duration}
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **extra)  # type: ignore[arg-type]
        for policy_name, document in role.policies.items():
            iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=document.to_json())
        for policy_name, document in role.managed_policies.items():
            iam.attach_role_policy(RoleName=name, PolicyArn=_managed_policy(iam, policy_name, document))
    s3 = _session(admin).client("s3", endpoint_url=url, config=_config())
    for bucket, object_keys in profile.buckets.items():
        s3.create_bucket(Bucket=bucket)
        for key in object_keys:
            body = Secret(secrets.token_hex(16), f"s3 {bucket}/{key}")
            generated.append(body)
            s3.put_object(Bucket=bucket, Key=key, Body=f"lab,{body.reveal()}\n".encode())
    sm = _session(admin).client("secretsmanager", endpoint_url=url, config=_config())
    for secret_name in profile.secrets:
        value = Secret(secrets.token_urlsafe(24), f"secretsmanager {secret_name}")
        generated.append(value)
        sm.create_secret(Name=secret_name, SecretString=value.reveal())
        rotation = profile.rotation.get(secret_name)
        if rotation is not None:
            # Sets the schedule only: without a rotation function, rotating now would leave moto (and AWS)
            # with an empty current version (see the lab reference notes).
            sm.rotate_secret(
                SecretId=secret_name,
                RotationRules={"AutomaticallyAfterDays": rotation.every_days},
                RotateImmediately=False,
            )
    return keys, approvals


def _managed_policy(iam: IAMClient, name: str, document: PolicyDocument) -> str:
    """Create a customer-managed policy; its ARN."""
    return iam.create_policy(PolicyName=name, PolicyDocument=document.to_json())["Policy"]["Arn"]


def _create_key(iam: IAMClient, user: str, generated: list[Secret]) -> AccessKey:
    created = iam.create_access_key(UserName=user)["AccessKey"]
    key = AccessKey(
        Secret(created["AccessKeyId"], f"aws access key id of {user}"),
        Secret(created["SecretAccessKey"], f"aws secret access key of {user}"),
    )
    generated += [key.access_key_id, key.secret_access_key]
    return key


def _enforce(url: str, admin: AccessKey) -> None:
    """Switch IAM enforcement on and prove it: the bootstrap key must now be refused."""
    import botocore.exceptions

    httpx.post(f"{url}/moto-api/reset-auth", content=b"0", timeout=10.0).raise_for_status()
    try:
        _session(_BOOTSTRAP).client("sts", endpoint_url=url, config=_config()).get_caller_identity()
    except botocore.exceptions.ClientError:
        pass
    else:
        raise LabError(f"moto at {url} still accepts its bootstrap key: IAM enforcement is not on")
    _session(admin).client("sts", endpoint_url=url, config=_config()).get_caller_identity()


def _session(key: AccessKey) -> Session:
    import boto3

    # A session per client: the default session is shared and not safe across the seeding threads.
    return boto3.session.Session(
        aws_access_key_id=key.access_key_id.reveal(),
        aws_secret_access_key=key.secret_access_key.reveal(),
        region_name=REGION,
    )


def _config() -> Config:
    from botocore.config import Config

    return Config(
        retries={"max_attempts": 2}, s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=10
    )
