"""The lab profile: what the lab creates in each environment's OpenBao and moto servers (and PostgreSQL,
for an environment whose Vault has the database secrets engine).

A profile is data (YAML), not code. It names every policy, role, user, bucket and secret, and which
identity is "the workload"; it never holds a secret value: the lab generates KV values, Secrets Manager
values, object bodies, access keys, signing keys and tokens when it seeds. Strings may use ``${account_id}``
and ``${vars.NAME}`` (``vars`` values themselves only ``${account_id}``); :func:`load_profile` substitutes
them, so the rest of the lab sees plain values.

Profiles ship with the package and are named (:data:`PROFILES`): ``default``, the short demo,
``vault-gaps``, one planted gap of each kind the Vault plane finds, ``aws-gaps``, the same for the AWS
and HTTP planes, and ``net-gaps``, for network paths and TLS trust (its models are in :mod:`.net_profile`).
:func:`profile_path` turns a name, or the path of a profile of one's own, into the file to load.
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
from parityprobe.config.environments import Safety, VarValue
from parityprobe.config.load import load_model
from parityprobe.config.yamlsource import Locator, PathPart, validation_problems
from parityprobe.errors import InputError, Problem
from parityprobe.lab.net_profile import (
    CertificateAuthority,
    NetProfile,
    TlsProfile,
    check_authorities,
    lab_vars,
)
from parityprobe.model import Tier

DEFAULT_PROFILE = Path(__file__).with_name("default_profile.yaml")
VAULT_GAPS_PROFILE = Path(__file__).with_name("vault_gaps_profile.yaml")
AWS_GAPS_PROFILE = Path(__file__).with_name("aws_gaps_profile.yaml")
NET_GAPS_PROFILE = Path(__file__).with_name("net_gaps_profile.yaml")
# The profiles shipped with the package, by the name `parityprobe lab up --profile NAME` takes.
PROFILES = {
    "default": DEFAULT_PROFILE,
    "vault-gaps": VAULT_GAPS_PROFILE,
    "aws-gaps": AWS_GAPS_PROFILE,
    "net-gaps": NET_GAPS_PROFILE,
}

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


Name = Annotated[str, StringConstraints(min_length=1)]
# A var's name, as scenarios write it in ``${{ vars.NAME }}``.
VarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# An auth method's path (one segment: the lab mounts methods at the top level).
MountName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
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


class TokenSettings(_Input):
    """The token settings every Vault auth role has; TTLs are durations (``1h``, ``24h``, or seconds).

    Optional settings left out keep the server's default, so they are not written at all.
    """

    token_policies: list[Name] = Field(min_length=1)
    token_ttl: Duration
    token_max_ttl: Duration
    token_explicit_max_ttl: Duration | None = None
    token_period: Duration | None = None
    token_num_uses: int | None = Field(default=None, ge=0)
    token_no_default_policy: bool | None = None
    token_type: Literal["default", "service", "batch"] | None = None

    @model_validator(mode="after")
    def _ttl_within_max(self) -> TokenSettings:
        if self.token_max_ttl and self.token_ttl > self.token_max_ttl:
            raise ValueError("token_ttl is longer than token_max_ttl")
        return self

    def token_fields(self) -> dict[str, object]:
        """The settings as Vault's role endpoints take them (durations as ``<n>s``), unset ones left out."""
        fields: dict[str, object] = {}
        for name in TokenSettings.model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            is_duration = name in _DURATION_FIELDS
            fields[name] = f"{value}s" if is_duration else value
        return fields


_DURATION_FIELDS = frozenset({"token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period"})


class ApproleRole(TokenSettings):
    """An AppRole role: its token settings, and those of the secret ids it issues."""

    secret_id_ttl: Duration | None = None
    secret_id_num_uses: int | None = Field(default=None, ge=0)


class JwtRole(TokenSettings):
    """A role of a ``jwt`` auth method: which tokens it accepts (audiences, bound claims) and what it grants.

    ``bound_claims`` left empty accepts any value of every claim: exactly the gap a profile may plant."""

    bound_audiences: list[Name] = Field(min_length=1)
    bound_claims: dict[Name, StrOrList] = Field(default_factory=dict)
    claim_mappings: dict[Name, Name] = Field(default_factory=dict)
    user_claim: Name = "sub"


class JwtMount(_Input):
    """A ``jwt`` auth method trusting the environment's own signing key (its issuer is the lab's)."""

    roles: dict[Name, JwtRole] = Field(min_length=1)


class JwtTokenFile(_Input):
    """A signed token the lab writes for the workload (0600, in the environment's secrets folder); the
    absolute path of the file becomes the environment's var of the same name as the entry."""

    subject: Name
    audience: Name | list[Name]
    claims: dict[Name, str] = Field(default_factory=dict)
    ttl: Duration = 86400


class DatabaseRole(_Input):
    """A role of the database secrets engine: the lease TTLs of the credentials it issues and, optionally,
    the statements that revoke them (the plugin's own, which drop the PostgreSQL role, when not given).

    Every role creates a LOGIN role valid until the lease expires, with CONNECT on the cluster's database;
    ``revocation_statements`` of one's own are where a profile can plant a revocation that does not revoke.
    Vault fills in ``{{name}}`` in them."""

    default_ttl: Duration
    max_ttl: Duration
    revocation_statements: list[Name] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _ttl_within_max(self) -> DatabaseRole:
        if self.default_ttl > self.max_ttl:
            raise ValueError("default_ttl is longer than max_ttl")
        return self


class DatabaseEngine(_Input):
    """The database secrets engine at ``mount``, connected to the environment's own PostgreSQL, which the
    lab starts for it (as the cluster's admin role), and its roles."""

    mount: MountName = "database"
    roles: dict[Name, DatabaseRole] = Field(min_length=1)


class BreakGlassHandOver(_Input):
    """What an approver hands over for a break-glass drill: the break-glass AppRole role's id and a
    response-wrapped secret id of it (single use), written as files whose absolute paths become the vars
    ``break_glass_role_id_file`` and ``break_glass_wrapped_file``."""

    role: Name
    wrap_ttl: Duration = 86400


class VaultProfile(_Input):
    """What the lab creates in the environment's OpenBao (KV v2 is mounted at ``secret/``).

    ``database``: the database secrets engine; an environment with one gets a PostgreSQL of its own."""

    workload_role: Name
    policies: dict[Name, str] = Field(default_factory=dict)
    approle_roles: dict[Name, ApproleRole] = Field(min_length=1)
    kv: dict[Name, list[Name]] = Field(default_factory=dict)
    jwt_mounts: dict[MountName, JwtMount] = Field(
        default_factory=dict,
        description="jwt auth methods by path (a jwt method at 'kubernetes' stands in "
        "for Kubernetes auth: no cluster runs in the lab)",
    )
    jwt_tokens: dict[VarName, JwtTokenFile] = Field(
        default_factory=dict, description="token files to write, by the var that gets each file's path"
    )
    database: DatabaseEngine | None = None
    break_glass: BreakGlassHandOver | None = None

    @model_validator(mode="after")
    def _references(self) -> VaultProfile:
        if self.workload_role not in self.approle_roles:
            raise ValueError(f"workload_role {self.workload_role!r} is not one of approle_roles")
        if self.break_glass is not None and self.break_glass.role not in self.approle_roles:
            raise ValueError(f"break_glass role {self.break_glass.role!r} is not one of approle_roles")
        roles: list[tuple[str, TokenSettings]] = [
            *((f"approle role {name!r}", role) for name, role in self.approle_roles.items()),
            *(
                (f"{mount} role {name!r}", role)
                for mount, method in self.jwt_mounts.items()
                for name, role in method.roles.items()
            ),
        ]
        for label, role in roles:
            unknown = [p for p in role.token_policies if p not in self.policies and p != "default"]
            if unknown:
                raise ValueError(f"{label} names unknown policies: {', '.join(unknown)}")
        if self.jwt_tokens and not self.jwt_mounts:
            raise ValueError("jwt_tokens need a jwt mount to log in to (jwt_mounts is empty)")
        return self


class IamUser(_Input):
    """An IAM user with inline and customer-managed (attached) policies; ``access_key: true`` makes the lab
    create a key for it."""

    access_key: bool = False
    policies: dict[Name, PolicyDocument] = Field(default_factory=dict)
    managed_policies: dict[Name, PolicyDocument] = Field(default_factory=dict)


class IamRole(_Input):
    """An IAM role that the listed users (of the same environment) may assume: one trust statement (moto
    denies a principal that any statement of a trust policy does not name).

    ``external_id_var``: the lab generates an external id, the approval a break-glass drill is handed,
    writes it to a secret file and sets this var to the file's path; with ``require_external_id`` (the
    default) the trust statement asks for it (``StringEquals sts:ExternalId``). moto refuses a wrong id but
    lets an omitted one through (AWS refuses it).
    """

    trusted_users: list[Name] = Field(min_length=1)
    external_id_var: VarName | None = None
    require_external_id: bool = True
    policies: dict[Name, PolicyDocument] = Field(default_factory=dict)
    managed_policies: dict[Name, PolicyDocument] = Field(default_factory=dict)
    max_session_duration: Duration | None = Field(default=None, ge=3600, le=43200)


class SecretRotation(_Input):
    """A Secrets Manager secret's rotation schedule (set without rotating: the value stays readable)."""

    every_days: int = Field(ge=1, le=1000)


class AwsProfile(_Input):
    """What the lab creates in the environment's moto server.

    ``rotation``: secret name (one of ``secrets``) -> its rotation schedule; a secret not named has
    rotation off. ``auditor_user``: a read-only user (with ``access_key: true``) whose key the environments
    file gives ``aws.config`` as ``config_credentials``."""

    workload_user: Name
    auditor_user: Name | None = None
    users: dict[Name, IamUser] = Field(min_length=1)
    roles: dict[Name, IamRole] = Field(default_factory=dict)
    buckets: dict[Name, list[Name]] = Field(default_factory=dict, description="bucket name -> object keys")
    secrets: list[Name] = Field(default_factory=list, description="Secrets Manager secret names")
    rotation: dict[Name, SecretRotation] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> AwsProfile:
        workload = self.users.get(self.workload_user)
        if workload is None:
            raise ValueError(f"workload_user {self.workload_user!r} is not one of users")
        if not workload.access_key:
            raise ValueError(f"workload_user {self.workload_user!r} needs access_key: true")
        if self.auditor_user is not None and not getattr(
            self.users.get(self.auditor_user), "access_key", False
        ):
            raise ValueError(
                f"auditor_user {self.auditor_user!r} must be one of users, with access_key: true"
            )
        for name, role in self.roles.items():
            unknown = [u for u in role.trusted_users if u not in self.users]
            if unknown:
                raise ValueError(f"role {name!r} trusts unknown users: {', '.join(unknown)}")
        unknown = [s for s in self.rotation if s not in self.secrets]
        if unknown:
            raise ValueError(f"rotation names secrets not in secrets: {', '.join(unknown)}")
        return self

    def approval_vars(self) -> list[str]:
        """The vars the lab sets to approval files (roles' ``external_id_var``)."""
        return [role.external_id_var for role in self.roles.values() if role.external_id_var]


class OAuthClient(_Input):
    """A client of the environment's OAuth 2.0 server and the scopes it may be granted."""

    scopes: list[Name] = Field(min_length=1)


class HttpProfile(_Input):
    """The environment's HTTP API: a local OAuth 2.0 client-credentials server and the API it protects.

    ``resources``: API resource (``/api/<name>``) -> the scope a token needs for it. ``workload_client``
    is the client the environments file configures (its secret generated by the lab)."""

    workload_client: Name
    clients: dict[Name, OAuthClient] = Field(min_length=1)
    resources: dict[Name, Name] = Field(default_factory=dict)
    token_ttl: Duration = 3600

    @model_validator(mode="after")
    def _workload_known(self) -> HttpProfile:
        if self.workload_client not in self.clients:
            raise ValueError(f"workload_client {self.workload_client!r} is not one of clients")
        return self


class SiemProfile(_Input):
    """The environment's lab SIEM: a forwarder follows its OpenBao audit log and ships the entries to
    CloudWatch Logs in its moto server (``log_group``) and, where the environment has a PostgreSQL, to a
    table (``table``). ``forward: successes`` ships only entries without an error (the gap of a SIEM that
    never sees a denied call)."""

    forward: Literal["all", "successes"] = "all"
    log_group: Name = "/parityprobe/vault-audit"
    table: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,50}$")] = "vault_audit"


class EnvironmentProfile(_Input):
    """One lab environment: its AWS account, tier, ``vars``, safety and what to seed.

    ``safety`` goes into the environments file as it is: read only unless the profile says otherwise (a
    throw-away lab may allow ``write``, so that rotation scenarios run there)."""

    account_id: AccountId
    tier: Tier
    vars: dict[Name, VarValue] = Field(default_factory=dict)
    safety: Safety = Field(default_factory=Safety)
    vault: VaultProfile
    aws: AwsProfile
    http: HttpProfile | None = None
    siem: SiemProfile | None = None
    net: NetProfile | None = None
    tls: TlsProfile | None = None

    @model_validator(mode="after")
    def _token_vars_free(self) -> EnvironmentProfile:
        clashing = sorted(set(self.vault.jwt_tokens) & set(self.vars))
        if clashing:
            raise ValueError(
                f"vars {', '.join(clashing)} are set by vault.jwt_tokens (the token files' paths)"
            )
        clashing = sorted(set(self.aws.approval_vars()) & {*self.vars, *self.vault.jwt_tokens})
        if clashing:
            raise ValueError(f"vars {', '.join(clashing)} are set by aws roles' external_id_var")
        network = lab_vars(self.net, self.tls)
        clashing = sorted({v for v in network if network.count(v) > 1} | (set(network) & set(self.vars)))
        if clashing:
            raise ValueError(f"vars {', '.join(clashing)} are set by the lab's listeners and TLS server")
        return self


class LabProfile(_Input):
    """The whole profile. ``shared`` holds YAML anchors for the environments to reuse; the lab ignores it.

    ``scenarios``: the built-in scenarios (file names without ``.yaml``; shell patterns allowed) that the
    profile's lab is made for, every one by default; ``parityprobe demo`` runs them, ``lab up`` suggests
    them. ``certificate_authorities``: the roots the environments' ``tls`` sections name (see
    :mod:`.net_profile`)."""

    shared: dict[str, Any] = Field(default_factory=dict)
    scenarios: list[Name] = Field(default_factory=lambda: ["*"], min_length=1)
    certificate_authorities: dict[Name, CertificateAuthority] = Field(default_factory=dict)
    environments: dict[EnvName, EnvironmentProfile] = Field(min_length=1)

    @model_validator(mode="after")
    def _authorities_declared(self) -> LabProfile:
        check_authorities(
            self.certificate_authorities,
            {name: env.tls for name, env in self.environments.items() if env.tls is not None},
        )
        return self


def profile_path(name_or_path: str | Path) -> Path:
    """The profile file for a shipped profile's name (:data:`PROFILES`) or a path to one's own.

    InputError naming the shipped profiles when ``name_or_path`` is neither.
    """
    text = str(name_or_path)
    if text in PROFILES:
        return PROFILES[text]
    path = Path(text)
    if path.is_file():
        return path
    names = ", ".join(PROFILES)
    what = "no profile file" if ("/" in text or text.endswith((".yaml", ".yml"))) else "unknown profile"
    message = f"{what} {text!r}: give a shipped profile ({names}) or a profile file"
    raise InputError([Problem(None, None, "--profile", message)])


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
    if "http" in raw:
        raw["http"] = walk(raw["http"], ("http",), known)
    raw["vars"] = variables
    try:
        return EnvironmentProfile.model_validate(raw)
    except ValidationError as exc:
        # Substitution can break a reference (a role named by a placeholder that resolves elsewhere).
        problems.extend(validation_problems(exc, locator, prefix=base))
        return env
