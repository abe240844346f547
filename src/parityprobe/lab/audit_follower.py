"""Following the lab's OpenBao file audit log for the SIEM forwarder (:mod:`.siem_forwarder`):
:class:`LogFollower` hands out the complete lines appended since its last read.

The log is read from its start (it may appear later), then followed: appends, rotation (renamed and replaced:
the rest of the old file is read through the handle still open, then the new file from its start) and
truncation (read again from its start). Only complete lines are handed out: an unfinished last line waits
for its newline, and one longer than :data:`_MAX_LINE` is thrown away (counted in ``skipped``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

_READ_LIMIT = 4 * 1024 * 1024  # per read: a backlog is shipped in pieces, never loaded whole
_MAX_LINE = 8 * 1024 * 1024  # an unfinished line longer than this is garbage, not an entry


class LogFollower:
    """Reads the complete lines appended to ``path`` since the last read, following rotation and
    truncation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0  # overlong unfinished lines thrown away
        self._handle: IO[bytes] | None = None
        self._identity: tuple[int, int] | None = None
        self._partial = b""
        self._skipping = False

    def read(self, limit: int = _READ_LIMIT) -> tuple[list[bytes], bool]:
        """New complete lines, and whether more is waiting already. OSError when the log is unreadable."""
        if self._handle is None and not self._open():
            return [], False
        assert self._handle is not None
        lines: list[bytes] = []
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None  # renamed away and not replaced yet: the writer still appends to the old file
        if current is not None and (current.st_dev, current.st_ino) != self._identity:
            data = self._handle.read(limit)
            if len(data) == limit:
                return self._split(data), True
            lines = self._split(data, last=True)  # the old file is done: its unfinished tail is all there is
            if not self._open():
                return lines, False
        elif current is not None and current.st_size < self._handle.tell():
            self._handle.seek(0)  # truncated: what is there now is new
            self._partial, self._skipping = b"", False
        data = self._handle.read(limit)
        return lines + self._split(data), len(data) == limit

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self) -> bool:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115  # kept open between reads to follow a rotation
        except FileNotFoundError:
            return False
        stat = os.fstat(handle.fileno())
        self.close()
        self._handle, self._identity = handle, (stat.st_dev, stat.st_ino)
        self._partial, self._skipping = b"", False
        return True

    def _split(self, data: bytes, *, last: bool = False) -> list[bytes]:
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()
        if self._skipping:
            if parts:
                parts, self._skipping = parts[1:], False  # parts[0] ends the overlong line
            else:
                self._partial = b""  # still inside it
        if len(self._partial) > _MAX_LINE:
            self.skipped += 1
            self._partial, self._skipping = b"", True
        if last:
            if self._partial.strip():
                parts.append(self._partial)
            self._partial, self._skipping = b"", False
        return [line for line in parts if line.strip()]
