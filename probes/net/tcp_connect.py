"""``net.tcp_connect``: can this workload open a TCP connection to ``host:port``?"""

from __future__ import annotations

import errno
import math
import socket
import time
from typing import ClassVar

from pydantic import Field

from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult

from . import errors
from .errors import UNREACHABLE_ERRNOS, Filtered


class TcpConnectParams(ProbeParams):
    """Where to connect (``host`` a name or an address, typically ``${{ vars.NAME }}``), how long to wait
    (seconds; default: what is left of the step's time) and whether silence counts as the network's deny."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    timeout: float | None = Field(default=None, gt=0)
    filtered_is_denied: bool = False


class TcpConnect:
    """Open a TCP connection to ``host:port`` and close it at once: nothing is sent, nothing read.

    ALLOWED: the connection was established (the three-way handshake completed). DENIED "refused": the
    target, or a firewall on the way, answered with a reset (``REJECT``). A connection attempt that gets no
    answer within ``timeout`` is an ERROR (timeout), as everywhere else: an error is never evidence of a
    deny. Many networks deny by dropping packets, though; a step that says ``filtered_is_denied: true``
    takes silence (and an ICMP host- or network-unreachable) as the deny it expects: DENIED
    "filtered: no answer within 5s", and the report says so. See :mod:`.errors` for the rest (a name that
    does not resolve is NOT_FOUND "unknown host"; a connect the local packet filter refuses is DENIED
    "blocked by local policy").

    A name that resolves to several addresses is tried address by address, within the one timeout, until
    one connects; the last failure decides otherwise. The latency is the resolution and the connect.

    The step's correlation id cannot travel in a bare TCP connect (there is nothing to put it in): evidence
    for these steps is found by address and time, not by correlation id. No section is needed (hosts that
    differ between environments come from ``vars``). The effect is READ. Grant: none. Outputs: none.
    """

    name: ClassVar[str] = "net.tcp_connect"
    Params: ClassVar[type[ProbeParams]] = TcpConnectParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: TcpConnectParams, ctx: ProbeContext) -> ProbeResult:
        """One connection, closed as soon as it is established."""
        budget = ctx.remaining() if params.timeout is None else min(params.timeout, ctx.remaining())
        try:
            with ctx.timer:
                connection = connect(params.host, params.port, budget)
        except TimeoutError:
            if params.filtered_is_denied:
                raise Filtered(f"no answer within {seconds(budget)}") from None
            raise
        except OSError as exc:
            if params.filtered_is_denied and exc.errno in UNREACHABLE_ERRNOS:
                what = "network" if exc.errno == errno.ENETUNREACH else "host"
                raise Filtered(f"{what} unreachable") from None
            raise
        connection.close()
        return ProbeResult()

    def translate(self, exc: BaseException) -> Failure | None:
        """See :func:`parityprobe.probes.net.errors.translate`."""
        return errors.translate(exc)

    def target(self, params: TcpConnectParams) -> str:
        """``host:port`` (an IPv6 address in brackets)."""
        return address(params.host, params.port)


def address(host: str, port: int) -> str:
    """``host:port``, ``[::1]:443`` for an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def seconds(value: float) -> str:
    """A wait as people read it, rounded up to a tenth of a second: ``5s``, ``0.5s``, ``30s`` for what is
    left of a 30 s step (29.97 s): two environments given the same time report the same phrase."""
    return f"{math.ceil(round(value * 10, 6)) / 10:g}s"


def connect(host: str, port: int, budget: float) -> socket.socket:
    """A connected socket to ``host:port``, each resolved address tried in turn within ``budget`` seconds
    in all (``socket.create_connection`` gives each address the whole timeout)."""
    deadline = time.monotonic() + budget
    # getaddrinfo has no timeout of its own: a hung resolver is bounded by the step's deadline.
    candidates = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, where in candidates:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(where)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last if last is not None else TimeoutError("no time left to connect")
