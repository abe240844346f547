"""Small probes for engine tests: real plugins, registered the way any third-party probe is."""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import ClassVar

from parityprobe.model import Effect, Grant, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret


class Refused(Exception):
    """What the echo plane raises for a refusal, as an SDK would."""


class EchoParams(ProbeParams):
    value: str = "v"
    token: Secret | None = None
    refuse: bool = False
    crash: bool = False
    sleep: float = 0.0
    ttl: int | None = None
    identity: str | None = None


class Echo:
    """Returns what it is told to; raises what it is told to."""

    name: ClassVar[str] = "test.echo"
    Params: ClassVar[type[ProbeParams]] = EchoParams
    outputs: ClassVar[frozenset[str]] = frozenset({"value", "token", "correlation_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset({"token"})
    effect: ClassVar[Effect] = Effect.READ
    calls: ClassVar[list[tuple[str, EchoParams]]] = []

    def run(self, params: EchoParams, ctx: ProbeContext) -> ProbeResult:
        Echo.calls.append((ctx.correlation_id, params))
        with ctx.timer:
            if params.sleep:
                time.sleep(params.sleep)
        if params.refuse:
            raise Refused("no")
        if params.crash:
            raise RuntimeError(f"crashed holding {params.token.reveal() if params.token else 'nothing'}")
        outputs = {
            "value": params.value,
            "token": Secret("tok-" + params.value, "token"),
            "correlation_id": ctx.correlation_id,
        }
        grant = Grant(ttl_seconds=params.ttl, identity=params.identity)
        return ProbeResult(Outcome.ALLOWED, grant, MappingProxyType(outputs))

    def translate(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, Refused):
            return Failure(Outcome.DENIED, "refused")
        return None


class Write(Echo):
    """An echo that declares a write effect."""

    name: ClassVar[str] = "test.write"
    effect: ClassVar[Effect] = Effect.WRITE
