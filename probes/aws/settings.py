"""The ``aws`` section of an environment: region, optional endpoint, and the credentials to act with.

Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic only, never boto3, so the
environments file loads without the AWS plane's SDK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parityprobe.config.environments import SectionSettings, http_address
from parityprobe.config.secretref import SecretRef


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AwsDefaultCredentials(_Input):
    """The workload's own identity from the default chain (instance role, IRSA, environment variables)."""

    method: Literal["default"] = "default"


class AwsProfileCredentials(_Input):
    """A named profile from the shared config files."""

    method: Literal["profile"]
    profile: str


class AwsStaticCredentials(_Input):
    """An access key given by reference."""

    method: Literal["static"]
    access_key_id: SecretRef
    secret_access_key: SecretRef
    session_token: SecretRef | None = None


AwsBaseCredentials = Annotated[
    AwsDefaultCredentials | AwsProfileCredentials | AwsStaticCredentials, Field(discriminator="method")
]


class AwsAssumeRoleCredentials(_Input):
    """A role assumed from base credentials before any step runs."""

    method: Literal["assume_role"]
    role_arn: str
    external_id: SecretRef | None = None
    source: AwsBaseCredentials = Field(default_factory=AwsDefaultCredentials)


class AwsWebIdentityCredentials(_Input):
    """A role assumed with the web identity token a platform hands the workload in ``token_file`` (EKS IRSA's
    ``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE``, a CI job's OIDC token): the file is read again at
    each refresh, because the platform rotates it. A relative path is relative to the environments file."""

    method: Literal["web_identity"]
    role_arn: str
    token_file: str = Field(min_length=1)


AwsCredentials = Annotated[
    AwsDefaultCredentials
    | AwsProfileCredentials
    | AwsStaticCredentials
    | AwsAssumeRoleCredentials
    | AwsWebIdentityCredentials,
    Field(discriminator="method"),
]


class AwsSettings(SectionSettings):
    """Region, optional endpoint (for AWS-compatible servers), the credentials to act with, and optionally a
    read-only auditor's (``config_credentials``) that ``aws.config`` reads IAM and rotation settings with, so
    the workload itself needs no iam:Get* permission."""

    region: str
    endpoint_url: str | None = None
    credentials: AwsCredentials = Field(default_factory=AwsDefaultCredentials)
    config_credentials: AwsCredentials | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else http_address(v)

    def resolve_paths(self, base_dir: Path) -> None:
        for credentials in (self.credentials, self.config_credentials):
            if isinstance(credentials, AwsWebIdentityCredentials):
                # Made absolute without following symlinks: a kubelet's token path is a symlink into a
                # directory it replaces at each rotation, so the resolved target would soon be gone.
                credentials.token_file = os.path.abspath(base_dir / Path(credentials.token_file).expanduser())
