"""What every HTTP SIEM connector's settings share: the server's ``base_url`` and how its certificate is
checked (``verify_tls``, ``ca_cert``, a PEM bundle relative to the environments file). Pydantic only: the
connector's own module imports httpx when it connects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import field_validator

from parityprobe.config.environments import http_address
from parityprobe.config.secretref import SecretRef
from parityprobe.siem.connector import ConnectorSettings

if TYPE_CHECKING:
    from parityprobe.siem._http import HttpSiem


class HttpConnectorSettings(ConnectorSettings):
    """A connector that speaks HTTP to ``base_url``."""

    base_url: str
    verify_tls: bool = True
    ca_cert: str | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return http_address(v)

    def resolve_paths(self, base_dir: Path) -> None:
        if self.ca_cert is not None:
            self.ca_cert = os.path.abspath(base_dir / Path(self.ca_cert).expanduser())

    def http_client(self, headers: Mapping[str, str]) -> HttpSiem:
        """The connector's HTTP client for ``base_url``: its timeout, TLS settings and these headers
        (imports httpx now, when the connector is made)."""
        from parityprobe.siem._http import HttpSiem

        return HttpSiem(
            self.base_url,
            label=self.name,
            timeout=self.timeout_seconds,
            headers=dict(headers),
            verify=self.verify_tls,
            ca_cert=self.ca_cert,
        )


S = TypeVar("S", bound=HttpConnectorSettings)


class HttpConnector(Generic[S]):
    """What a connector that searches over one HTTP client holds between polls: the client and its
    settings. Each search covers its query's window, so nothing is noted at the start of a wait."""

    def __init__(self, client: HttpSiem, settings: S) -> None:
        self._client = client
        self._settings = settings

    def begin(self) -> None:
        """Nothing to note: every search covers its query's window."""

    def close(self) -> None:
        self._client.close()


def authorization(
    scheme: str, token: SecretRef | None, username: str | None = None, password: SecretRef | None = None
) -> dict[str, str]:
    """The ``Authorization`` header: ``<scheme> <token>``, else HTTP Basic with ``username`` and
    ``password``, else none."""
    if token is not None:
        return {"Authorization": f"{scheme} {token.secret().reveal()}"}
    if username is not None and password is not None:
        from parityprobe.siem._http import basic_credentials

        return {"Authorization": basic_credentials(username, password.secret().reveal())}
    return {}


def one_credential(username: str | None, password: SecretRef | None, other: object, other_name: str) -> None:
    """ValueError unless the credentials are ``username`` with ``password``, or ``other_name``, or none."""
    if (username is None) != (password is None):
        raise ValueError("give username and password together")
    if other is not None and username is not None:
        raise ValueError(f"give {other_name} or username and password, not both")
