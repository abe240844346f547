"""The undo journal: what a probe records *before* an action that creates something, so it is removed
after the scenario — and, once the journal is persisted by the result store, after a crash.

An undo is a probe call (a registered probe name and its parameters), so it runs through the same boundary
as a step: deadline, error translation, an observation in the run's cleanup. Its parameters are plain
JSON values: identifiers (an accessor, an access key id, a lease id), never a secret, because a persisted
journal must not hold one. What only a secret can undo (a login's token, revoked by itself) is ``held``: kept
in this process's memory beside the entry, handed to the undo probe, never written anywhere. A journal read
back after a crash has no held secrets, so such an undo is reported as not runnable (the token then ends
with its TTL).

Many things get their identifier from the server (a secret id's accessor, a lease id): the undo is recorded
before the action with what is known, and :meth:`UndoJournal.amend`-ed with the identifier afterwards, so a
crash between the two leaves a pending entry naming the step that created something.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from parityprobe.secret import Secret

JsonScalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Undo:
    """What to call to remove what an action creates; ``description`` is for people (reports, logs)."""

    description: str
    probe: str
    params: Mapping[str, JsonScalar] = field(default_factory=lambda: MappingProxyType({}))
    # Never persisted, compared or shown (repr=False): the secrets the undo probe needs.
    held: Mapping[str, Secret] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name, value in self.params.items():
            if isinstance(value, Secret) or not isinstance(value, str | int | float | bool | None):
                # A journal row outlives the run; a secret must never be written into it.
                raise TypeError(f"undo parameter {name!r} must be a plain JSON value, never a secret")
            if isinstance(value, float) and not math.isfinite(value):
                raise TypeError(f"undo parameter {name!r} must be a finite number (JSON holds no NaN)")
        for name, secret in self.held.items():
            if not isinstance(secret, Secret):
                raise TypeError(f"held undo parameter {name!r} must be a Secret")
            if name in self.params:
                raise TypeError(f"undo parameter {name!r} is given both plainly and held")

    def amended(self, held: Mapping[str, Secret], params: Mapping[str, JsonScalar]) -> Undo:
        """This undo with more parameters, learned after the action."""
        return Undo(
            self.description,
            self.probe,
            MappingProxyType({**self.params, **params}),
            MappingProxyType({**self.held, **held}),
        )

    def arguments(self) -> dict[str, object]:
        """What the undo probe is called with: the plain parameters and the held secrets."""
        return {**self.params, **self.held}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One recorded undo, pending until it has run (or its action turned out to create nothing)."""

    id: str
    run_id: str
    environment: str
    recorded_at: datetime
    undo: Undo
    recorded_by: str = ""  # the correlation id of the step whose action it undoes


class UndoJournal(Protocol):
    """Where undos are kept between the action and the end of the run. The result store implements it
    durably; :class:`MemoryJournal` serves a single invocation."""

    def record(
        self, run_id: str, environment: str, recorded_at: datetime, undo: Undo, recorded_by: str = ""
    ) -> JournalEntry:
        """Keep ``undo`` as pending; it must be durable before this returns."""
        ...

    def amend(self, entry_id: str, undo: Undo) -> JournalEntry:
        """Replace a pending entry's undo (more parameters, learned after the action); durable on return."""
        ...

    def resolve(self, entry_id: str) -> None:
        """The undo ran (or was not needed): it is no longer pending."""
        ...

    def pending(self, run_id: str | None = None) -> list[JournalEntry]:
        """Pending entries in the order recorded, of one run or of every run."""
        ...


class MemoryJournal:
    """An in-process journal: enough for one invocation, lost with the process."""

    def __init__(self) -> None:
        self._entries: dict[str, JournalEntry] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(
        self, run_id: str, environment: str, recorded_at: datetime, undo: Undo, recorded_by: str = ""
    ) -> JournalEntry:
        with self._lock:
            entry_id = f"{run_id}-{next(self._ids)}"
            entry = JournalEntry(entry_id, run_id, environment, recorded_at, undo, recorded_by)
            self._entries[entry.id] = entry
            return entry

    def amend(self, entry_id: str, undo: Undo) -> JournalEntry:
        with self._lock:
            entry = replace(self._entries[entry_id], undo=undo)
            self._entries[entry_id] = entry
            return entry

    def resolve(self, entry_id: str) -> None:
        with self._lock:
            self._entries.pop(entry_id, None)

    def pending(self, run_id: str | None = None) -> list[JournalEntry]:
        with self._lock:
            return [e for e in self._entries.values() if run_id is None or e.run_id == run_id]


class RunJournal:
    """The journal as one run's probes see it (through ``ProbeContext.record_undo``)."""

    def __init__(self, journal: UndoJournal, run_id: str, environment: str) -> None:
        self.journal = journal
        self.run_id = run_id
        self.environment = environment

    def record(self, recorded_at: datetime, undo: Undo, recorded_by: str) -> JournalEntry:
        return self.journal.record(self.run_id, self.environment, recorded_at, undo, recorded_by)

    def pending(self) -> list[JournalEntry]:
        return self.journal.pending(self.run_id)
