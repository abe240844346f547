"""The ``tls`` section of an environment: the trust store its TLS probes verify servers against, the client
certificates (mutual TLS) they may present, and the window within which a certificate's expiry is worth a
finding.

Certificates are public material and named by path; a client certificate's private key is a secret and only
ever referenced (``{file: PATH}`` or ``{env: NAME}``), read by the loader into a
:class:`~parityprobe.secret.Secret` and registered with the redactor. The section is optional: without it a
probe verifies against the system trust store and has no client certificate. Registered in the
``parityprobe.sections`` entry-point group; it imports pydantic only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from parityprobe.config.environments import SectionSettings
from parityprobe.config.secretref import SecretRef

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _certificate_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("a client certificate's name is 1-64 letters, digits, '.', '_' or '-'")
    return value


CertificateName = Annotated[str, AfterValidator(_certificate_name)]


class ClientCertificate(BaseModel):
    """A client certificate: its PEM file (the leaf, then any intermediates) and its private key (PEM,
    unencrypted) by secret reference."""

    model_config = ConfigDict(extra="forbid")

    cert: str = Field(min_length=1)
    key: SecretRef


class TlsSettings(SectionSettings):
    """``ca_bundle``: a PEM file of trusted roots (relative to the environments file); None: the system
    trust store. ``client_certificates``: by the name a step's ``client_certificate`` gives."""

    ca_bundle: str | None = Field(default=None, min_length=1)
    client_certificates: dict[CertificateName, ClientCertificate] = Field(default_factory=dict)

    def resolve_paths(self, base_dir: Path) -> None:
        # Like secret files, relative paths are relative to the environments file, not the cwd.
        if self.ca_bundle is not None:
            self.ca_bundle = _absolute(base_dir, self.ca_bundle)
        for certificate in self.client_certificates.values():
            certificate.cert = _absolute(base_dir, certificate.cert)


def _absolute(base_dir: Path, name: str) -> str:
    return str((base_dir / Path(name).expanduser()).resolve())
