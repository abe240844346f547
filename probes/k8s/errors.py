"""The one place where httpx's exceptions, and the Kubernetes API's refusals, become outcomes.

The API server answers a refused request with a ``Status`` object (``kind: Status``, ``status: Failure``,
``reason`` ``Unauthorized`` / ``Forbidden`` / ``NotFound`` / ``TooManyRequests`` …, ``code``); the HTTP
status decides, as it does in the HTTP plane: 401 DENIED ``unauthorized`` (the credential is refused — no
valid token — exactly as the Vault and HTTP planes read a 401), 403 DENIED ``forbidden`` (RBAC, or another
authorizer, refuses the identity), 404 NOT_FOUND, 429 ERROR throttled (with the server's ``Retry-After``
in the reason), 5xx and anything else ERROR target_error. Reasons are fixed phrases, never the Status
``message``: it names the identity and the object, which differ between environments for the same decision.

Faults: a timeout is ERROR timeout; a refused or failed connection ERROR unreachable; a server certificate
that does not verify against the environment's CA is ERROR target_error (``server certificate not
trusted``: the server answered, with a certificate this environment's trust settings refuse), any other TLS
failure ERROR unreachable (``tls handshake failed``), as in the HTTP plane. httpx wraps the ``ssl`` error in a
``ConnectError``: :func:`translate` looks down the cause chain before walking the table. Order matters:
subclasses are matched before their bases.
"""

from __future__ import annotations

import ssl

import httpx

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

from ..http.errors import TRANSPORT

UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
NOT_FOUND = "not found"
THROTTLED = "throttled"
NOT_TRUSTED = "server certificate not trusted"
# Retry-After is a number of seconds from the API server (APF and max-inflight both send one); anything
# longer than a day is not a value worth repeating.
_MAX_RETRY_AFTER = 86_400


class K8sSetupError(ParityProbeError):
    """The environment cannot run a Kubernetes probe as configured (no ``k8s`` section, no in-cluster
    service account, an unreadable token file, an identity that may not even ask a SelfSubjectAccessReview).
    Its message is written by us, holds no secret, and becomes the harness error's reason."""


class ApiRefusal(Exception):
    """The API server answered with a status that is not success; :func:`status_failure` says what it means.

    ``retry_after`` is the whole seconds of a ``Retry-After`` header, when the reply had a usable one. The
    Status object's ``message`` is deliberately not kept: it echoes names and identities."""

    def __init__(self, status: int, retry_after: int | None = None) -> None:
        super().__init__(f"Kubernetes API status {status}")
        self.status = status
        self.retry_after = retry_after


class BadReply(Exception):
    """A reply of the wrong shape (a review without ``status``, a ``/version`` without ``gitVersion``): the
    target's fault. ``reason`` is a fixed phrase of ours."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# (exception class, failure), most specific first. One table, so the unit test can walk it: the HTTP
# plane's transport failures, with a server certificate that does not verify told apart.
_TABLE: tuple[tuple[type[BaseException], Failure], ...] = (
    (ssl.SSLCertVerificationError, Failure.error(ErrorKind.TARGET_ERROR, NOT_TRUSTED)),
    *TRANSPORT,
)


def status_failure(status: int, retry_after: int | None = None) -> Failure:
    """What a non-2xx status of the API server means (see the module docstring)."""
    if status == 401:
        return Failure(Outcome.DENIED, UNAUTHORIZED)
    if status == 403:
        return Failure(Outcome.DENIED, FORBIDDEN)
    if status == 404:
        return Failure(Outcome.NOT_FOUND, NOT_FOUND)
    if status == 429:
        if retry_after is not None:
            return Failure.error(ErrorKind.THROTTLED, f"{THROTTLED}: retry after {retry_after}s")
        return Failure.error(ErrorKind.THROTTLED, THROTTLED)
    if 500 <= status < 600:
        return Failure.error(ErrorKind.TARGET_ERROR, f"server error {status}")
    return Failure.error(ErrorKind.TARGET_ERROR, f"unexpected status {status}")


def retry_after_seconds(value: str | None) -> int | None:
    """The whole seconds of a ``Retry-After`` header (the API server sends seconds, never a date); None when
    absent or unusable."""
    if value is None or not value.strip().isdigit():
        return None
    seconds = int(value.strip())
    return seconds if seconds <= _MAX_RETRY_AFTER else None


def translate(exc: BaseException) -> Failure | None:
    """The outcome ``exc`` means, or None when it is not a Kubernetes-plane failure."""
    if isinstance(exc, K8sSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, str(exc))
    if isinstance(exc, ApiRefusal):
        return status_failure(exc.status, exc.retry_after)
    if isinstance(exc, BadReply):
        return Failure.error(ErrorKind.TARGET_ERROR, exc.reason)
    if isinstance(exc, httpx.TransportError):
        cause = _tls_cause(exc)
        if cause is not None:
            return _lookup(cause)
    return _lookup(exc)


def known_classes() -> tuple[type[BaseException], ...]:
    """The classes the table maps, in matching order (for tests and documentation)."""
    return tuple(cls for cls, _ in _TABLE)


def _lookup(exc: BaseException) -> Failure | None:
    for cls, failure in _TABLE:
        if isinstance(exc, cls):
            return failure
    return None


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` somewhere down ``exc``'s cause chain (httpx wraps httpcore's error, which wraps
    the ssl module's), or None. The peer closing the connection (even mid-handshake) is a lost connection,
    not a TLS failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return None if isinstance(current, ssl.SSLEOFError | ssl.SSLZeroReturnError) else current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
