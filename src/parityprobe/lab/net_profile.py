"""What a lab profile says about an environment's network side: the TCP listeners it has (``net``), its TLS
server and the certificates around it (``tls``), and the certificate authorities those name.

A certificate authority is declared once, for the whole lab (``certificate_authorities``), and named by
the environments that use it: two environments naming the same authority share it (one key, one root
certificate, the same fingerprint), as environments behind one internal CA do; two authorities with the
same ``common_name`` are different roots that merely look alike. The lab generates every key when it
starts and writes none of the authorities' keys anywhere.

Each listener and each TLS endpoint set vars in the environments file the lab writes, so that scenarios
name them and never a port: a listener or endpoint ``db`` sets ``db_host`` and ``db_port``; the TLS side
also ``tls_server_name``.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(min_length=1)]
# A listener's name becomes the prefix of two vars (``<name>_host``, ``<name>_port``).
ListenerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# A DNS name the server certificate is issued for, and the name the probe sends as SNI.
DnsName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$")]

LAB_HOST = "127.0.0.1"
SERVER_NAME_VAR = "tls_server_name"
WORKLOAD_CERTIFICATE = "workload"  # the client certificate's name in the environment's tls section


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Listener(enum.Enum):
    """What a listener's port does: ``open`` accepts connections; ``closed`` refuses them (the port is held
    bound without listening, so nothing else can take it while the lab runs)."""

    OPEN = "open"
    CLOSED = "closed"


class ClientCertificates(enum.Enum):
    """Whether the TLS server asks clients for a certificate (from the environment's client CA)."""

    REQUIRED = "required"  # a handshake without one fails: mutual TLS
    OPTIONAL = "optional"  # asked for, checked when given, a handshake without one succeeds
    NONE = "none"  # never asked for


class CertificateAuthority(_Input):
    """A root certificate authority the lab generates: its subject's common name."""

    common_name: Name


class NetProfile(_Input):
    """The environment's TCP listeners, by name: open or closed."""

    listeners: dict[ListenerName, Listener] = Field(min_length=1)

    def vars(self) -> list[str]:
        """The vars the listeners set."""
        return [f"{name}_{part}" for name in self.listeners for part in ("host", "port")]


class TlsProfile(_Input):
    """The environment's TLS endpoints and their trust settings.

    ``endpoints``: a TLS server per name, each asking clients for certificates as it says, all presenting
    one certificate issued by ``server_ca`` (for ``server_name`` and the loopback address); ``trusted_cas``
    are what the environment's ``tls.ca_bundle`` holds; ``client_ca`` issues the workload's client
    certificate (``workload`` in the environment's ``tls.client_certificates``) and is the one the servers
    accept client certificates from."""

    server_name: DnsName = "api.internal"
    server_ca: Name
    trusted_cas: list[Name] = Field(min_length=1)
    client_ca: Name
    endpoints: dict[ListenerName, ClientCertificates] = Field(min_length=1)
    days: int = Field(default=365, ge=1, le=3650)

    def vars(self) -> list[str]:
        """The vars the endpoints set."""
        return [*(f"{name}_{part}" for name in self.endpoints for part in ("host", "port")), SERVER_NAME_VAR]

    def authorities(self) -> set[str]:
        """Every authority this environment names."""
        return {self.server_ca, self.client_ca, *self.trusted_cas}


def check_authorities(declared: dict[str, CertificateAuthority], tls: dict[str, TlsProfile]) -> None:
    """ValueError when an environment's ``tls`` names an authority the profile does not declare."""
    for environment, profile in tls.items():
        unknown = sorted(profile.authorities() - set(declared))
        if unknown:
            raise ValueError(
                f"environment {environment!r}: tls names undeclared certificate_authorities: "
                + ", ".join(unknown)
            )


def lab_vars(net: NetProfile | None, tls: TlsProfile | None) -> list[str]:
    """The vars the lab sets for an environment's listeners and TLS endpoints (a name twice: a clash)."""
    return [*(net.vars() if net else ()), *(tls.vars() if tls else ())]
