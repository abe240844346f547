"""The undo journal kept in a result store, so what a run created is removed even after its process died.

Each entry is a row of ``pending_undos``, written (and committed) before the action it undoes, amended
with what the server named afterwards, deleted once the undo ran. Its parameters are the undo's plain
values, as JSON; the secrets an undo may hold (a login's token, revoked with itself) are kept only in this
object's memory, beside the row, and never written: an entry read back by another process has none, and its
undo then says it cannot run.

The daemon keeps its journal in a local SQLite file of its state directory rather than in the shared store:
an entry must be durable *before* the action, and a local file does not go down with the network.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Row, select

from parityprobe.errors import StoreError
from parityprobe.secret import Secret
from parityprobe.store.schema import pending_undos
from parityprobe.store.store import ResultStore
from parityprobe.undo import JournalEntry, JsonScalar, Undo


class StoreJournal:
    """An :class:`~parityprobe.undo.UndoJournal` whose pending entries are rows of a result store.

    Every method raises :class:`StoreError` when the store cannot do it; :meth:`record` failing means the
    action is not performed (the probe's ``record_undo`` raises, so its step ends in a harness error).
    """

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._held: dict[str, Mapping[str, Secret]] = {}
        self._lock = threading.Lock()

    def record(
        self, run_id: str, environment: str, recorded_at: datetime, undo: Undo, recorded_by: str = ""
    ) -> JournalEntry:
        entry = JournalEntry(
            f"{run_id}-{secrets.token_hex(4)}", run_id, environment, recorded_at, undo, recorded_by
        )
        row = {
            "id": entry.id,
            "run_id": run_id,
            "environment": environment,
            "recorded_at": recorded_at.astimezone(UTC),
            "recorded_by": recorded_by,
            "description": undo.description,
            "probe": undo.probe,
            "params": _params_json(undo.params),
        }
        with self.store.transaction(f"record undo of {recorded_by or run_id}") as connection:
            connection.execute(pending_undos.insert(), row)
        self._hold(entry.id, undo.held)
        return entry

    def amend(self, entry_id: str, undo: Undo) -> JournalEntry:
        with self.store.transaction(f"amend undo {entry_id}") as connection:
            found = connection.execute(select(pending_undos).where(pending_undos.c.id == entry_id)).first()
            if found is None:
                raise StoreError(f"{self.store.where}: amend undo {entry_id}: no such pending undo")
            connection.execute(
                pending_undos.update()
                .where(pending_undos.c.id == entry_id)
                .values(description=undo.description, probe=undo.probe, params=_params_json(undo.params))
            )
        self._hold(entry_id, undo.held)
        return _entry(found, undo)

    def resolve(self, entry_id: str) -> None:
        with self.store.transaction(f"resolve undo {entry_id}") as connection:
            connection.execute(pending_undos.delete().where(pending_undos.c.id == entry_id))
        with self._lock:
            self._held.pop(entry_id, None)

    def pending(self, run_id: str | None = None, environment: str | None = None) -> list[JournalEntry]:
        """Pending entries in the order recorded, of one run (or every run), of one environment (or all)."""
        query = select(pending_undos)
        if run_id is not None:
            query = query.where(pending_undos.c.run_id == run_id)
        if environment is not None:
            query = query.where(pending_undos.c.environment == environment)
        with self.store.transaction("read pending undos") as connection:
            rows = connection.execute(query.order_by(pending_undos.c.recorded_at, pending_undos.c.id)).all()
        with self._lock:
            held = dict(self._held)
        nothing: Mapping[str, Secret] = MappingProxyType({})
        return [
            _entry(row, Undo(row.description, row.probe, _params(row), held.get(row.id, nothing)))
            for row in rows
        ]

    def _hold(self, entry_id: str, held: Mapping[str, Secret]) -> None:
        if held:
            with self._lock:
                self._held[entry_id] = held


def _params_json(params: Mapping[str, JsonScalar]) -> str:
    return json.dumps(dict(params), sort_keys=True, allow_nan=False)


def _params(row: Row[Any]) -> Mapping[str, JsonScalar]:
    value = json.loads(row.params)
    if not isinstance(value, dict):
        raise StoreError(f"pending undo {row.id}: its parameters are not a JSON object")
    return MappingProxyType(value)


def _entry(row: Row[Any], undo: Undo) -> JournalEntry:
    recorded_at: datetime = row.recorded_at
    if recorded_at.tzinfo is None:  # SQLite gives back naive UTC
        recorded_at = recorded_at.replace(tzinfo=UTC)
    return JournalEntry(row.id, row.run_id, row.environment, recorded_at, undo, row.recorded_by)
