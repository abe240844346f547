"""The store as a run listener: every finished run is written through a :class:`SpooledStore`."""

from __future__ import annotations

import logging

from parityprobe.listeners import RunListener
from parityprobe.model import Run
from parityprobe.store.spool import SpooledStore

log = logging.getLogger(__name__)


class StoreListener(RunListener):
    """Writes each finished run to the store, or to its spool when the store is down.

    It never raises into the runner: storing a run must not change it. The one failure it cannot absorb, a
    spool that cannot be written either (a full or read-only disk), is logged as an error naming the run.
    """

    def __init__(self, store: SpooledStore) -> None:
        self.store = store

    def run_finished(self, run: Run) -> None:
        try:
            self.store.write(run)
        except Exception:
            log.error("run %s could not be stored nor spooled", run.id, exc_info=True)
