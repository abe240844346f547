"""What may hold the daemon's probing back: the kill switch and the environment's hourly call budget."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

PAUSED_VARIABLE = "PARITYPROBE_PAUSED"
_HOUR = 3600.0


class KillSwitch:
    """Pauses all probing at once: while ``path`` exists (an operator's ``touch``; a ConfigMap key), or for
    the daemon's whole life when it started with ``PARITYPROBE_PAUSED`` set to anything but ``0`` or empty.

    Checked before every due run and before every step of a running one: the steps left are skipped, the
    cleanups still run (they only remove what was created).
    """

    def __init__(self, path: Path | None = None, paused_at_start: bool = False) -> None:
        self.path = path
        self.paused_at_start = paused_at_start

    @classmethod
    def from_environ(cls, path: Path | None, environ: dict[str, str]) -> KillSwitch:
        return cls(path, environ.get(PAUSED_VARIABLE, "").strip() not in ("", "0"))

    def engaged(self) -> str | None:
        """Why probing is paused now, or None."""
        if self.paused_at_start:
            return f"paused: {PAUSED_VARIABLE} is set"
        if self.path is not None and self.path.exists():
            return f"paused: the kill switch {self.path} exists"
        return None


class Reservation:
    """Calls taken from a :class:`CallBudget` at one moment; settled to the calls actually made."""

    __slots__ = ("at", "calls")

    def __init__(self, at: float, calls: int) -> None:
        self.at = at
        self.calls = calls


class CallBudget:
    """At most ``per_hour`` probe calls in any sliding hour (no limit when None).

    A due run reserves the calls its scenario plans (steps and cleanup steps) before it starts, and is
    skipped when they do not fit; when it ends, its reservation is settled to the calls it made (a step
    that waits for its outcome may call many times; a skipped step calls none), still counted from when it
    was reserved.
    """

    def __init__(self, per_hour: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_hour = per_hour
        self._clock = clock
        self._spent: deque[Reservation] = deque()
        self._lock = threading.Lock()

    def used(self) -> int:
        """Calls made (or reserved) in the last hour."""
        with self._lock:
            return self._used()

    def reserve(self, calls: int) -> Reservation | None:
        """Take ``calls`` from the budget if they fit; None (nothing taken) when they do not."""
        with self._lock:
            if self.per_hour is not None and self._used() + calls > self.per_hour:
                return None
            reservation = Reservation(self._clock(), calls)
            self._spent.append(reservation)
            return reservation

    def settle(self, reservation: Reservation, made: int) -> None:
        """The run behind ``reservation`` made ``made`` calls."""
        with self._lock:
            reservation.calls = made

    def _used(self) -> int:
        horizon = self._clock() - _HOUR
        while self._spent and self._spent[0].at <= horizon:
            self._spent.popleft()
        return sum(r.calls for r in self._spent)
