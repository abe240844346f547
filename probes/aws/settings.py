"""The ``aws`` section of an environment: region, optional endpoint, and the credentials to act with.

Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic only, never boto3, so the
environments file loads without the AWS plane's SDK.
"""

from __future__ import annotations

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


AwsCredentials = Annotated[
    AwsDefaultCredentials | AwsProfileCredentials | AwsStaticCredentials | AwsAssumeRoleCredentials,
    Field(discriminator="method"),
]


class AwsSettings(SectionSettings):
    """Region, optional endpoint (for AWS-compatible servers) and the credentials to act with."""

    region: str
    endpoint_url: str | None = None
    credentials: AwsCredentials = Field(default_factory=AwsDefaultCredentials)
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else http_address(v)
