"""The ``file`` connector: JSON-lines files a SIEM agent would ship (a Vault or OpenBao file audit device's
log, an application's log), searched where they are written.

```yaml
audit: {type: file, path: /var/log/vault/audit.log, time_field: time}
```

The connector starts at the file's end when the run starts (:meth:`FileConnector.begin`): a run's events
are written after it, and an audit log of many gigabytes is never read from its start. Each search reads
only what is new since the last one, following the file when it is rotated (renamed and replaced: the rest
of the old file is read through the handle still open, then the new file from its start) or truncated
(read again from its start). Lines without one of the query's correlation ids are not parsed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, ClassVar, Literal

from pydantic import Field

from parityprobe.model import ErrorKind
from parityprobe.siem.connector import (
    ConnectorSettings,
    SiemEvent,
    SiemQuery,
    SiemUnavailable,
    event_from_json,
)

# Read at most this much per search, so one poll stays short even behind a burst of writes.
_MAX_READ = 64 * 1024 * 1024


class FileSettings(ConnectorSettings):
    """A JSON-lines file: its ``path`` (relative to the environments file) and the field holding each
    record's time (dotted, ``time`` for Vault's audit log)."""

    name: ClassVar[str] = "file"
    type: Literal["file"]
    path: str = Field(min_length=1)
    time_field: str = Field(default="time", min_length=1)

    def connect(self) -> FileConnector:
        return FileConnector(Path(self.path), self.time_field)

    def resolve_paths(self, base_dir: Path) -> None:
        self.path = os.path.abspath(base_dir / Path(self.path).expanduser())


class FileConnector:
    """Follows one file from where it ended when :meth:`begin` was called; keeps the events it has seen for
    the ids asked about, so a later search with fewer ids still answers from them."""

    def __init__(self, path: Path, time_field: str) -> None:
        self.path = path
        self.time_field = time_field
        self._handle: IO[bytes] | None = None
        self._inode: int | None = None
        self._partial = b""
        self._seen: list[tuple[str, SiemEvent]] = []
        self._asked: set[str] = set()

    def begin(self) -> None:
        """Note where the file ends now: what the run causes is written after this."""
        try:
            self._open(at_end=True)
        except OSError:
            self._handle = None  # not there yet: read from its start once it appears

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        self._asked |= query.correlation_ids
        try:
            for line in self._new_lines():
                text = line.decode("utf-8", "replace")
                for event in event_from_json(text, self._asked, self.time_field):
                    self._seen.append((event.correlation_id, event))
        except OSError as exc:
            raise SiemUnavailable(f"{self.path}: {exc.strerror or exc}", ErrorKind.UNREACHABLE) from None
        return [event for cid, event in self._seen if cid in query.correlation_ids]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self, *, at_end: bool) -> None:
        handle = open(self.path, "rb")  # noqa: SIM115  # kept open between searches to follow a rotation
        stat = os.fstat(handle.fileno())
        if at_end:
            handle.seek(stat.st_size)
        self.close()
        self._handle, self._inode, self._partial = handle, stat.st_ino, b""

    def _new_lines(self) -> list[bytes]:
        chunks: list[bytes] = []
        if self._handle is None:
            self._open(at_end=False)
        assert self._handle is not None
        current = os.stat(self.path)
        if current.st_ino != self._inode:
            chunks.append(self._handle.read(_MAX_READ))  # the rest of the rotated file
            self._open(at_end=False)
        elif current.st_size < self._handle.tell():
            self._handle.seek(0)  # truncated: what is there now is new
            self._partial = b""
        chunks.append(self._handle.read(_MAX_READ))
        data = self._partial + b"".join(chunks)
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for its end
        return [line for line in lines if line.strip()]
