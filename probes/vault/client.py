"""The environment's Vault client as each step uses it, the token a probe acts with, the plane's base class.

One hvac client per environment lives in the environment's :class:`~parityprobe.probe.ClientCache` (key
``"vault"``) so steps share its connection pool. What belongs to a step (its correlation id, its token, its
deadline) is not stored on that shared client: :func:`step_client` puts it in a context variable that the
client's adapter reads for every request, so no request leaves without the step's ``X-Correlation-ID``, and
steps running in different worker threads never see each other's values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import hvac
import hvac.exceptions as hv
from hvac.adapters import JSONAdapter

from parityprobe.config.secretref import SecretRef
from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext
from parityprobe.secret import Secret

from . import errors
from .errors import VaultSetupError
from .settings import VaultApprole, VaultJwt, VaultKubernetes, VaultSettings, VaultToken

CORRELATION_HEADER = "X-Correlation-ID"
CLIENT_KEY = "vault"
SECTION = "vault"
TOKEN_KEY = "vault.token"


@dataclass(frozen=True, slots=True)
class _Call:
    correlation_id: str
    token: str | None
    deadline: float
    timeout: float

    def request_timeout(self) -> float:
        # Each request gets what is left of the step, never more than the environment's own timeout.
        return max(0.05, min(self.timeout, self.deadline - time.monotonic()))


_CALL: ContextVar[_Call | None] = ContextVar("parityprobe_vault_call", default=None)


class _StepAdapter(JSONAdapter):  # type: ignore[misc]  # hvac is untyped
    """hvac's JSON adapter, stamping each request with the current step's correlation id, token and timeout.

    The adapter's own ``token`` stays None: hvac would write it over the step's ``X-Vault-Token`` header.
    """

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        raise_exception: bool = True,
        **kwargs: Any,
    ) -> Any:
        call = _CALL.get()
        if call is None:
            raise RuntimeError("Vault request made outside step_client(): it would carry no correlation id")
        merged = dict(headers or {})
        merged[CORRELATION_HEADER] = call.correlation_id
        if call.token is not None:
            merged["X-Vault-Token"] = call.token
        kwargs["timeout"] = call.request_timeout()
        return super().request(method, url, headers=merged, raise_exception=raise_exception, **kwargs)


@dataclass(frozen=True)
class VaultConnection:
    """An environment's hvac client and its settings; ``close`` (called by the ClientCache) frees the pool."""

    client: Any
    settings: VaultSettings

    def close(self) -> None:
        self.client.adapter.close()


def vault_settings(ctx: ProbeContext) -> VaultSettings:
    """The environment's ``vault`` section; VaultSetupError when it has none."""
    return ctx.environment.require_section(SECTION, VaultSettings, VaultSetupError)


def connection(ctx: ProbeContext) -> VaultConnection:
    """The environment's shared connection, built on first use."""
    settings = vault_settings(ctx)
    conn: VaultConnection = ctx.clients.get(CLIENT_KEY, lambda: _connect(settings))
    return conn


def _connect(settings: VaultSettings) -> VaultConnection:
    verify: bool | str = str(Path(settings.ca_cert).expanduser()) if settings.ca_cert else settings.verify_tls
    # hvac.Client's constructor falls back to VAULT_TOKEN, ~/.vault-token and VAULT_CLIENT_CERT; a probe must
    # act only with what the environment names, so the adapter is built here and handed to the client through
    # its adapter factory (assigning client.adapter later does not reach hvac's per-method API objects).
    adapter = _StepAdapter(
        base_uri=settings.address,
        token=None,
        cert=None,
        verify=verify,
        timeout=settings.timeout_seconds,
        namespace=settings.namespace,
    )
    client = hvac.Client(url=settings.address, token="", adapter=lambda **_: adapter)
    return VaultConnection(client, settings)


@contextmanager
def _calling(conn: VaultConnection, ctx: ProbeContext, token: Secret | None) -> Iterator[Any]:
    secret = token.reveal() if token is not None else None
    reset = _CALL.set(_Call(ctx.correlation_id, secret, ctx.deadline, conn.settings.timeout_seconds))
    try:
        yield conn.client
    finally:
        _CALL.reset(reset)


@contextmanager
def step_client(ctx: ProbeContext, token: Secret | None = None) -> Iterator[Any]:
    """The environment's ``hvac.Client``, acting for this step (with ``token``, or none) inside the block."""
    with _calling(connection(ctx), ctx, token) as client:
        yield client


def acting_token(ctx: ProbeContext, given: Secret | None) -> Secret:
    """The token a probe acts with: ``given`` if the step passed one, else the environment's own.

    An AppRole, JWT or Kubernetes environment logs in once per invocation (under the current step's
    correlation id) and keeps the token in the ClientCache; the token is registered with the redactor at once.
    """
    if given is not None:
        return given
    auth = vault_settings(ctx).auth
    if isinstance(auth, VaultToken):
        token = auth.token.secret()
        ctx.redactor.register(token)
        return token
    # Built outside the cache's factory: the cache holds a non-reentrant lock while a factory runs.
    conn = connection(ctx)
    if isinstance(auth, VaultJwt | VaultKubernetes):
        from .jwt_login import workload_token  # imported here: jwt_login builds on this module

        workload = auth
        return ctx.clients.get(TOKEN_KEY, lambda: workload_token(ctx, workload))
    return ctx.clients.get(TOKEN_KEY, lambda: _approle_token(conn, ctx, auth))


def _approle_token(conn: VaultConnection, ctx: ProbeContext, auth: VaultApprole) -> Secret:
    with _calling(conn, ctx, None) as client:
        reply = client.auth.approle.login(
            role_id=auth.role_id.secret().reveal(),
            secret_id=auth.secret_id.secret().reveal(),
            mount_point=auth.mount,
            use_token=False,
        )
    token = Secret(str(required(reply, "auth", "client_token")), "vault token")
    ctx.redactor.register(token)
    return token


class LoginUndo:
    """The undo of a login: revoke the token it creates (``vault.token_revoke``, missing_ok).

    Recorded when the block starts, before the request; :meth:`created` hands it the token, held in memory
    only. When the block raises, nothing is left to undo: a refused login created nothing, and after a fault
    the token, if the server issued one, was never seen, so it cannot be revoked and ends with its TTL.
    """

    def __init__(self, ctx: ProbeContext, source: str) -> None:
        self._ctx = ctx
        description = f"revoke the token from {source}"
        self._entry = ctx.record_undo(description, "vault.token_revoke", missing_ok=True)

    def __enter__(self) -> LoginUndo:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self._ctx.undo_not_needed(self._entry)

    def created(self, token: Secret, token_type: object = None) -> None:
        """The login issued ``token``; a batch token cannot be revoked (OpenBao: 400 "batch tokens cannot
        be revoked") and ends with its TTL, so it needs no undo."""
        if token_type == "batch":
            self._ctx.undo_not_needed(self._entry)
        else:
            self._ctx.amend_undo(self._entry, held={"token": token})


def read_secret_file(path: str, label: str) -> Secret:
    """A credential handed over as a file (a projected token, a wrapped secret id), read when the step runs,
    relative to the working directory, with the limits of a ``{file: ...}`` secret reference (a regular file,
    at most 64 KiB of UTF-8, stripped, not empty). A file that cannot be one is a :class:`VaultSetupError`
    naming it, never its content."""
    try:
        return SecretRef(file=path).resolve(Path.cwd(), label)
    except ValueError as exc:
        raise VaultSetupError(f"{label}: {exc}") from None


def server_version(ctx: ProbeContext) -> str:
    """The server's version (``2.1.0``) from ``sys/health``, which needs no token; asked so that every state
    (standby, sealed, uninitialised) answers 200 with its body rather than a status code."""
    with step_client(ctx) as client:
        health = client.sys.read_health_status(
            method="GET",
            standby_ok=True,
            performance_standby_code=200,
            dr_secondary_code=200,
            sealed_code=200,
            uninit_code=200,
        )
    return str(required(health, "version"))


def required(reply: Any, *keys: str) -> Any:
    """``reply[k1][k2]…``; a reply of the wrong shape is the target's fault (hvac UnexpectedError)."""
    value = reply
    for key in keys:
        if not isinstance(value, dict) or value.get(key) is None:
            raise hv.UnexpectedError(f"Vault reply has no {'.'.join(keys)}")
        value = value[key]
    return value


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (Vault sends ``null`` for empty maps)."""
    return value if isinstance(value, dict) else {}


def string_set(value: Any) -> frozenset[str]:
    """A JSON list of names as a frozenset (``null`` → empty)."""
    return frozenset(str(v) for v in value) if isinstance(value, list) else frozenset()


def approle_identity(metadata: Any, fallback: str | None = None) -> str | None:
    """``approle/<role_name>`` from a token's metadata; the method, not the mount path, so environments that
    mount AppRole at different paths still compare, and login and lookup-self agree."""
    role = mapping(metadata).get("role_name")
    if isinstance(role, str) and role:
        return f"approle/{role}"
    return fallback


class DryByDefault:
    """Mixed into probes whose default, ``dry: true``, changes nothing and whose ``dry: false`` changes the
    target: the step's effect follows ``dry`` (:meth:`effect_for`, which the plan checks against every
    environment's safety), and :meth:`refuse_real_change` stops a real change, before any request, where
    the environment does not allow ``write``. The class effect stays READ so the dry default runs in
    read-only environments."""

    @classmethod
    def effect_for(cls, with_: Mapping[str, Any]) -> Effect:
        """``write`` unless the step leaves ``dry`` at its default or sets it to true."""
        return Effect.READ if with_.get("dry", True) is True else Effect.WRITE

    @staticmethod
    def refuse_real_change(dry: bool, ctx: ProbeContext, reason: str) -> None:
        """VaultSetupError(``reason``) for a real change where ``write`` is not allowed: checked before
        anything else, so a refused step does not even log in."""
        if not dry and not ctx.environment.safety.allows(Effect.WRITE):
            raise VaultSetupError(reason)


class VaultProbe:
    """Base of the Vault plane's probes: every one of them translates exceptions through :mod:`.errors`."""

    effect: ClassVar[Effect] = Effect.READ
    section: ClassVar[str | None] = SECTION

    def translate(self, exc: BaseException) -> Failure | None:
        """See :func:`parityprobe.probes.vault.errors.translate`."""
        return errors.translate(exc)
