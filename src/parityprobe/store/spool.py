"""Nothing is lost: runs the store cannot take wait in a local spool and are replayed, in order, exactly once.

The spool is one file of JSON lines, ``runs.jsonl`` (each line a run's codec record), in a directory only
its owner may enter (0700; the file 0600). A line is appended and fsync'd before :meth:`SpooledStore.write`
returns, so a run the store refused survives a crash of the process that made it.

Replaying reads the lines in the order they were written and writes each to the store; only after that
write has committed does it move past the line, by recording the byte offset it has reached in
``runs.offset`` (written to a temporary file, fsync'd, renamed over the old one). When every line is
replayed the offset file is removed, then the spool. A crash anywhere in between leaves a line that may
already be stored to be replayed again, which is harmless: :meth:`ResultStore.write` is idempotent by run
id. So every run reaches the store once, in spool order.

A line that cannot be a run (the torn end of an append cut short by a crash, or a record of the wrong shape)
is moved to ``runs.rejected.jsonl`` and logged, never replayed and never dropped silently: it cannot block
the runs behind it.

One directory serves one store: threads of a process share it under a lock, and processes take an advisory
file lock (``flock``) on ``.lock``, so two processes pointed at one directory take turns.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from parityprobe.codec import RecordError, from_record, to_record
from parityprobe.errors import StoreError
from parityprobe.model import Run
from parityprobe.store.store import ResultStore

log = logging.getLogger(__name__)

SPOOL_FILE = "runs.jsonl"
OFFSET_FILE = "runs.offset"
REJECTED_FILE = "runs.rejected.jsonl"
_LOCK_FILE = ".lock"


class SpooledStore:
    """A :class:`ResultStore` that never loses a run: what it cannot write now waits in ``spool_dir``.

    Every :meth:`write` first replays what is spooled, so runs reach the store in the order they were made;
    :meth:`replay` does the same on demand (at start, or when the store is known to be back).
    """

    def __init__(self, store: ResultStore, spool_dir: Path | str) -> None:
        self.store = store
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.spool_dir / SPOOL_FILE
        self._offset_path = self.spool_dir / OFFSET_FILE
        self._rejected_path = self.spool_dir / REJECTED_FILE
        self._lock = threading.Lock()

    def write(self, run: Run) -> bool:
        """Store ``run``, after what is spooled; when the store fails, spool it. True: the run is in the
        store; False: it waits in the spool. Raises only OSError, when the spool itself cannot be written."""
        with self._locked():
            try:
                self._replay()
                self.store.write(run)
                return True
            except StoreError as exc:
                self._append(run)
                log.warning("run %s spooled in %s: %s", run.id, self.path, exc)
                return False

    def replay(self) -> int:
        """Write the spooled runs to the store, in order; how many were replayed. StoreError when the store
        fails: the runs not yet written stay spooled, in order."""
        with self._locked():
            return self._replay()

    def pending(self) -> int:
        """How many spooled lines wait to be replayed."""
        with self._locked():
            if not self.path.exists():
                return 0
            data = self.path.read_bytes()
            offset = self._offset(len(data))
            return sum(1 for line in data[offset:].split(b"\n") if line)

    # --- inside --------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fd = os.open(self.spool_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def _replay(self) -> int:
        if not self.path.exists():
            return 0
        replayed = 0
        with self.path.open("rb") as spool:
            offset = self._offset(os.fstat(spool.fileno()).st_size)
            spool.seek(offset)
            for line in spool:
                run = self._parse(line)
                if run is not None:
                    self.store.write(run)  # committed (or already there) before moving past the line
                    replayed += 1
                offset += len(line)
                self._save_offset(offset)
        # Offset first: a crash between the two leaves the whole spool to replay again, which is harmless.
        self._offset_path.unlink(missing_ok=True)
        self.path.unlink()
        _sync_dir(self.spool_dir)
        if replayed:
            log.info("replayed %d spooled run(s) from %s", replayed, self.path)
        return replayed

    def _parse(self, line: bytes) -> Run | None:
        """The run on ``line``; None (after moving the line aside) for one that is not a complete record."""
        if line.endswith(b"\n"):
            try:
                return from_record(Run, json.loads(line))
            except (ValueError, RecordError) as exc:
                why = str(exc) if isinstance(exc, RecordError) else "not JSON"
        else:
            why = "torn (no line end: an append cut short)"
        _append_line(self._rejected_path, line.rstrip(b"\n") + b"\n")
        log.error("spooled line not replayable (%s): moved to %s", why, self._rejected_path)
        return None

    def _append(self, run: Run) -> None:
        record = json.dumps(to_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        _append_line(self.path, record.encode("utf-8") + b"\n")

    def _offset(self, size: int) -> int:
        """Where replay resumes; 0 when nothing was recorded, or the record is unreadable or past the end
        (from an older spool: replaying from the start is harmless)."""
        try:
            offset = int(self._offset_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return 0
        return offset if 0 <= offset <= size else 0

    def _save_offset(self, offset: int) -> None:
        temporary = self._offset_path.with_name(OFFSET_FILE + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, str(offset).encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self._offset_path)
        _sync_dir(self.spool_dir)


def _append_line(path: Path, data: bytes) -> None:
    """Append ``data`` (one line) to ``path`` (0600), fsync'd. A file left without a final line end by an
    append cut short gets one first, so the torn part stays a line of its own."""
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _sync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_dir(directory: Path) -> None:
    """Make a file's creation, rename or removal in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
