"""The probe seam: what a probe is, what it receives, what it returns.

A probe performs one real action against one plane and reports what happened. It raises the SDK's own
exceptions freely; its ``translate`` (one per plane) turns each of them into a :class:`Failure` at the
boundary, so nothing foreign travels further than the runner's call site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from parityprobe.model import Effect, ErrorKind, Grant, Outcome, OutputValue
from parityprobe.redact import Redacting
from parityprobe.secret import Secret
from parityprobe.undo import JournalEntry, JsonScalar, RunJournal, Undo

if TYPE_CHECKING:
    from parityprobe.config.environments import Environment

T = TypeVar("T")


class ProbeParams(BaseModel):
    """Base of every probe's parameter model (the step's ``with``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe returns when its action completed (allowed, or a decision it reads from a reply)."""

    outcome: Outcome = Outcome.ALLOWED
    grant: Grant = field(default_factory=Grant)
    outputs: Mapping[str, OutputValue] = field(default_factory=lambda: MappingProxyType({}))
    reason: str | None = None
    # Conditions the probe awaited itself (with :meth:`ProbeContext.poll`) and that held, by name: how many
    # seconds each took ("new key works": 2.4). Compared across environments like a step's own wait.
    waits: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # What server the action met, where only the step can say (a TLS handshake's protocol and cipher: each
    # step may reach another server): compared across environments as configuration drift.
    server: str | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A foreign exception, translated: the decision (DENIED, NOT_FOUND) or why there is none (ERROR)."""

    outcome: Outcome
    reason: str
    error_kind: ErrorKind | None = None

    @classmethod
    def error(cls, kind: ErrorKind, reason: str) -> Failure:
        return cls(Outcome.ERROR, reason, kind)


class Timer:
    """Measures the network call only: ``with ctx.timer: client.call()``. Re-entrant use accumulates."""

    __slots__ = ("_start", "_total_ns", "used")

    def __init__(self) -> None:
        self._start = 0
        self._total_ns = 0
        self.used = False

    def __enter__(self) -> Timer:
        self.used = True
        self._start = time.perf_counter_ns()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._total_ns += time.perf_counter_ns() - self._start

    @property
    def elapsed_ms(self) -> float:
        return self._total_ns / 1e6


class ClientCache:
    """SDK clients of one environment, built once per invocation and shared by its steps.

    A factory may itself ask the cache for another client (a session before its clients): the lock is
    re-entrant.
    """

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._lock = threading.RLock()

    def get(self, key: str, factory: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._items:
                self._items[key] = factory()
            value: T = self._items[key]
            return value

    def close(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for item in items:
            closer = getattr(item, "close", None)
            if callable(closer):
                closer()


@dataclass(frozen=True, slots=True)
class Polled(Generic[T]):
    """What :meth:`ProbeContext.poll` saw: the value (None when the condition never held), how long it
    waited (until the attempt that saw the condition hold began; in all, when it never held) and how many
    times it asked."""

    value: T | None
    waited_seconds: float
    attempts: int


@dataclass(frozen=True)
class ProbeContext:
    """Everything a probe receives besides its parameters.

    ``clock`` is the runner's (injectable) wall clock; ``journal`` takes undos recorded with
    :meth:`record_undo`; ``monotonic`` (what ``deadline`` is measured on) and ``sleep`` are what
    :meth:`poll` keeps time and waits with (tests pass a fake pair).
    """

    environment: Environment
    correlation_id: str
    deadline: float
    timer: Timer
    redactor: Redacting
    clients: ClientCache
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    journal: RunJournal | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        """Seconds left before the step's deadline (at least a small positive number)."""
        return max(0.05, self.deadline - self.monotonic())

    def now(self) -> datetime:
        """The current time, timezone-aware UTC, from the runner's clock."""
        return self.clock()

    def record_undo(
        self, description: str, probe: str, *, held: Mapping[str, Secret] | None = None, **params: JsonScalar
    ) -> JournalEntry | None:
        """Record, *before* an action that creates something, the probe call that removes it.

        ``params`` are plain identifiers; ``held`` the secrets the undo needs (kept in memory only). The
        runner runs it after the scenario's cleanup steps (the daemon also after a crash); complete it with
        :meth:`amend_undo` once the action has named what it created, or resolve it with
        :meth:`undo_not_needed` when the action turned out to create nothing. Returns None when the context
        has no journal (a probe called outside a run, as in a test): then nothing is recorded.
        """
        if self.journal is None:
            return None
        undo = Undo(description, probe, MappingProxyType(dict(params)), MappingProxyType(dict(held or {})))
        return self.journal.record(self.now(), undo, self.correlation_id)

    def amend_undo(
        self, entry: JournalEntry | None, *, held: Mapping[str, Secret] | None = None, **params: JsonScalar
    ) -> None:
        """Add what is known only after the action (an accessor, a lease id, the token to revoke)."""
        if entry is not None and self.journal is not None:
            self.journal.journal.amend(entry.id, entry.undo.amended(held or {}, params))

    def undo_not_needed(self, entry: JournalEntry | None) -> None:
        """The action was refused or created nothing: its undo must not run."""
        if entry is not None and self.journal is not None:
            self.journal.journal.resolve(entry.id)

    def poll(
        self,
        until: Callable[[], T | None],
        *,
        within: float,
        interval: float = 0.2,
        backoff: float = 1.5,
        max_interval: float = 2.0,
    ) -> Polled[T]:
        """Call ``until`` until it returns something other than None, for at most ``within`` seconds,
        waiting ``interval`` seconds (growing by ``backoff``, at most ``max_interval``) between calls.

        Records how long the condition took to hold (e.g. a rotation taking effect): the time until the
        attempt that saw it hold began, so 0 when it held at the first look. The answering request's own
        latency is not counted: it varies with load, not with the change awaited. An attempt is started
        only when it can end (taking as long as the last one did) within the budget and a moment before the
        step's deadline, so the probe still returns its own verdict rather than being cut off.
        """
        start = self.monotonic()
        stop = min(start + within, self.deadline - _VERDICT_MARGIN)
        attempts = 0
        wait = interval
        while True:
            attempts += 1
            before = self.monotonic()
            value = until()
            now = self.monotonic()
            if value is not None:
                return Polled(value, before - start, attempts)
            room = stop - now - (now - before)
            if room <= 0:
                return Polled(None, now - start, attempts)
            self.sleep(min(wait, room))
            wait = min(wait * backoff, max_interval)


# How long before its deadline a polling probe stops asking, to return its verdict in time.
_VERDICT_MARGIN = 0.05


@runtime_checkable
class Probe(Protocol):
    """A probe class, registered under ``name`` in the ``parityprobe.probes`` entry-point group.

    ``Params`` is the model the step's ``with`` binds to; ``outputs`` names what later steps may
    reference (``${{ steps.ID.outputs.NAME }}``), and ``secret_outputs`` which of them are always a
    :class:`~parityprobe.secret.Secret` (validation refuses them anywhere but a secret parameter);
    ``effect`` is the least effect a step using it has; ``section`` names the environment section it
    acts through (``vault``, ``aws``: every environment must have it), or None.
    """

    name: ClassVar[str]
    Params: ClassVar[type[ProbeParams]]
    outputs: ClassVar[frozenset[str]]
    secret_outputs: ClassVar[frozenset[str]]
    section: ClassVar[str | None]
    effect: ClassVar[Effect]

    def run(self, params: Any, ctx: ProbeContext) -> ProbeResult: ...

    def translate(self, exc: BaseException) -> Failure | None:
        """The outcome a foreign exception means, or None when this plane does not know it."""
        ...


@runtime_checkable
class Targeting(Protocol):
    """A probe that names what its action is aimed at (a Vault API path), known from its parameters alone,
    so a refused action has it too. Recorded on the observation; reports use it to name the configuration
    drift that explains a decision."""

    def target(self, params: Any) -> str | None: ...


@runtime_checkable
class Declaring(Protocol):
    """A probe that can also ask its target what it *declares* for the step's action without performing it,
    for steps whose ``crosscheck`` is the probe's ``declares``: ``capabilities`` (Vault's
    ``sys/capabilities-self`` on the same path) or ``simulator`` (IAM's policy simulator for the same action).

    ``declared`` returns ALLOWED or DENIED (as a :class:`ProbeResult`), or SKIPPED with the reason where the
    target cannot answer (never taken for agreement), and raises like ``run``.
    """

    declares: ClassVar[str]

    def declared(self, params: Any, ctx: ProbeContext) -> ProbeResult: ...

    def translate(self, exc: BaseException) -> Failure | None: ...
