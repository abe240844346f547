"""The environment's httpx client as each step uses it, and the plane's base class.

One ``httpx.Client`` per environment lives in the environment's :class:`~parityprobe.probe.ClientCache` (key
``"http"``) so steps share its connection pool and TLS settings (CA bundle, client certificate). What
belongs to a step is passed with each request by :func:`send`, never stored on the shared client: the
step's correlation id in the environment's correlation header, and what is left of the step's time as the
request's timeout (never more than the environment's ``timeout_seconds``). Redirects are not followed: a
3xx is an answer to report, not a detour to take with the step's credentials.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import certifi
import httpx

from parityprobe import __version__
from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext
from parityprobe.secret import Secret

from . import errors
from .errors import HttpSetupError
from .settings import HttpSettings

CLIENT_KEY = "http"
SECTION = "http"
# A step whose deadline has passed still gets a moment, so its request fails as a timeout, not as a bug.
_MIN_REQUEST_SECONDS = 0.05


@dataclass(frozen=True)
class HttpConnection:
    """An environment's httpx client and its settings; ``close`` (called by the ClientCache) frees it."""

    client: httpx.Client
    settings: HttpSettings

    def close(self) -> None:
        self.client.close()


def http_settings(ctx: ProbeContext) -> HttpSettings:
    """The environment's ``http`` section; HttpSetupError when it has none."""
    return ctx.environment.require_section(SECTION, HttpSettings, HttpSetupError)


def connection(ctx: ProbeContext) -> HttpConnection:
    """The environment's shared connection, built on first use."""
    settings = http_settings(ctx)
    conn: HttpConnection = ctx.clients.get(CLIENT_KEY, lambda: _connect(settings))
    return conn


def tls_context(settings: HttpSettings) -> ssl.SSLContext:
    """The environment's TLS settings: its CA bundle (certifi's otherwise), or no verification at all when
    ``verify_tls`` is false, and its client certificate for mutual TLS. A file that cannot be loaded is an
    HttpSetupError naming the file, never its content."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_cert or certifi.where())
    except (OSError, ssl.SSLError):
        raise HttpSetupError(f"cannot load the CA bundle {settings.ca_cert}") from None
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert = settings.client_cert
    if cert is not None:
        try:
            context.load_cert_chain(cert.cert_file, cert.key_file)
        except (OSError, ssl.SSLError):
            raise HttpSetupError(f"cannot load the client certificate {cert.cert_file}") from None
    return context


def _connect(settings: HttpSettings) -> HttpConnection:
    client = httpx.Client(
        verify=tls_context(settings),
        timeout=settings.timeout_seconds,
        follow_redirects=False,
        # Proxies and .netrc credentials come from the environment's own settings only, never the process's.
        trust_env=False,
        headers={"User-Agent": f"parityprobe/{__version__}"},
    )
    return HttpConnection(client, settings)


def send(
    ctx: ProbeContext,
    method: str,
    url: str,
    *,
    token: Secret | None = None,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One timed request for this step: its correlation id in the environment's header, ``token`` (if any)
    as a bearer token, bounded by what is left of the step's time. The body is read before returning."""
    conn = connection(ctx)
    settings = conn.settings
    merged = dict(headers or {})
    merged[settings.correlation_header] = ctx.correlation_id
    if token is not None:
        merged["Authorization"] = f"Bearer {token.reveal()}"
    seconds = max(_MIN_REQUEST_SECONDS, min(settings.timeout_seconds, ctx.remaining()))
    with ctx.timer:
        return conn.client.request(method, url, headers=merged, timeout=seconds, **kwargs)


class HttpProbe:
    """Base of the HTTP plane's probes: every one of them translates exceptions through :mod:`.errors`."""

    effect: ClassVar[Effect] = Effect.READ
    section: ClassVar[str | None] = SECTION

    def translate(self, exc: BaseException) -> Failure | None:
        """See :func:`parityprobe.probes.http.errors.translate`."""
        return errors.translate(exc)
