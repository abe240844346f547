"""The environment's connection to its Kubernetes API server, as each step uses it; the plane's base class.

One ``httpx.Client`` per environment lives in the environment's :class:`~parityprobe.probe.ClientCache` (key
``"k8s"``), built on first use from the ``k8s`` section (in-cluster service account, kubeconfig context or
explicit ``api_server``), with the token registered with the redactor. What belongs to a step is passed with
each request by :func:`send`: the bearer token, what is left of the step's time as the timeout, and the
step's correlation id, twice:

- as the ``Audit-ID`` request header. kube-apiserver keeps a client's ``Audit-ID`` as the request's audit id
  (its ``WithAuditInit`` filter generates one only when the header is absent, and echoes it in the reply), so
  the audit event's ``auditID`` is the correlation id itself. Servers that validate it accept letters,
  digits and inner hyphens up to 256 characters and answer 400 otherwise, so it is sent only in that shape
  (``pp-<run>-<step>`` always is);
- at the end of the ``User-Agent`` (``parityprobe/0.1.0 (pp-…)``), which audit events record as
  ``userAgent``: found even where a proxy in front of the API server sets its own ``Audit-ID``.

Redirects are not followed, and proxies or ``.netrc`` credentials from the process's environment are not used.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any, ClassVar

import certifi
import httpx

from parityprobe import __version__
from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext
from parityprobe.secret import Secret

from . import errors
from .errors import ApiRefusal, BadReply, K8sSetupError
from .kubeconfig import TOKEN_LABEL, read_token_file
from .settings import K8sSettings

log = logging.getLogger(__name__)

SECTION = "k8s"
CLIENT_KEY = "k8s"
IDENTITY_KEY = "k8s.identity"
VERSION_KEY = "k8s.version"
SELF_SUBJECT_REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
# kube-apiserver's validation of a client's Audit-ID (staging/src/k8s.io/apiserver/.../with_auditid.go).
_AUDIT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]")
_MAX_AUDIT_ID = 256
# A step whose deadline has passed still gets a moment, so its request fails as a timeout, not as a bug.
_MIN_REQUEST_SECONDS = 0.05


@dataclass(frozen=True)
class K8sConnection:
    """An environment's httpx client, its API server's address and the token it acts with; ``close`` (called
    by the ClientCache) frees it."""

    client: httpx.Client
    server: str
    token: Secret
    timeout: float

    def close(self) -> None:
        self.client.close()


def k8s_settings(ctx: ProbeContext) -> K8sSettings:
    """The environment's ``k8s`` section; K8sSetupError when it has none."""
    return ctx.environment.require_section(SECTION, K8sSettings, K8sSetupError)


def connection(ctx: ProbeContext) -> K8sConnection:
    """The environment's shared connection, built on first use; its token is registered with this run's
    redactor on every use (a daemon's later runs have their own)."""
    settings = k8s_settings(ctx)
    conn: K8sConnection = ctx.clients.get(CLIENT_KEY, lambda: _connect(settings))
    ctx.redactor.register(conn.token)
    return conn


def send(
    ctx: ProbeContext,
    method: str,
    path: str,
    *,
    body: Any = None,
    content_type: str | None = None,
    timed: bool = True,
) -> httpx.Response:
    """One request for this step (see the module docstring); ``body`` is sent as JSON. Timed with the step's
    timer unless ``timed`` is false (lookups that are not the step's action). The reply is read in full."""
    conn = connection(ctx)
    headers = {
        "Authorization": f"Bearer {conn.token.reveal()}",
        "Accept": "application/json",
        "User-Agent": f"parityprobe/{__version__} ({ctx.correlation_id})",
    }
    if len(ctx.correlation_id) <= _MAX_AUDIT_ID and _AUDIT_ID.fullmatch(ctx.correlation_id):
        headers["Audit-ID"] = ctx.correlation_id
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["json"] = body
        if content_type is not None:
            headers["Content-Type"] = content_type
    seconds = max(_MIN_REQUEST_SECONDS, min(conn.timeout, ctx.remaining()))
    url = conn.server + path
    if not timed:
        return conn.client.request(method, url, headers=headers, timeout=seconds, **kwargs)
    with ctx.timer:
        return conn.client.request(method, url, headers=headers, timeout=seconds, **kwargs)


def succeeded(reply: httpx.Response) -> httpx.Response:
    """``reply`` when it is a 2xx; ApiRefusal (with its Retry-After) otherwise."""
    if not 200 <= reply.status_code < 300:
        raise ApiRefusal(reply.status_code, errors.retry_after_seconds(reply.headers.get("Retry-After")))
    return reply


def json_object(reply: httpx.Response) -> dict[str, Any]:
    """The reply's JSON object; BadReply for anything else (a JSONDecodeError for what is not JSON)."""
    data = reply.json()
    if not isinstance(data, dict):
        raise BadReply("reply is not a json object")
    return data


def identity(ctx: ProbeContext) -> str | None:
    """The username the API server reports for the environment's credential (a SelfSubjectReview), asked
    once per environment and invocation. None — and logged — where the server has no SelfSubjectReview
    (before Kubernetes 1.28: identity unknown) or the question failed; a failure is asked again next time,
    and never changes the step's decision."""
    try:
        found: str | None = ctx.clients.get(IDENTITY_KEY, lambda: _self_subject(ctx))
    except (httpx.HTTPError, ApiRefusal, BadReply, ValueError) as exc:
        failure = errors.translate(exc)
        log.info("%s: identity unknown: %s", ctx.environment.name, failure.reason if failure else "bad reply")
        return None
    return found


def server_version(ctx: ProbeContext) -> str:
    """The version of the environment's API server, as ``Kubernetes v1.30.2`` (``GET /version``'s
    ``gitVersion``), asked once per environment and invocation. Raises like a probe (the plane's
    :func:`~.errors.translate` reads it)."""
    found: str = ctx.clients.get(VERSION_KEY, lambda: _version(ctx))
    return found


def _version(ctx: ProbeContext) -> str:
    info = json_object(succeeded(send(ctx, "GET", "/version", timed=False)))
    git_version = info.get("gitVersion")
    if not isinstance(git_version, str) or not git_version:
        raise BadReply("/version has no gitVersion")
    return f"Kubernetes {git_version}"


def _self_subject(ctx: ProbeContext) -> str | None:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    reply = send(ctx, "POST", SELF_SUBJECT_REVIEW, body=body, timed=False)
    if reply.status_code == 404:
        log.info(
            "%s: the API server has no SelfSubjectReview (Kubernetes < 1.28): identity unknown",
            ctx.environment.name,
        )
        return None
    status = json_object(succeeded(reply)).get("status")
    user = status.get("userInfo") if isinstance(status, dict) else None
    username = user.get("username") if isinstance(user, dict) else None
    if not isinstance(username, str) or not username:
        raise BadReply("SelfSubjectReview has no status.userInfo.username")
    return username


@dataclass(frozen=True)
class _Endpoint:
    """Where the API server is, how to trust it, and the token to send: one of the section's three ways."""

    server: str
    token: Secret
    ca_file: str | None = None
    ca_data: str | None = None
    verify: bool = True


def _connect(settings: K8sSettings) -> K8sConnection:
    endpoint = _endpoint(settings)
    client = httpx.Client(
        verify=_tls_context(endpoint.ca_file, endpoint.ca_data, endpoint.verify),
        timeout=settings.timeout_seconds,
        follow_redirects=False,
        trust_env=False,
    )
    return K8sConnection(client, endpoint.server, endpoint.token, settings.timeout_seconds)


def _endpoint(settings: K8sSettings) -> _Endpoint:
    if settings.in_cluster:
        return _in_cluster(settings)
    if settings.kubeconfig is not None:
        target = settings.kubeconfig.target()
        # A tokenFile is read again each time the client is built: projected tokens rotate.
        token = target.token if target.token is not None else _token_file(target.token_file, settings)
        return _Endpoint(target.server, token, target.ca_file, target.ca_data, target.verify)
    assert settings.api_server is not None and settings.token is not None  # the section's validator
    return _Endpoint(settings.api_server, settings.token.secret(), settings.ca_bundle)


def _in_cluster(settings: K8sSettings) -> _Endpoint:
    """The pod's API server address, service-account token and CA file (what client-go's InClusterConfig
    reads)."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise K8sSetupError(
            "in_cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod)"
        )
    directory = settings.account_dir()
    token = _token_file(os.path.join(directory, "token"), settings)
    ca_file = os.path.join(directory, "ca.crt")
    if not os.path.isfile(ca_file):
        raise K8sSetupError(f"in_cluster: no CA certificate at {ca_file}")
    address = f"[{host}]" if ":" in host else host
    return _Endpoint(f"https://{address}:{port}", token, ca_file)


def _token_file(path: str | None, settings: K8sSettings) -> Secret:
    assert path is not None
    try:
        return read_token_file(path, TOKEN_LABEL)
    except ValueError as exc:
        raise K8sSetupError(f"{settings.way()}: {exc}") from None


def _tls_context(ca_file: str | None, ca_data: str | None, verify: bool) -> ssl.SSLContext:
    """Trust the cluster's CA (a file or PEM text; certifi's bundle when neither is given). A CA that cannot
    be loaded is a K8sSetupError naming where it came from."""
    try:
        if ca_data is not None:
            context = ssl.create_default_context(cadata=ca_data)
        else:
            context = ssl.create_default_context(cafile=ca_file or certifi.where())
    except (OSError, ssl.SSLError):
        raise K8sSetupError(
            f"cannot load the cluster's CA certificate {ca_file or '(inline data)'}"
        ) from None
    if not verify:
        # The kubeconfig says insecure-skip-tls-verify: true; kubectl honours it, and so do we, loudly.
        log.warning("kubeconfig has insecure-skip-tls-verify: the API server's certificate is not checked")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class K8sProbe:
    """Base of the Kubernetes plane's probes: each translates exceptions through :mod:`.errors`."""

    effect: ClassVar[Effect] = Effect.READ
    section: ClassVar[str | None] = SECTION

    def translate(self, exc: BaseException) -> Failure | None:
        """See :func:`parityprobe.probes.k8s.errors.translate`."""
        return errors.translate(exc)
