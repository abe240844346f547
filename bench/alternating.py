"""Timing two ways of doing the same work in one process, fairly: warmed first, then repetitions that
alternate which goes first, so drift in the machine's speed falls on both."""

from __future__ import annotations

import time
from collections.abc import Callable


def measure(pairs: list[tuple[str, Callable[[], None]]], repetitions: int) -> dict[str, list[float]]:
    """Seconds per repetition of each named function, after one warm-up call of each (imports, model
    loading, connections, server caches)."""
    for _, func in pairs:
        func()
    timings: dict[str, list[float]] = {name: [] for name, _ in pairs}
    for i in range(repetitions):
        for name, func in pairs if i % 2 == 0 else list(reversed(pairs)):
            start = time.perf_counter()
            func()
            timings[name].append(time.perf_counter() - start)
    return timings
