"""The lab's network side, as ``lab up`` builds it: the certificate authorities of the profile, generated
once per lab; per environment with ``net`` or ``tls``, its certificates written to ``<env>/tls/`` and its
listeners and TLS endpoints started as one process (:mod:`.net_servers`); and what the environments file
gets for it — vars for the hosts and ports, and a ``tls`` section.

``<env>/tls/`` (0700, removed by ``lab down``)::

    ca-bundle.pem              the trusted authorities' certificates: the environment's ``tls.ca_bundle``
    client-ca.pem              the authority the server accepts client certificates from
    server.crt, server.key     the TLS endpoints' certificate and key (0600), read by the server process
    workload.crt, workload.key the workload's client certificate and key (0600): the ``workload`` entry of
                               ``tls.client_certificates``, the key by ``{file: ...}`` reference only

The authorities' own keys are held in memory while the lab starts, and written nowhere.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from parityprobe.errors import LabError
from parityprobe.lab.certificates import CertificateAuthority, make_ca
from parityprobe.lab.net_profile import LAB_HOST, SERVER_NAME_VAR, WORKLOAD_CERTIFICATE, ClientCertificates
from parityprobe.lab.net_profile import CertificateAuthority as AuthorityProfile
from parityprobe.lab.net_servers import HEALTH_PATH
from parityprobe.lab.profile import EnvironmentProfile
from parityprobe.lab.servers import ServerProcess, open_private, start_net_servers

NET = "net"  # the server kind in the lab state
TLS_DIR = "tls"
_CONFIG = "net-servers.json"
_CLIENT_COMMON_NAME = "workload"


@dataclass(frozen=True)
class NetworkEntry:
    """What an environment's entry in the environments file gets from its network side."""

    vars: dict[str, str]
    tls: dict[str, Any] | None


def has_network(env: EnvironmentProfile) -> bool:
    """Whether the environment has listeners or TLS endpoints."""
    return env.net is not None or env.tls is not None


def generate_authorities(
    declared: Mapping[str, AuthorityProfile], environments: Mapping[str, EnvironmentProfile]
) -> dict[str, CertificateAuthority]:
    """A new root for each declared authority some environment names (none for the others)."""
    used = {ca for env in environments.values() if env.tls is not None for ca in env.tls.authorities()}
    return {name: make_ca(declared[name].common_name) for name in sorted(used)}


def start_network(
    directory: Path,
    name: str,
    env: EnvironmentProfile,
    authorities: Mapping[str, CertificateAuthority],
    on_spawn: Callable[[ServerProcess], None],
) -> NetworkEntry:
    """Write ``name``'s certificates, start its listeners and TLS endpoints, and say where they are."""
    config: dict[str, Any] = {
        "listeners": {n: kind.value for n, kind in (env.net.listeners.items() if env.net else ())},
        "tls": None,
    }
    tls_section: dict[str, Any] | None = None
    if env.tls is not None:
        folder = tls_folder(directory, name)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tls = env.tls
        server = authorities[tls.server_ca].issue_server(
            tls.server_name, dns_names=[tls.server_name], ip_addresses=[LAB_HOST], days=tls.days
        )
        cert, key = server.write(folder, "server")
        client_ca = folder / "client-ca.pem"
        client_ca.write_bytes(authorities[tls.client_ca].cert_pem())
        bundle = folder / "ca-bundle.pem"
        bundle.write_bytes(b"".join(authorities[ca].cert_pem() for ca in tls.trusted_cas))
        workload = authorities[tls.client_ca].issue_client(_CLIENT_COMMON_NAME, days=tls.days)
        workload_cert, workload_key = workload.write(folder, "workload")
        config["tls"] = {
            "cert": str(cert),
            "key": str(key),
            "endpoints": {
                endpoint: {
                    "client_ca": None if asks is ClientCertificates.NONE else str(client_ca),
                    "require_client_cert": asks is ClientCertificates.REQUIRED,
                }
                for endpoint, asks in tls.endpoints.items()
            },
        }
        tls_section = {
            "ca_bundle": str(bundle),
            "client_certificates": {
                WORKLOAD_CERTIFICATE: {
                    "cert": str(workload_cert),
                    "key": {"file": str(workload_key.relative_to(directory))},
                }
            },
        }
    workdir = directory / name / NET
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / _CONFIG
    with open_private(config_file) as stream:
        stream.write(json.dumps(config).encode("utf-8"))
    process = start_net_servers(workdir, config_file, on_spawn=on_spawn)
    where = _where(process)
    variables: dict[str, str] = {}
    for listener, port in {**where["listeners"], **where["tls"]}.items():
        variables[f"{listener}_host"] = LAB_HOST
        variables[f"{listener}_port"] = str(port)
    if env.tls is not None:
        variables[SERVER_NAME_VAR] = env.tls.server_name
    return NetworkEntry(variables, tls_section)


def tls_folder(directory: Path, name: str) -> Path:
    return directory / name / TLS_DIR


def forget_network(directory: Path, name: str) -> None:
    """Remove ``name``'s certificates and keys (only the folder the lab writes them to)."""
    folder = tls_folder(directory, name)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def _where(process: ServerProcess) -> dict[str, Any]:
    """The ports the process bound, from its health endpoint."""
    try:
        answer = httpx.get(process.url + HEALTH_PATH, timeout=5.0)
        answer.raise_for_status()
        where: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise LabError(f"the lab's network server did not say where it listens: {exc}") from exc
    return where
