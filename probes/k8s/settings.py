"""The ``k8s`` section of an environment: which Kubernetes API server the probes talk to, and as whom.

Exactly one way, chosen in the environments file:

- ``in_cluster: true`` — the pod's own service account, as a daemon running in the cluster has it: the
  projected token, ``ca.crt`` and ``namespace`` in ``service_account_dir``
  (``/var/run/secrets/kubernetes.io/serviceaccount`` unless given) and the API server at
  ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``. Read when the probes first run, not at
  load: ``parityprobe validate`` on a laptop must accept the environments file the daemon uses in the pod.
- ``kubeconfig: PATH`` with ``context: NAME`` (the file's ``current-context`` without one) — read at load,
  see :mod:`.kubeconfig` for what it supports.
- ``api_server: https://…`` with ``token`` (a secret reference) and ``ca_bundle`` (a PEM file; the system's
  trust store without one).

Tokens are secrets: referenced, read into :class:`~parityprobe.secret.Secret`, registered with the redactor.
Registered in the ``parityprobe.sections`` entry-point group; it imports pydantic (and PyYAML, for the
kubeconfig) only, never httpx, so the environments file loads without the plane's HTTP client.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from parityprobe.config.environments import SectionSettings
from parityprobe.config.secretref import SecretRef

from .kubeconfig import Kubeconfig

if TYPE_CHECKING:
    from parityprobe.probe import ProbeContext

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class K8sSettings(SectionSettings):
    """How to reach and authenticate to the environment's Kubernetes API server (one way of three)."""

    in_cluster: bool = False
    service_account_dir: str | None = None
    kubeconfig: Kubeconfig | None = None
    context: str | None = Field(default=None, min_length=1)
    api_server: str | None = None
    ca_bundle: str | None = None
    token: SecretRef | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("api_server")
    @classmethod
    def _api_server(cls, v: str | None) -> str | None:
        # A bearer token never travels in clear text.
        if v is not None and not v.startswith("https://"):
            raise ValueError("must start with https:// (the token is sent with every request)")
        return v.rstrip("/") if v is not None else v

    @model_validator(mode="after")
    def _one_way(self) -> K8sSettings:
        ways = [
            name
            for name, chosen in (
                ("in_cluster: true", self.in_cluster),
                ("kubeconfig", self.kubeconfig is not None),
                ("api_server", self.api_server is not None),
            )
            if chosen
        ]
        if len(ways) != 1:
            given = f"; got {' and '.join(ways)}" if ways else ""
            raise ValueError(
                "give exactly one way to reach the cluster: 'in_cluster: true', 'kubeconfig' (with "
                f"'context'), or 'api_server' (with 'token' and 'ca_bundle'){given}"
            )
        if self.context is not None and self.kubeconfig is None:
            raise ValueError("'context' names a context of the kubeconfig: give 'kubeconfig' too")
        if self.service_account_dir is not None and not self.in_cluster:
            raise ValueError("'service_account_dir' goes with 'in_cluster: true'")
        if self.api_server is None and (self.token is not None or self.ca_bundle is not None):
            raise ValueError("'token' and 'ca_bundle' go with 'api_server'")
        if self.api_server is not None and self.token is None:
            raise ValueError("'api_server' needs a 'token' ({file: PATH} or {env: NAME})")
        if self.kubeconfig is not None:
            self.kubeconfig.select(self.context)
        return self

    def way(self) -> str:
        """How this environment reaches its cluster, for messages: ``in-cluster``, ``kubeconfig context
        staging``, ``api_server``."""
        if self.in_cluster:
            return "in-cluster service account"
        if self.kubeconfig is not None:
            return f"kubeconfig context {self.context}" if self.context else "kubeconfig current-context"
        return "api_server"

    def account_dir(self) -> str:
        """The in-cluster service account's directory (token, ca.crt, namespace)."""
        return self.service_account_dir or SERVICE_ACCOUNT_DIR

    def server_version(self, ctx: ProbeContext) -> str:
        """The API server's version, from ``/version`` (see :func:`.client.server_version`)."""
        from .client import server_version  # httpx: only when a run asks

        return server_version(ctx)

    def resolve_paths(self, base_dir: Path) -> None:
        # Like secret files, relative paths are relative to the environments file, not the cwd. Made absolute
        # without following symlinks: a kubelet's token path is a symlink into a directory it replaces at
        # each rotation.
        if self.service_account_dir is not None:
            self.service_account_dir = _absolute(base_dir, self.service_account_dir)
        if self.ca_bundle is not None:
            self.ca_bundle = _absolute(base_dir, self.ca_bundle)
        if self.kubeconfig is not None and self.kubeconfig.file is not None:
            self.kubeconfig.file = _absolute(base_dir, self.kubeconfig.file)


def _absolute(base_dir: Path, name: str) -> str:
    return os.path.abspath(base_dir / Path(name).expanduser())
