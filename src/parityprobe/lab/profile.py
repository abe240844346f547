"""The lab profile: what the lab creates in each environment's OpenBao and moto servers.

A profile is data (YAML), not code. It names every policy, role, user, bucket and secret, and which
identity is "the workload"; it never holds a secret value: the lab generates KV values, Secrets Manager
values, object bodies, access keys and tokens when it seeds. Strings may use ``${account_id}`` and
``${vars.NAME}`` (``vars`` values themselves only ``${account_id}``); :func:`load_profile` substitutes
them, so the rest of the lab sees plain values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from parityprobe.config.durations import Duration
from parityprobe.config.environments import VarValue
from parityprobe.config.load import load_model
from parityprobe.config.yamlsource import Locator, PathPart, validation_problems
from parityprobe.errors import InputError, Problem
from parityprobe.model import Tier

DEFAULT_PROFILE = Path(__file__).with_name("default_profile.yaml")

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


Name = Annotated[str, StringConstraints(min_length=1)]
# Environment names become directory names in the lab.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
# VarValue turns an unquoted account id, which YAML reads as a number, back into text.
AccountId = Annotated[VarValue, StringConstraints(pattern=r"^\d{12}$")]
StrOrList = str | list[str]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyStatement(_Input):
    """One IAM policy statement (moto evaluates these coarsely: see the lab reference notes)."""

    Sid: str | None = None
    Effect: Literal["Allow", "Deny"]
    Action: StrOrList | None = None
    NotAction: StrOrList | None = None
    Resource: StrOrList | None = None
    NotResource: StrOrList | None = None
    Condition: dict[str, dict[str, StrOrList]] | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> PolicyStatement:
        if (self.Action is None) == (self.NotAction is None):
            raise ValueError("give exactly one of Action or NotAction")
        if (self.Resource is None) == (self.NotResource is None):
            raise ValueError("give exactly one of Resource or NotResource")
        return self


class PolicyDocument(_Input):
    """An IAM identity policy document, written in the profile as YAML."""

    Version: Literal["2012-10-17"] = "2012-10-17"
    Statement: list[PolicyStatement] = Field(min_length=1)

    def to_json(self) -> str:
        """The document as IAM takes it."""
        return json.dumps(self.model_dump(exclude_none=True))


class ApproleRole(_Input):
    """An AppRole role; TTLs are durations (``1h``, ``24h``, or seconds)."""

    token_policies: list[Name] = Field(min_length=1)
    token_ttl: Duration
    token_max_ttl: Duration

    @model_validator(mode="after")
    def _ttl_within_max(self) -> ApproleRole:
        if self.token_max_ttl and self.token_ttl > self.token_max_ttl:
            raise ValueError("token_ttl is longer than token_max_ttl")
        return self


class VaultProfile(_Input):
    """What the lab creates in the environment's OpenBao (KV v2 is mounted at ``secret/``)."""

    workload_role: Name
    policies: dict[Name, str] = Field(default_factory=dict)
    approle_roles: dict[Name, ApproleRole] = Field(min_length=1)
    kv: dict[Name, list[Name]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> VaultProfile:
        if self.workload_role not in self.approle_roles:
            raise ValueError(f"workload_role {self.workload_role!r} is not one of approle_roles")
        for name, role in self.approle_roles.items():
            unknown = [p for p in role.token_policies if p not in self.policies and p != "default"]
            if unknown:
                raise ValueError(f"approle role {name!r} names unknown policies: {', '.join(unknown)}")
        return self


class IamUser(_Input):
    """An IAM user with inline policies; ``access_key: true`` makes the lab create a key for it."""

    access_key: bool = False
    policies: dict[Name, PolicyDocument] = Field(default_factory=dict)


class IamRole(_Input):
    """An IAM role that the listed users (of the same environment) may assume."""

    trusted_users: list[Name] = Field(min_length=1)
    policies: dict[Name, PolicyDocument] = Field(default_factory=dict)


class AwsProfile(_Input):
    """What the lab creates in the environment's moto server."""

    workload_user: Name
    users: dict[Name, IamUser] = Field(min_length=1)
    roles: dict[Name, IamRole] = Field(default_factory=dict)
    buckets: dict[Name, list[Name]] = Field(default_factory=dict, description="bucket name -> object keys")
    secrets: list[Name] = Field(default_factory=list, description="Secrets Manager secret names")

    @model_validator(mode="after")
    def _references(self) -> AwsProfile:
        workload = self.users.get(self.workload_user)
        if workload is None:
            raise ValueError(f"workload_user {self.workload_user!r} is not one of users")
        if not workload.access_key:
            raise ValueError(f"workload_user {self.workload_user!r} needs access_key: true")
        for name, role in self.roles.items():
            unknown = [u for u in role.trusted_users if u not in self.users]
            if unknown:
                raise ValueError(f"role {name!r} trusts unknown users: {', '.join(unknown)}")
        return self


class EnvironmentProfile(_Input):
    """One lab environment: its AWS account, tier, ``vars`` and what to seed."""

    account_id: AccountId
    tier: Tier
    vars: dict[Name, VarValue] = Field(default_factory=dict)
    vault: VaultProfile
    aws: AwsProfile


class LabProfile(_Input):
    """The whole profile. ``shared`` holds YAML anchors for the environments to reuse; the lab ignores it."""

    shared: dict[str, Any] = Field(default_factory=dict)
    environments: dict[EnvName, EnvironmentProfile] = Field(min_length=1)


def load_profile(path: Path) -> LabProfile:
    """Read, validate and resolve a profile; InputError naming file, line and field otherwise."""
    profile, locator = load_model(path, LabProfile)
    problems: list[Problem] = []
    resolved = {name: _resolve(name, env, locator, problems) for name, env in profile.environments.items()}
    if problems:
        raise InputError(problems)
    return profile.model_copy(update={"environments": resolved, "shared": {}})


def _resolve(
    name: str, env: EnvironmentProfile, locator: Locator, problems: list[Problem]
) -> EnvironmentProfile:
    base: tuple[PathPart, ...] = ("environments", name)

    def substitute(text: str, path: tuple[PathPart, ...], known: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in known:
                return known[key]
            choices = ", ".join(f"${{{k}}}" for k in known)
            problems.append(
                locator.problem((*base, *path), f"unknown placeholder ${{{key}}} (known: {choices})")
            )
            return match.group(0)

        return _PLACEHOLDER.sub(one, text)

    def walk(value: Any, path: tuple[PathPart, ...], known: dict[str, str]) -> Any:
        if isinstance(value, str):
            return substitute(value, path, known)
        if isinstance(value, list):
            return [walk(v, (*path, i), known) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {substitute(k, (*path, k), known): walk(v, (*path, k), known) for k, v in value.items()}
        return value

    own = {"account_id": env.account_id}
    variables = {k: substitute(v, ("vars", k), own) for k, v in env.vars.items()}
    known = {**own, **{f"vars.{k}": v for k, v in variables.items()}}
    raw = env.model_dump(mode="json", exclude_none=True)
    raw["vault"] = walk(raw["vault"], ("vault",), known)
    raw["aws"] = walk(raw["aws"], ("aws",), known)
    raw["vars"] = variables
    try:
        return EnvironmentProfile.model_validate(raw)
    except ValidationError as exc:
        # Substitution can break a reference (a role named by a placeholder that resolves elsewhere).
        problems.extend(validation_problems(exc, locator, prefix=base))
        return env
