"""The ``vault`` section of an environment: how to reach and authenticate to its Vault (or OpenBao).

Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic only, never hvac, so the
environments file loads without the Vault plane's SDK.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parityprobe.config.environments import SectionSettings, http_address
from parityprobe.config.secretref import SecretRef


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


VaultAuth = Annotated[VaultApprole | VaultToken, Field(discriminator="method")]


class VaultSettings(SectionSettings):
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
        return http_address(v)

    def resolve_paths(self, base_dir: Path) -> None:
        # Like secret files, a relative CA path is relative to the environments file, not the cwd.
        if self.ca_cert is not None:
            self.ca_cert = str((base_dir / Path(self.ca_cert).expanduser()).resolve())
