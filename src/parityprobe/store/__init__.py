"""The result store: runs kept in SQLite or PostgreSQL, a spool so none is lost, and pairing for comparing
stored runs after the fact.

- :mod:`~parityprobe.store.schema`: the tables and their create-or-migrate function;
- :mod:`~parityprobe.store.store`: :class:`ResultStore` (write, read, retain);
- :mod:`~parityprobe.store.spool`: :class:`SpooledStore`, the store behind a local spool;
- :mod:`~parityprobe.store.listener`: :class:`StoreListener`, the runner's way in;
- :mod:`~parityprobe.store.pairing`: :func:`pair_heads` and :func:`pair_runs`, which runs of each environment
  compare, and :func:`read_paired`, which reads only those.

SQLAlchemy (the ``sql`` extra) is imported by this package: import it only where a store is used.
"""

from __future__ import annotations

from importlib.util import find_spec

from parityprobe.errors import StoreError

if find_spec("sqlalchemy") is None:
    raise StoreError(
        "the result store needs SQLAlchemy: install parityprobe with its sql extra "
        "(pip install 'parityprobe[sql]')"
    )

from parityprobe.store.listener import StoreListener  # after the check, which names the fix
from parityprobe.store.pairing import RunHead, pair_heads, pair_runs, read_paired
from parityprobe.store.spool import SpooledStore
from parityprobe.store.store import ResultStore

__all__ = [
    "ResultStore",
    "RunHead",
    "SpooledStore",
    "StoreListener",
    "pair_heads",
    "pair_runs",
    "read_paired",
]
