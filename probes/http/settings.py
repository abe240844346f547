"""The ``http`` section of an environment: where its HTTP API lives, how to reach it, its OAuth 2.0 client.

Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic only, never httpx, so the
environments file loads without the HTTP plane's SDK.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parityprobe.config.environments import SectionSettings, http_address
from parityprobe.config.secretref import SecretRef

AuthMethod = Literal["client_secret_basic", "client_secret_post"]
# RFC 7230 token characters: what a header name may be made of.
_HEADER_NAME_CHARACTERS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def header_name(value: str) -> str:
    """An HTTP header name (RFC 7230 token); ValueError otherwise."""
    if not value or any(c not in _HEADER_NAME_CHARACTERS for c in value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


class HttpClientCert(_Input):
    """A client certificate for mutual TLS: PEM files, paths relative to the environments file. The key may
    be in ``cert_file`` itself. They are files the TLS layer reads, never values in the configuration."""

    cert_file: str
    key_file: str | None = None


class OAuth2Client(_Input):
    """The environment's OAuth 2.0 client: its token endpoint (absolute, or a path under ``base_url``), its
    id (plain, or by reference) and secret (by reference), and how it authenticates (RFC 6749 §2.3.1)."""

    token_url: str = Field(min_length=1)
    client_id: str | SecretRef
    client_secret: SecretRef
    auth_method: AuthMethod = "client_secret_basic"

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, v: str) -> str:
        return v if v.startswith("/") else http_address(v)


class HttpSettings(SectionSettings):
    """How to reach the environment's HTTP API: base address, timeout, TLS (CA bundle, client certificate),
    the header that carries each step's correlation id, and the OAuth 2.0 client, if it has one."""

    base_url: str
    timeout_seconds: float = Field(default=10.0, gt=0)
    verify_tls: bool = True
    ca_cert: str | None = None
    correlation_header: str = "X-Correlation-ID"
    client_cert: HttpClientCert | None = None
    oauth2: OAuth2Client | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return http_address(v)

    @field_validator("correlation_header")
    @classmethod
    def _correlation_header(cls, v: str) -> str:
        return header_name(v)

    def token_endpoint(self) -> str | None:
        """The OAuth 2.0 token endpoint's absolute address, None without an ``oauth2`` client."""
        if self.oauth2 is None:
            return None
        url = self.oauth2.token_url
        return self.base_url + url if url.startswith("/") else url

    def resolve_paths(self, base_dir: Path) -> None:
        # Like secret files, relative TLS file paths are relative to the environments file, not the cwd.
        if self.ca_cert is not None:
            self.ca_cert = _absolute(base_dir, self.ca_cert)
        if self.client_cert is not None:
            self.client_cert.cert_file = _absolute(base_dir, self.client_cert.cert_file)
            if self.client_cert.key_file is not None:
                self.client_cert.key_file = _absolute(base_dir, self.client_cert.key_file)


def _absolute(base_dir: Path, name: str) -> str:
    return str((base_dir / Path(name).expanduser()).resolve())
