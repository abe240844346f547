"""The ``vault`` section of an environment: how to reach and authenticate to its Vault (or OpenBao).

Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic only, never hvac, so the
environments file loads without the Vault plane's SDK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from parityprobe.config.environments import SectionSettings, http_address
from parityprobe.config.secretref import SecretRef

if TYPE_CHECKING:
    from parityprobe.probe import ProbeContext


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


def mount_path(value: str) -> str:
    """An auth mount's path (``jwt``, ``k8s/prod``): slash-separated names, no empty, ``.`` or ``..`` part."""
    parts = value.strip("/").split("/")
    if not value.strip("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{value!r} is not a mount path (names separated by '/')")
    return "/".join(parts)


MountPath = Annotated[str, AfterValidator(mount_path)]

KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class VaultJwt(_Input):
    """JWT/OIDC workload identity: the token a platform hands the workload in ``token_file`` (a CI job's ID
    token, a projected service-account token), read afresh at each login because platforms rotate it."""

    method: Literal["jwt"]
    role: str = Field(min_length=1)
    token_file: str
    mount: MountPath = "jwt"


class VaultKubernetes(_Input):
    """Kubernetes auth with the pod's service-account token (the kubelet's projected file by default)."""

    method: Literal["kubernetes"]
    role: str = Field(min_length=1)
    token_file: str = KUBERNETES_TOKEN_FILE
    mount: MountPath = "kubernetes"


VaultAuth = Annotated[VaultApprole | VaultToken | VaultJwt | VaultKubernetes, Field(discriminator="method")]


class VaultSettings(SectionSettings):
    """How to reach and authenticate to the environment's Vault (or OpenBao)."""

    address: str
    namespace: str | None = None
    auth: VaultAuth
    ca_cert: str | None = None
    verify_tls: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A read-only auditor token for ``vault.config`` (reading sys/auth, sys/audit, roles and policies needs
    # more than a workload's own token has); the environment's own token when not given.
    config_token: SecretRef | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return http_address(v)

    def resolve_paths(self, base_dir: Path) -> None:
        # Like secret files, a relative CA path is relative to the environments file, not the cwd.
        if self.ca_cert is not None:
            self.ca_cert = str((base_dir / Path(self.ca_cert).expanduser()).resolve())
        if isinstance(self.auth, VaultJwt | VaultKubernetes):
            # Made absolute without following symlinks: a kubelet's token path is a symlink into a directory
            # it replaces at each rotation, so the resolved target would soon be gone.
            self.auth.token_file = os.path.abspath(base_dir / Path(self.auth.token_file).expanduser())

    def server_version(self, ctx: ProbeContext) -> str:
        """The server's version, from ``sys/health`` (see :func:`.client.server_version`)."""
        from .client import server_version  # hvac: only when a run asks

        return server_version(ctx)
