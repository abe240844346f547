"""Overhead of the network and TLS probes over the bare socket and ssl calls they make.

Two environments point at local servers on loopback (a TCP listener, a TLS server with its own CA), run in
a child process so that their threads do not compete with the measured ones for the interpreter lock. A
scenario of STEPS ``net.tcp_connect`` steps, and one of STEPS ``tls.handshake`` steps, run in both, in
parallel, through parityprobe's planner, runner and comparator; a plain script makes the same calls
directly, one thread per environment: ``socket.create_connection`` then close, and a verifying
``ssl`` handshake (a context built once per repetition, as an invocation builds its own) then close.
Repetitions alternate to share the machine's noise; medians are compared, and the per-step overhead is
the difference divided by the steps.

A bare loopback connect takes about a tenth of a millisecond, so the TCP ratio is large while the overhead
per step (the runner's boundary: a thread, a deadline, an observation) is what to read.

    python bench/net_tls.py [--repetitions N] [--steps N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from parityprobe.lab.certificates import make_ca
from parityprobe.lab.tls_server import TcpListener, TlsServer
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

ENVIRONMENTS = ("staging", "production")


def scenario(probe: str, steps: int, extra: str) -> str:
    lines = [f"id: bench-{probe.replace('.', '-')}", "steps:"]
    lines += [
        f"  - {{id: s{i}, probe: {probe}, with: {{host: 127.0.0.1, port: '${{{{ vars.port }}}}'{extra}}}}}"
        for i in range(steps)
    ]
    return "\n".join(lines) + "\n"


def environments(port_of: dict[str, int], bundle: Path) -> str:
    lines = ["environments:"]
    for name in ENVIRONMENTS:
        lines.append(f"  {name}: {{vars: {{port: '{port_of[name]}'}}, tls: {{ca_bundle: '{bundle}'}}}}")
    return "\n".join(lines) + "\n"


def direct_tcp(port: int, steps: int) -> None:
    for _ in range(steps):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def direct_tls(port: int, steps: int, bundle: Path) -> None:
    context = ssl.create_default_context(cafile=str(bundle))
    for _ in range(steps):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
            context.wrap_socket(sock, server_hostname="localhost"),
        ):
            pass


def serve(cert: Path, key: Path, ports: Connection) -> None:
    """The child process: a TCP listener and a TLS server per environment, until told to stop."""
    listeners = {name: TcpListener().start() for name in ENVIRONMENTS}
    servers = {name: TlsServer(cert, key).start() for name in ENVIRONMENTS}
    ports.send(({n: s.port for n, s in listeners.items()}, {n: s.port for n, s in servers.items()}))
    ports.recv()
    for server in (*listeners.values(), *servers.values()):
        server.stop()


def run_probe(
    probe: str, ports: dict[str, int], extra: str, directory: Path, bundle: Path, steps: int
) -> Callable[[], None]:
    """The scenario of ``steps`` steps of ``probe``, planned once, as a function that runs it."""
    envs = directory / f"{probe}.environments.yaml"
    envs.write_text(environments(ports, bundle))
    scenario_file = directory / f"{probe}.yaml"
    scenario_file.write_text(scenario(probe, steps, extra))
    redactor, registry = Redactor(), ProbeRegistry()
    the_plan = plan(envs, [scenario_file], redactor, registry)

    def tool() -> None:
        report = execute(the_plan, redactor, registry)
        assert not report.findings, [f.message for f in report.findings]

    return tool


def in_parallel(direct: Callable[[int], None], ports: dict[str, int]) -> Callable[[], None]:
    def baseline() -> None:
        with ThreadPoolExecutor(len(ports)) as pool:
            list(pool.map(direct, ports.values()))

    return baseline


def measure(tool: Callable[[], None], baseline: Callable[[], None], repetitions: int) -> tuple[float, float]:
    tool(), baseline()  # warm both paths: imports, contexts, server threads
    timings: dict[str, list[float]] = {"tool": [], "direct": []}
    for i in range(repetitions):
        order = [("tool", tool), ("direct", baseline)]
        for name, func in order if i % 2 == 0 else reversed(order):
            start = time.perf_counter()
            func()
            timings[name].append(time.perf_counter() - start)
    return statistics.median(timings["tool"]), statistics.median(timings["direct"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    steps = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca = make_ca("Bench CA")
        bundle, _ = ca.write(directory, "ca")
        cert, key = ca.issue_server("localhost", ["localhost"], ["127.0.0.1"]).write(directory, "server")
        parent, child = multiprocessing.Pipe()
        server_process = multiprocessing.get_context("spawn").Process(target=serve, args=(cert, key, child))
        server_process.start()
        try:
            tcp_ports, tls_ports = parent.recv()
            rows = []
            for probe, ports, extra, direct in (
                ("net.tcp_connect", tcp_ports, "", lambda port: direct_tcp(port, steps)),
                (
                    "tls.handshake",
                    tls_ports,
                    ", server_name: localhost",
                    lambda port: direct_tls(port, steps, bundle),
                ),
            ):
                tool = run_probe(probe, ports, extra, directory, bundle, steps)
                rows.append((probe, *measure(tool, in_parallel(direct, ports), args.repetitions)))
        finally:
            parent.send("stop")
            server_process.join(timeout=10)
    print(
        f"{steps}-step scenarios x {len(ENVIRONMENTS)} environments, {args.repetitions} repetitions (medians)"
    )
    for probe, tool_s, direct_s in rows:
        per_step_us = (tool_s - direct_s) / steps * 1e6
        print(
            f"  {probe:16} parityprobe {tool_s * 1000:8.1f} ms  direct {direct_s * 1000:8.1f} ms  "
            f"ratio {tool_s / direct_s:5.2f}  overhead {per_step_us:7.0f} us/step"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
