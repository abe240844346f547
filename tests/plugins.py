"""Small probes for engine tests: real plugins, registered the way any third-party probe is."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.model import Effect, Grant, Outcome, OutputValue
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
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
    policies: list[str] | None = None


class Echo:
    """Returns what it is told to; raises what it is told to."""

    name: ClassVar[str] = "test.echo"
    Params: ClassVar[type[ProbeParams]] = EchoParams
    outputs: ClassVar[frozenset[str]] = frozenset({"value", "token", "correlation_id"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset({"token"})
    section: ClassVar[str | None] = None
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
        outputs: dict[str, OutputValue] = {
            "value": params.value,
            "token": Secret("tok-" + params.value, "token"),
            "correlation_id": ctx.correlation_id,
        }
        policies = frozenset(params.policies) if params.policies is not None else None
        grant = Grant(ttl_seconds=params.ttl, identity=params.identity, policies=policies)
        return ProbeResult(Outcome.ALLOWED, grant, MappingProxyType(outputs))

    def translate(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, Refused):
            return Failure(Outcome.DENIED, "refused")
        return None


class Write(Echo):
    """An echo that declares a write effect."""

    name: ClassVar[str] = "test.write"
    effect: ClassVar[Effect] = Effect.WRITE


class Missing(Exception):
    """What the inventory plane raises for something that is not there."""


class Inventory:
    """The in-memory "target" of the create and remove probes: what exists, per environment.

    Names are ``<environment>/<name>``, so the environments of one run never see each other's things.
    """

    lock: ClassVar[threading.Lock] = threading.Lock()
    created: ClassVar[set[str]] = set()
    removals: ClassVar[list[tuple[str, str]]] = []  # (correlation id, name), in the order removed
    tokens: ClassVar[list[str]] = []  # held secrets the removals received
    gate: ClassVar[threading.Event] = threading.Event()  # what a held create waits for

    @classmethod
    def reset(cls) -> None:
        with cls.lock:
            cls.created.clear()
            cls.removals.clear()
            cls.tokens.clear()
            cls.gate.clear()

    @classmethod
    def add(cls, name: str) -> None:
        with cls.lock:
            cls.created.add(name)

    @classmethod
    def remove(cls, correlation_id: str, name: str) -> None:
        with cls.lock:
            cls.removals.append((correlation_id, name))
            if name not in cls.created:
                raise Missing(name)
            cls.created.remove(name)


def _translate_inventory(exc: BaseException) -> Failure | None:
    if isinstance(exc, Refused):
        return Failure(Outcome.DENIED, "refused")
    if isinstance(exc, Missing):
        return Failure(Outcome.NOT_FOUND, "no such thing")
    return None


class CreateParams(ProbeParams):
    name: str
    refuse: bool = False  # the target refuses: nothing is created, the undo is not needed
    fail: bool = False  # the probe raises after creating
    hold: bool = False  # a slow target: between recording the undo and creating, wait for Inventory.gate
    undo_probe: str = "test.remove"
    undo_refuse: bool = False
    undo_crash: bool = False
    leak: Secret | None = None  # passed into the undo's parameters, which must refuse it
    amend: bool = False  # like a server-assigned id: the undo learns the name only after the action
    held: Secret | None = None  # a secret only the undo needs, held in memory beside the entry


class Create:
    """Creates ``<environment>/<name>`` in the :class:`Inventory`, recording its undo *before* the action."""

    name: ClassVar[str] = "test.create"
    Params: ClassVar[type[ProbeParams]] = CreateParams
    outputs: ClassVar[frozenset[str]] = frozenset({"name"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: CreateParams, ctx: ProbeContext) -> ProbeResult:
        thing = f"{ctx.environment.name}/{params.name}"
        if params.leak is not None:
            ctx.record_undo(f"remove {thing}", probe=params.undo_probe, name=thing, token=params.leak)  # type: ignore[arg-type]
        named = {} if params.amend else {"name": thing}
        entry = ctx.record_undo(
            f"remove {thing}",
            probe=params.undo_probe,
            refuse=params.undo_refuse,
            crash=params.undo_crash,
            **named,
        )
        if params.hold:
            Inventory.gate.wait(timeout=10)
        if params.refuse:
            ctx.undo_not_needed(entry)
            raise Refused("no")
        with ctx.timer:
            Inventory.add(thing)
        if params.amend or params.held is not None:
            held = {"token": params.held} if params.held is not None else None
            ctx.amend_undo(entry, held=held, **({"name": thing} if params.amend else {}))
        if params.fail:
            raise RuntimeError(f"failed after creating {thing}")
        return ProbeResult(outputs=MappingProxyType({"name": thing}))

    def translate(self, exc: BaseException) -> Failure | None:
        return _translate_inventory(exc)


class RemoveParams(ProbeParams):
    name: str
    refuse: bool = False
    crash: bool = False
    token: Secret | None = None  # held by the journal; its text is recorded for the test to check


class Remove:
    """Removes a thing from the :class:`Inventory`: the undo of ``test.create``. Absent is NOT_FOUND."""

    name: ClassVar[str] = "test.remove"
    Params: ClassVar[type[ProbeParams]] = RemoveParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.WRITE

    def run(self, params: RemoveParams, ctx: ProbeContext) -> ProbeResult:
        if params.refuse:
            raise Refused("no")
        if params.crash:
            raise RuntimeError("the remove probe crashed")
        with ctx.timer:
            Inventory.remove(ctx.correlation_id, params.name)
        if params.token is not None:
            with Inventory.lock:
                Inventory.tokens.append(params.token.reveal())
        return ProbeResult()

    def translate(self, exc: BaseException) -> Failure | None:
        return _translate_inventory(exc)


class TrackParams(ProbeParams):
    key: str = ""
    sleep: float = 0.0
    meet: bool = False  # wait (up to 5s) until two probe calls of this environment have overlapped


class Track:
    """Records when each call enters and leaves, per environment, so tests see order and overlap
    without measuring time."""

    name: ClassVar[str] = "test.track"
    Params: ClassVar[type[ProbeParams]] = TrackParams
    outputs: ClassVar[frozenset[str]] = frozenset({"key", "now"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ
    changed: ClassVar[threading.Condition] = threading.Condition()
    events: ClassVar[list[tuple[str, str, str]]] = []  # (enter|exit, environment, correlation id)
    active: ClassVar[Counter[str]] = Counter()
    peak: ClassVar[Counter[str]] = Counter()

    @classmethod
    def reset(cls) -> None:
        with cls.changed:
            cls.events.clear()
            cls.active.clear()
            cls.peak.clear()

    def run(self, params: TrackParams, ctx: ProbeContext) -> ProbeResult:
        env = ctx.environment.name
        with Track.changed:
            Track.events.append(("enter", env, ctx.correlation_id))
            Track.active[env] += 1
            Track.peak[env] = max(Track.peak[env], Track.active[env])
            Track.changed.notify_all()
            if params.meet:
                Track.changed.wait_for(lambda: Track.peak[env] >= 2, timeout=5)
        try:
            if params.sleep:
                time.sleep(params.sleep)
        finally:
            with Track.changed:
                Track.active[env] -= 1
                Track.events.append(("exit", env, ctx.correlation_id))
        outputs = {"key": params.key, "now": ctx.now().isoformat()}
        return ProbeResult(outputs=MappingProxyType(outputs))

    def translate(self, exc: BaseException) -> Failure | None:
        return None


class PollParams(ProbeParams):
    ready_at: int = 1  # the attempt at which the condition first holds; 0: never
    within: float = 5.0
    interval: float = 0.001
    check: float = 0.0  # seconds each look at the condition takes (a call to the target)


class Poll:
    """Waits with ``ctx.poll`` for a condition that holds on a given attempt; reports what poll saw."""

    name: ClassVar[str] = "test.poll"
    Params: ClassVar[type[ProbeParams]] = PollParams
    outputs: ClassVar[frozenset[str]] = frozenset({"value", "attempts"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: PollParams, ctx: ProbeContext) -> ProbeResult:
        asked = 0

        def ready() -> str | None:
            nonlocal asked
            asked += 1
            if params.check:
                time.sleep(params.check)
            return "ready" if params.ready_at and asked >= params.ready_at else None

        polled = ctx.poll(ready, within=params.within, interval=params.interval)
        outputs = MappingProxyType({"value": polled.value or "", "attempts": str(polled.attempts)})
        if polled.value is None:
            return ProbeResult(Outcome.NOT_FOUND, outputs=outputs, reason="never held")
        return ProbeResult(outputs=outputs)

    def translate(self, exc: BaseException) -> Failure | None:
        return None


class FlipParams(ProbeParams):
    key: str
    refusals: dict[str, int] = {}  # environment -> calls refused before the first allowed one
    crash_at: int = 0  # the call (1-based) that raises an unknown exception; 0: none


class Flip:
    """Refused for the first N calls (per environment and key), allowed after: a change taking effect."""

    name: ClassVar[str] = "test.flip"
    Params: ClassVar[type[ProbeParams]] = FlipParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ
    calls: ClassVar[dict[tuple[str, str], int]] = {}

    def run(self, params: FlipParams, ctx: ProbeContext) -> ProbeResult:
        key = (ctx.environment.name, params.key)
        Flip.calls[key] = count = Flip.calls.get(key, 0) + 1
        if count == params.crash_at:
            raise RuntimeError("flip crashed")
        if count <= params.refusals.get(ctx.environment.name, 0):
            raise Refused("not yet")
        return ProbeResult()

    def translate(self, exc: BaseException) -> Failure | None:
        return Failure(Outcome.DENIED, "refused") if isinstance(exc, Refused) else None


class DeclareParams(ProbeParams):
    live: dict[str, str] = {}  # environment -> allowed | denied | not_found (default allowed)
    declared: dict[str, str] = {}  # environment -> allowed | denied | crash (default allowed)


class Declare:
    """A live decision and a declared one, each as told per environment (``crosscheck`` tests)."""

    name: ClassVar[str] = "test.declare"
    declares: ClassVar[str] = "capabilities"
    Params: ClassVar[type[ProbeParams]] = DeclareParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: DeclareParams, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult(Outcome(params.live.get(ctx.environment.name, "allowed")))

    def declared(self, params: DeclareParams, ctx: ProbeContext) -> ProbeResult:
        answer = params.declared.get(ctx.environment.name, "allowed")
        if answer == "crash":
            raise RuntimeError("capabilities unavailable")
        return ProbeResult(Outcome(answer))

    def translate(self, exc: BaseException) -> Failure | None:
        return None


PROBES = (Echo, Write, Create, Remove, Track, Poll, Flip, Declare)


def registry() -> ProbeRegistry:
    """A fresh registry of every test probe, as a third party's plugins would be registered."""
    return ProbeRegistry.of(*PROBES)


def build(tmp_path: Path, environments: str, *scenarios: str) -> Plan:
    """The checked plan of these scenario texts (in this order) in these environments."""
    folder = tmp_path / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(scenarios):
        (folder / f"{index:02d}.yaml").write_text(text)
    envs_file = tmp_path / "environments.yaml"
    envs_file.write_text(environments)
    return build_plan(load_environments(envs_file, Redactor()), load_scenarios([folder]), registry())
