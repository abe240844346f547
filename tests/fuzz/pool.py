"""The parent side: a few worker processes, one case each at a time, a hard bound on every case.

A case that uses more than the time limit in CPU seconds, or twice that in wall-clock seconds (a case
blocked on a pipe uses no CPU), is a hang: the parent asks the worker for its stack (SIGUSR1), kills it and
starts another. CPU time keeps the bound honest on a loaded machine, where wall time alone would call a
slow but finite case a hang. A worker that dies is replaced too; its case is an out-of-memory failure when it
died of the address-space limit, a crash otherwise. Connections to the loopback trap are failures whatever
the worker saw.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.fuzz.corpus import REPO, SECRET_ENV, Listener, build
from tests.fuzz.judge import where

GIB = 1024**3
WALL_FACTOR = 2
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class Settings:
    """One fuzz run: which cases of which seed, how many workers, and the bounds on every case."""

    seed: int
    cases: Iterable[int]
    root: Path
    workers: int = 2
    timeout: float = 10.0
    memory: int = 2 * GIB
    max_failures: int | None = None
    progress: Callable[[int], None] | None = None


@dataclass
class Outcome:
    """Every case's result, and what the run as a whole measured."""

    settings: Settings
    results: list[dict[str, Any]]
    seconds: float
    peak_rss_kib: int
    connections: int
    workspace: Path

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["failure"] is not None]


@dataclass
class _Slot:
    index: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    ready: bool = False
    buffer: bytes = b""
    info: dict[str, Any] | None = None
    number: int | None = None
    deadline: float = 0.0
    cpu_at_start: float = 0.0
    log_offset: int = 0
    retiring: bool = False  # the worker said it will exit after its last answer (after an OOM)
    dispatched: float = 0.0


def run(settings: Settings) -> Outcome:
    """Run every case; never raises for a failing case, only when workers cannot start at all."""
    start = time.perf_counter()
    root = settings.root
    with Listener() as trap:
        workspace = build(root / "workspace", trap.port)
        config = json.dumps(
            {
                "workspace": workspace.root,
                "seed": settings.seed,
                "timeout": settings.timeout,
                "memory": settings.memory,
            }
        )
        pending = deque(settings.cases)
        results: list[dict[str, Any]] = []
        seen_connections = 0
        slots = [_Slot(i, root / f"worker-{i}.log") for i in range(settings.workers)]
        for slot in slots:
            _spawn(slot, config)

        def record(result: dict[str, Any]) -> None:
            nonlocal seen_connections
            if trap.connections > seen_connections and result["failure"] is None:
                result["failure"] = _failure(
                    "network", f"{trap.connections - seen_connections} connection(s)"
                )
            seen_connections = trap.connections
            result["seed"] = settings.seed
            results.append(result)
            if settings.progress is not None:
                settings.progress(len(results))

        def stopping() -> bool:
            limit = settings.max_failures
            return limit is not None and sum(r["failure"] is not None for r in results) >= limit

        try:
            while True:
                for slot in slots:
                    if slot.ready and slot.number is None and pending and not stopping():
                        _dispatch(slot, pending.popleft(), settings.timeout)
                busy = [s for s in slots if s.proc is not None and (s.number is not None or not s.ready)]
                if not busy:
                    break
                # Woken by an answer, or every half second to check the running cases' CPU time.
                fds = [s.proc.stdout.fileno() for s in busy if s.proc is not None and s.proc.stdout]
                readable, _, _ = select.select(fds, [], [], 0.5)
                for slot in busy:
                    assert slot.proc is not None and slot.proc.stdout is not None
                    respawn = bool(pending) and not stopping()
                    if slot.proc.stdout.fileno() in readable and not _read(slot, record):
                        _died(slot, record, config, respawn)
                    elif slot.number is not None and _overdue(slot, settings.timeout):
                        _hung(slot, record, settings.timeout, config, respawn)
        finally:
            for slot in slots:
                _stop(slot)
        peak = max([r.get("maxrss_kib", 0) for r in results] + [_children_rss()])
        return Outcome(
            settings, results, time.perf_counter() - start, peak, trap.connections, Path(workspace.root)
        )


def seed_from_environment() -> int:
    """``PP_FUZZ_SEED``: a number, or ``random``; 1 when unset, so that runs repeat."""
    value = os.environ.get("PP_FUZZ_SEED", "1")
    return random.SystemRandom().randrange(1 << 31) if value == "random" else int(value)


def _overdue(slot: _Slot, timeout: float) -> bool:
    assert slot.proc is not None
    if time.monotonic() > slot.deadline:
        return True
    return _cpu_seconds(slot.proc.pid) - slot.cpu_at_start > timeout


def _children_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def _spawn(slot: _Slot, config: str) -> None:
    env = {
        **os.environ,
        **SECRET_ENV,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PP_FUZZ_UNSET_VARIABLE", None)
    log: IO[bytes] = open(slot.log, "ab")  # noqa: SIM115  (the child keeps it; closed below)
    slot.proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fuzz.worker", config],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=REPO,
        env=env,
    )
    log.close()
    slot.ready, slot.retiring, slot.buffer, slot.info, slot.number = False, False, b"", None, None
    os.set_blocking(slot.proc.stdout.fileno(), False)  # type: ignore[union-attr]


def _dispatch(slot: _Slot, number: int, timeout: float) -> None:
    assert slot.proc is not None and slot.proc.stdin is not None
    slot.number, slot.info = number, None
    slot.log_offset = slot.log.stat().st_size
    slot.dispatched = time.monotonic()
    slot.deadline = slot.dispatched + WALL_FACTOR * timeout
    slot.cpu_at_start = _cpu_seconds(slot.proc.pid)
    try:
        slot.proc.stdin.write(json.dumps({"case": number}).encode() + b"\n")
        slot.proc.stdin.flush()
    except BrokenPipeError:
        pass  # the worker died between cases: its end of file comes next, and the case is reported lost


def _read(slot: _Slot, record: Callable[[dict[str, Any]], None]) -> bool:
    """Handle what the worker wrote; False at end of file (the worker is gone)."""
    assert slot.proc is not None and slot.proc.stdout is not None
    try:
        chunk = os.read(slot.proc.stdout.fileno(), 1 << 16)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    slot.buffer += chunk
    *lines, slot.buffer = slot.buffer.split(b"\n")
    for line in lines:
        message = json.loads(line)
        if "ready" in message:
            slot.ready = True
        elif "start" in message:
            slot.info = message["start"]
        elif "result" in message:
            result = message["result"]
            record(result)
            slot.number, slot.info = None, None
            if result["failure"] is not None and result["failure"]["kind"] == "oom":
                slot.retiring, slot.ready = True, False
    return True


def _lost_case(slot: _Slot, failure: dict[str, Any], record: Callable[[dict[str, Any]], None]) -> None:
    if slot.number is None:
        return
    info = slot.info or {"case": slot.number, "kind": "?", "base": "?", "ops": [], "input": "", "command": []}
    record({**info, "seconds": failure.pop("seconds", 0.0), "maxrss_kib": 0, "failure": failure})
    slot.number, slot.info = None, None


def _log_since(slot: _Slot) -> str:
    with open(slot.log, "rb") as log:
        log.seek(slot.log_offset)
        return log.read().decode("utf-8", "replace")


def _died(slot: _Slot, record: Callable[[dict[str, Any]], None], config: str, respawn: bool) -> None:
    assert slot.proc is not None
    code = slot.proc.wait()
    text = _log_since(slot)
    if slot.number is None and not slot.ready and not slot.retiring:
        raise RuntimeError(f"fuzz worker {slot.index} failed to start (exit {code}):\n{text[-4000:]}")
    if "MemoryError" in text or code == -signal.SIGKILL:
        failure = _failure("oom", f"worker died (exit {code}) at the address-space limit", text)
    else:
        name = signal.Signals(-code).name if code < 0 else f"exit {code}"
        failure = _failure("crash", f"worker died: {name}", text)
    _lost_case(slot, failure, record)
    slot.proc = None
    if respawn:
        _spawn(slot, config)


def _hung(
    slot: _Slot, record: Callable[[dict[str, Any]], None], timeout: float, config: str, respawn: bool
) -> None:
    assert slot.proc is not None
    slot.proc.send_signal(signal.SIGUSR1)  # faulthandler: the stack, into the worker's log
    time.sleep(0.3)
    stack = _log_since(slot)
    used, wall = _cpu_seconds(slot.proc.pid) - slot.cpu_at_start, time.monotonic() - slot.dispatched
    slot.proc.kill()
    slot.proc.wait()
    bounds = f"bounds: {timeout:g} s of CPU, {WALL_FACTOR * timeout:g} s in all"
    failure = _failure("hang", f"killed after {wall:.1f} s, {used:.1f} s of it CPU ({bounds})", stack)
    failure["where"] = where(_stack_frames(stack))
    failure["seconds"] = wall
    _lost_case(slot, failure, record)
    slot.proc = None
    if respawn:
        _spawn(slot, config)


def _stack_frames(dump: str) -> list[tuple[str, int, str]]:
    """Frames of the main thread from a faulthandler dump, outermost first (as a traceback has them)."""
    block = dump.split("(most recent call first):", 1)[-1].split("\n\n", 1)[0]
    frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', block)
    return [(f, int(n), fn) for f, n, fn in reversed(frames)]


def _failure(kind: str, detail: str, log: str = "") -> dict[str, Any]:
    return {"kind": kind, "type": "", "where": "", "detail": detail, "traceback": log[-6000:], "stderr": ""}


def _stop(slot: _Slot) -> None:
    if slot.proc is None:
        return
    assert slot.proc.stdin is not None
    try:
        slot.proc.stdin.close()
        slot.proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        slot.proc.kill()
        slot.proc.wait()
