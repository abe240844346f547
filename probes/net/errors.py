"""The one place where socket errors become outcomes, for the network-path plane.

The question is whether the path is open, so what the network itself answers is the decision:

- a refusal (a TCP reset in reply to the connection attempt, or a firewall's ``REJECT`` with a reset or an
  ICMP port-unreachable, all of which the kernel reports as ``ECONNREFUSED``) and a reset during the
  connect are DENIED "refused";
- a connect refused by the local host's own packet filter (``EPERM``/``EACCES`` on connect) is DENIED
  "blocked by local policy": the workload's egress policy decided;
- a name that does not exist (``EAI_NONAME``/``EAI_NODATA``, the resolver's authoritative "no such name") is
  NOT_FOUND "unknown host": there is nothing by that name to reach from here, a fact about the environment
  that compares (staging resolves ``payments-db``, production does not). A resolver that *fails*
  (``EAI_AGAIN``, ``EAI_FAIL``) says nothing about the path: ERROR unreachable;
- host or network unreachable (an ICMP host/net-unreachable or admin-prohibited reply, or no route at all)
  is an ERROR (unreachable) by default: it is what a rejecting firewall sends on some networks, but also
  what a host that is down or a broken route gives, and an error is never evidence of a deny. A step that
  says ``filtered_is_denied: true`` takes it, like silence, as the network's deny
  (:class:`Filtered`);
- no answer within the time is an ERROR (timeout), or DENIED "filtered: no answer within Ts" under
  ``filtered_is_denied``.

Reasons are fixed phrases, never the system's message (which repeats the address).
"""

from __future__ import annotations

import errno
import socket

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

REFUSED = "refused"
BLOCKED_LOCALLY = "blocked by local policy"
UNKNOWN_HOST = "unknown host"
FILTERED = "filtered"

# Resolver codes meaning "no such name" (EAI_NODATA is not defined on every platform).
_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)
# ICMP rejections: a filtering answer under filtered_is_denied, an unreachable target otherwise.
UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH})


class Filtered(Exception):
    """The network did not let the connection through (silence, or an ICMP unreachable) and the step counts
    that as its deny (``filtered_is_denied``). ``detail`` is a fixed phrase of ours."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# (class, errno or None for any, failure), most specific first. One table, so the unit test can walk it.
_TABLE: tuple[tuple[type[BaseException], int | None, Failure], ...] = (
    (TimeoutError, None, Failure.error(ErrorKind.TIMEOUT, "timed out")),
    (ConnectionRefusedError, None, Failure(Outcome.DENIED, REFUSED)),
    (ConnectionResetError, None, Failure(Outcome.DENIED, REFUSED)),
    (ConnectionAbortedError, None, Failure.error(ErrorKind.UNREACHABLE, "connection aborted")),
    # EPERM and EACCES: Python raises both as PermissionError.
    (PermissionError, None, Failure(Outcome.DENIED, BLOCKED_LOCALLY)),
    (OSError, errno.EHOSTUNREACH, Failure.error(ErrorKind.UNREACHABLE, "host unreachable")),
    (OSError, errno.ENETUNREACH, Failure.error(ErrorKind.UNREACHABLE, "network unreachable")),
    # No local address or port to connect from (ephemeral ports exhausted): this host's fault.
    (OSError, errno.EADDRNOTAVAIL, Failure.error(ErrorKind.HARNESS_ERROR, "no local address available")),
    (OSError, None, Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    # The host name cannot be encoded for the resolver (an IDNA label too long).
    (UnicodeError, None, Failure.error(ErrorKind.HARNESS_ERROR, "invalid host name")),
)


def translate(exc: BaseException) -> Failure | None:
    """The outcome ``exc`` means, or None when it is not a network failure."""
    if isinstance(exc, Filtered):
        return Failure(Outcome.DENIED, f"{FILTERED}: {exc.detail}")
    if isinstance(exc, socket.gaierror):
        return resolver_failure(exc)
    for cls, code, failure in _TABLE:
        if isinstance(exc, cls) and (code is None or getattr(exc, "errno", None) == code):
            return failure
    return None


def resolver_failure(exc: socket.gaierror) -> Failure:
    """An authoritative "no such name" is NOT_FOUND; a resolver that failed is an error."""
    if exc.errno in _NO_SUCH_NAME:
        return Failure(Outcome.NOT_FOUND, UNKNOWN_HOST)
    return Failure.error(ErrorKind.UNREACHABLE, "name resolution failed")


def table() -> tuple[tuple[type[BaseException], int | None, Failure], ...]:
    """The rows the table maps, in matching order (for tests and documentation)."""
    return _TABLE
