"""The ``postgres`` section of an environment: where its PostgreSQL listens and how to connect.

It holds no credentials: the probes take them as parameters (a role and password Vault's database secrets
engine just issued, say). Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic
only, never psycopg, so the environments file loads without the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from parityprobe.config.environments import SectionSettings

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PostgresSettings(SectionSettings):
    """Host, port and database to connect to; libpq's ``sslmode`` (``prefer`` by default, as libpq's own
    default) and, for ``verify-ca`` / ``verify-full``, the CA bundle to check the server against."""

    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = Field(default="postgres", min_length=1)
    sslmode: SslMode = "prefer"
    ca_cert: str | None = None
    connect_timeout_seconds: float = Field(default=10.0, gt=0)

    def resolve_paths(self, base_dir: Path) -> None:
        # Like secret files, a relative CA path is relative to the environments file, not the cwd.
        if self.ca_cert is not None:
            self.ca_cert = str((base_dir / Path(self.ca_cert).expanduser()).resolve())
