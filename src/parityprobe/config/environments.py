"""The environments file: per environment, how to reach its Vault and AWS, its legitimate differences
(``vars``) and its safety settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from parityprobe.config.secretref import SecretRef
from parityprobe.model import Effect, Tier

_PRODUCTION_NAMES = frozenset({"prod", "production", "prd"})


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _scalar_to_str(value: Any) -> Any:
    # YAML reads account ids and ports as numbers; vars are text that templates substitute.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


VarValue = Annotated[str, BeforeValidator(_scalar_to_str)]


class VaultApprole(_Input):
    """AppRole login with the workload's own role id and secret id."""

    method: Literal["approle"]
    role_id: SecretRef
    secret_id: SecretRef
    mount: str = "approle"


class VaultToken(_Input):
    """A token the environment already holds (an agent sink, a wrapped token unwrapped elsewhere)."""

    method: Literal["token"]
    token: SecretRef


VaultAuth = Annotated[VaultApprole | VaultToken, Field(discriminator="method")]


def _http_address(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


class VaultSettings(_Input):
    """How to reach and authenticate to the environment's Vault (or OpenBao)."""

    address: str
    namespace: str | None = None
    auth: VaultAuth
    ca_cert: str | None = None
    verify_tls: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return _http_address(v)


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


class AwsSettings(_Input):
    """Region, optional endpoint (for AWS-compatible servers) and the credentials to act with."""

    region: str
    endpoint_url: str | None = None
    credentials: AwsCredentials = Field(default_factory=AwsDefaultCredentials)
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        return None if v is None else _http_address(v)


class Safety(_Input):
    """Which step effects may run here. Read only unless the file says otherwise."""

    allow_effects: list[Effect] = Field(default_factory=lambda: [Effect.READ])

    def allows(self, effect: Effect) -> bool:
        return effect in self.allow_effects


class Environment(_Input):
    """One deployment target. ``name`` is its key in the environments file."""

    name: str = ""
    tier: Tier | None = None
    vault: VaultSettings | None = None
    aws: AwsSettings | None = None
    vars: dict[str, VarValue] = Field(default_factory=dict)
    safety: Safety = Field(default_factory=Safety)

    @property
    def effective_tier(self) -> Tier:
        """The declared tier, else production for an environment named prod/production, else staging."""
        if self.tier is not None:
            return self.tier
        return Tier.PRODUCTION if self.name.lower() in _PRODUCTION_NAMES else Tier.STAGING


class EnvironmentsFile(_Input):
    """The whole environments file."""

    environments: dict[str, Environment] = Field(min_length=1)

    @model_validator(mode="after")
    def _name_environments(self) -> EnvironmentsFile:
        for name, env in self.environments.items():
            env.name = name
        return self
