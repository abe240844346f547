"""A fuzz worker: a subprocess that runs many cases in sequence, in-process, and judges each one.

Started by :mod:`tests.fuzz.pool` as ``python -m tests.fuzz.worker CONFIG``. It reads case numbers on its
original standard input and answers with JSON lines on its original standard output; both are moved off
fds 0 and 1 first, so a case that reads ``/dev/stdin`` or prints cannot break the protocol. It runs under an
address-space limit; sockets are disabled (any attempt is recorded and refused); SIGUSR1 dumps the Python
stack to standard error (the worker's log) so the parent can say where a hung case was stuck.
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fuzz.mutator import Case

NETWORK_ATTEMPTS: list[str] = []
# Negative case numbers misbehave on purpose, so that a test can prove each bound and check is enforced.
SELF_TESTS = {-1: "block", -2: "spin", -3: "allocate", -4: "abort", -5: "connect", -6: "reach-trap"}


def _disable_network() -> None:
    """Validation must touch nothing: every connection or name lookup is recorded, then refused."""

    def connect(self: socket.socket, address: Any, *rest: Any) -> Any:
        NETWORK_ATTEMPTS.append(f"connect {address!r}")
        raise ConnectionRefusedError("fuzz worker: network disabled")

    def getaddrinfo(host: Any, *rest: Any, **kw: Any) -> Any:
        NETWORK_ATTEMPTS.append(f"getaddrinfo {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, "fuzz worker: network disabled")

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo


def _cache_entry_points() -> None:
    """Each ``ProbeRegistry()`` scans installed distributions (~25 ms); the answer cannot change here."""
    import importlib.metadata

    import parityprobe.registry as registry

    if hasattr(registry, "entry_points"):
        found = importlib.metadata.entry_points(group=registry.PROBE_GROUP)
        registry.entry_points = lambda **kw: found if kw.get("group") == registry.PROBE_GROUP else ()


class Worker:
    """Makes, runs and judges cases of one seed against one workspace."""

    def __init__(self, config: dict[str, Any]) -> None:
        from tests.fuzz.corpus import Workspace

        self.seed: int = config["seed"]
        self.slow: float = config["timeout"] / 3
        self.workspace = Workspace.load(Path(config["workspace"]))
        self.bases = self.workspace.bases()
        self.files = tuple(self.workspace.files)

    def case(self, number: int) -> dict[str, Any]:
        """Write case ``number``'s input; what the parent needs to know before it runs."""
        from tests.fuzz.mutator import make_case

        if number in SELF_TESTS:
            name = SELF_TESTS[number]
            return {
                "case": number,
                "kind": "self-test",
                "base": name,
                "ops": [],
                "input": "",
                "command": ["self-test", name, str(self.workspace.port)],
            }
        case = make_case(self.seed, number, self.bases, self.files)
        base = Path(case.base.name)
        if case.base.kind == "environments":
            # Beside the unmutated file, so that its relative {file:} references still resolve.
            path = base.parent / f"case-{number:06d}.yaml"
        else:
            path = Path(self.workspace.cases) / f"case-{number:06d}-{base.name}"
        path.write_bytes(case.data)
        info = {
            "case": number,
            "kind": case.base.kind,
            "base": base.name if case.base.kind != "environments" else base.parent.name,
            "ops": list(case.ops),
            "input": str(path),
            "command": self.command(case, path),
        }
        return info

    def command(self, case: Case, path: Path) -> list[str]:
        """The command for a case: which other files go with the mutated one, drawn from the seed too."""
        rng = random.Random(f"{self.seed}:{case.number}:command")
        workspace = self.workspace
        if case.base.kind == "profile":
            return ["lab-profile", str(path)]
        # Mostly validate; sometimes run --dry-run, which takes the same checks through run's own set-up.
        verb = ["run", "--dry-run"] if rng.random() < 0.1 else ["validate"]
        if case.base.kind == "scenario":
            others = [s for s in workspace.scenarios if Path(s).name != Path(case.base.name).name]
            extra = others if rng.random() < 0.25 else []
            return [*verb, "-e", rng.choice(workspace.environments), str(path), *extra]
        only = ["--env", "staging", "--env", "production"] if rng.random() < 0.1 else []
        scenarios = workspace.scenarios if rng.random() < 0.25 else [rng.choice(workspace.scenarios)]
        return [*verb, "-e", str(path), *only, *scenarios]

    def warm_up(self) -> None:
        """The unmutated inputs once, so that first-use imports (probe modules, SDKs) count for no case."""
        from tests.fuzz.judge import invoke

        for environments in self.workspace.environments:
            invoke(["validate", "-e", environments, *self.workspace.scenarios], verbose=False)
        invoke(["lab-profile", self.workspace.profile], verbose=False)

    def run(self, info: dict[str, Any]) -> dict[str, Any]:
        from tests.fuzz.judge import inputs_of, invoke, judge, where

        command: list[str] = info["command"]
        NETWORK_ATTEMPTS.clear()
        start, cpu = time.perf_counter(), time.process_time()
        result = invoke(command, verbose=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        failure = judge(result, inputs_of(command), self.workspace.secrets, NETWORK_ATTEMPTS)
        if failure is not None and failure["kind"] == "exit 4" and cpu < self.slow:
            # The same case with --verbose, for the traceback the plain run keeps to itself.
            again = invoke(command, verbose=True)
            if again.traceback:
                failure["traceback"] = again.traceback
                failure["where"] = where(again.frames)
        if failure is None:
            Path(info["input"]).unlink(missing_ok=True)
        return {
            **info,
            "seconds": seconds,
            "cpu": cpu,
            "code": result.code,
            "pid": os.getpid(),
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "failure": failure,
        }


def main() -> None:
    config = json.loads(sys.argv[1])
    commands = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    limit = int(config["memory"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    faulthandler.enable(file=sys.stderr)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    _disable_network()

    # Everything a case needs, imported before the first case.
    import parityprobe.cli
    import parityprobe.lab.profile  # noqa: F401

    _cache_entry_points()
    worker = Worker(config)
    worker.warm_up()
    answers.write(json.dumps({"ready": os.getpid()}) + "\n")
    for line in commands:
        info = worker.case(json.loads(line)["case"])
        answers.write(json.dumps({"start": info}) + "\n")
        print(f"--- case {info['case']}", file=sys.stderr, flush=True)
        result = worker.run(info)
        answers.write(json.dumps({"result": result}) + "\n")
        if result["failure"] is not None and result["failure"]["kind"] == "oom":
            return  # a fresh process for the next case: this one's heap may be in pieces


if __name__ == "__main__":
    main()
