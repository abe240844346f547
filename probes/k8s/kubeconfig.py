"""A kubeconfig context, read when the environments file loads: the cluster's address and CA, the user's
bearer token.

What is supported: ``clusters[].cluster`` ``server``, ``certificate-authority`` (a file, relative to the
kubeconfig's directory as kubectl reads it) or ``certificate-authority-data`` (base64 PEM),
``insecure-skip-tls-verify``; ``users[].user`` ``token`` or ``tokenFile`` (read again each time the
environment's client is built, because projected tokens rotate). What is not, and is refused with the
reason, located at the ``kubeconfig`` key: client certificates (``client-certificate``, ``client-key`` and
their ``-data``), ``exec`` credential plugins, ``auth-provider``, ``username``/``password``, impersonation
(``as``, ``as-groups``), a ``proxy-url`` and ``tls-server-name``. Those identities are real, but a probe that
silently acted as someone else (or as nobody) would compare the wrong thing.

The kubeconfig is referenced like a secret file (:class:`Kubeconfig` is a
:class:`~parityprobe.config.secretref.SecretRef`), so the loader reads it with every other secret before
anything runs, registers the token it holds with the redactor, and locates every problem at the
``kubeconfig`` key. Messages name files, contexts and keys, never a value from the file.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import PrivateAttr, model_validator

from parityprobe.config.secretref import SecretRef
from parityprobe.secret import Secret

TOKEN_LABEL = "kubernetes token"
# Kubeconfigs with many clusters grow, but never to this; a larger file is the wrong file.
MAX_KUBECONFIG_BYTES = 1024 * 1024
_UNSUPPORTED_USER_KEYS = {
    "client-certificate": "client certificates",
    "client-certificate-data": "client certificates",
    "client-key": "client certificates",
    "client-key-data": "client certificates",
    "exec": "exec credential plugins",
    "auth-provider": "auth-provider plugins",
    "username": "basic authentication",
    "password": "basic authentication",
    "as": "impersonation",
    "as-groups": "impersonation",
    "as-uid": "impersonation",
    "as-user-extra": "impersonation",
}
_UNSUPPORTED_CLUSTER_KEYS = {"proxy-url": "a proxy", "tls-server-name": "a TLS server name override"}


@dataclass(frozen=True)
class ContextTarget:
    """What one kubeconfig context says: where the API server is, how to trust it, how to authenticate.

    ``token`` is set for a ``token`` user; ``token_file`` (absolute) for a ``tokenFile`` one. ``ca_data`` is
    PEM text (public material)."""

    context: str
    server: str
    ca_file: str | None
    ca_data: str | None
    verify: bool
    token: Secret | None
    token_file: str | None


class Kubeconfig(SecretRef):
    """``kubeconfig: PATH`` (or ``{file: PATH}``); the section's ``context`` picks the context (the file's
    ``current-context`` otherwise). Resolved by the loader like any secret reference: the value it registers
    is the context's bearer token."""

    _context: str | None = PrivateAttr(default=None)
    _target: ContextTarget | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _refuse_literals(cls, data: Any) -> Any:
        # Overrides SecretRef's: a kubeconfig is named by its path, which is no secret.
        if isinstance(data, str):
            return {"file": data}
        if not isinstance(data, dict):
            raise ValueError("kubeconfig takes the path of a kubeconfig file")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Kubeconfig:
        if self.env is not None or self.file is None:
            raise ValueError("kubeconfig takes the path of a kubeconfig file ({file: PATH} or PATH)")
        return self

    def select(self, context: str | None) -> None:
        """The context to read (None: the file's ``current-context``)."""
        self._context = context

    def resolve(self, base_dir: Path, label: str) -> Secret:
        """Read the kubeconfig and its context; ValueError, fit for the user, for anything missing or not
        supported."""
        assert self.file is not None
        path = Path(self.file).expanduser()
        path = path if path.is_absolute() else base_dir / path
        self._target = read_context(path, self._context)
        if self._target.token is not None:
            self._secret = self._target.token
        else:
            assert self._target.token_file is not None
            self._secret = read_token_file(self._target.token_file, TOKEN_LABEL)
        return self._secret

    def target(self) -> ContextTarget:
        """The context read at load time."""
        if self._target is None:
            raise RuntimeError(f"kubeconfig {self.file} was not read")
        return self._target


def read_token_file(path: str, label: str) -> Secret:
    """A bearer token from a file (a projected service-account token, a ``tokenFile``): the rules of a
    ``{file: PATH}`` secret (a regular file, at most 64 KiB of UTF-8, stripped, not empty)."""
    return SecretRef(file=path).resolve(Path(path).parent, label)


def read_context(path: Path, context: str | None) -> ContextTarget:
    """The named context of the kubeconfig at ``path`` (its ``current-context`` when None)."""
    config = _load(path)
    name = context if context is not None else config.get("current-context")
    if not isinstance(name, str) or not name:
        raise ValueError(f"kubeconfig {path} has no current-context: give the section's 'context'")
    entry = _named(config, "contexts", name, path, "context")
    cluster_name, user_name = entry.get("cluster"), entry.get("user")
    if not isinstance(cluster_name, str) or not isinstance(user_name, str):
        raise ValueError(f"context {name!r} of kubeconfig {path} names no cluster or no user")
    cluster = _named(config, "clusters", cluster_name, path, "cluster")
    user = _named(config, "users", user_name, path, "user")
    where = f"kubeconfig {path}, context {name!r}"
    for key, what in {**_UNSUPPORTED_CLUSTER_KEYS, **_UNSUPPORTED_USER_KEYS}.items():
        if key in (user if key in _UNSUPPORTED_USER_KEYS else cluster):
            raise ValueError(f"{where}: {what} ({key}) are not supported; use a bearer token or tokenFile")
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise ValueError(f"{where}: the cluster's server must be an https:// address")
    ca_file, ca_data = _authority(cluster, path.parent, where)
    verify = cluster.get("insecure-skip-tls-verify") is not True
    token, token_file = user.get("token"), user.get("tokenFile")
    if isinstance(token, str) and token:
        return ContextTarget(
            name, server.rstrip("/"), ca_file, ca_data, verify, Secret(token, TOKEN_LABEL), None
        )
    if isinstance(token_file, str) and token_file:
        absolute = os.path.abspath(path.parent / Path(token_file).expanduser())
        return ContextTarget(name, server.rstrip("/"), ca_file, ca_data, verify, None, absolute)
    raise ValueError(f"{where}: the user has neither a token nor a tokenFile")


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_KUBECONFIG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    if len(raw) > MAX_KUBECONFIG_BYTES:
        raise ValueError(f"kubeconfig {path} is larger than {MAX_KUBECONFIG_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        # The parser's own message quotes the offending line, which may hold a token: say where only.
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"kubeconfig {path} is not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise ValueError(f"kubeconfig {path} is not a kubeconfig (no mapping at the top)")
    return data


def _named(config: dict[str, Any], key: str, name: str, path: Path, what: str) -> dict[str, Any]:
    """The ``what`` part of the entry of list ``key`` named ``name`` (kubeconfig lists are named entries)."""
    entries = config.get(key)
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(what)
            if isinstance(body, dict):
                return body
            raise ValueError(f"{what} {name!r} of kubeconfig {path} is empty")
    raise ValueError(f"kubeconfig {path} has no {what} named {name!r}")


def _authority(cluster: dict[str, Any], directory: Path, where: str) -> tuple[str | None, str | None]:
    """The cluster's CA: a file (absolute) or PEM text; both None for the system's trust store."""
    data = cluster.get("certificate-authority-data")
    if isinstance(data, str) and data:
        try:
            pem = base64.b64decode(data, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"{where}: certificate-authority-data is not base64 PEM") from None
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise ValueError(f"{where}: certificate-authority-data holds no PEM certificate")
        return None, pem
    file = cluster.get("certificate-authority")
    if isinstance(file, str) and file:
        return os.path.abspath(directory / Path(file).expanduser()), None
    return None, None
