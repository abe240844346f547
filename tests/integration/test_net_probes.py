"""net.tcp_connect against real sockets on loopback: an open port, a closed one, one that never answers,
and through the command line across two environments."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from parityprobe.lab.tls_server import TcpListener
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.net.tcp_connect import TcpConnect
from tests.fault_server import unconnectable_endpoint
from tests.probe_support import environment, observe, probe_context

PROBE = TcpConnect()
ENV = environment({"name": "staging"})


def closed_port() -> int:
    """A port nothing listens on: bound (so the system chose it), then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_open_port_is_allowed_and_the_connection_is_closed_at_once() -> None:
    with TcpListener() as listener:
        ctx = probe_context(ENV, "open")
        result = observe(PROBE, {"host": "127.0.0.1", "port": listener.port}, ctx)
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED
    assert ctx.timer.used


def test_a_name_with_several_addresses_is_tried_address_by_address() -> None:
    # localhost may resolve to ::1 first; the listener is on 127.0.0.1 only.
    with TcpListener() as listener:
        result = observe(PROBE, {"host": "localhost", "port": listener.port}, probe_context(ENV, "name"))
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED


def test_a_closed_port_is_refused() -> None:
    result = observe(PROBE, {"host": "127.0.0.1", "port": closed_port()}, probe_context(ENV, "closed"))
    assert result == Failure(Outcome.DENIED, "refused")


def test_silence_is_a_timeout_unless_the_step_counts_it_as_the_deny() -> None:
    with unconnectable_endpoint() as url:
        port = int(url.rsplit(":", 1)[1])
        params = {"host": "127.0.0.1", "port": port, "timeout": 0.5}
        assert observe(PROBE, params, probe_context(ENV, "t")) == Failure.error(
            ErrorKind.TIMEOUT, "timed out"
        )
        filtered = observe(PROBE, {**params, "filtered_is_denied": True}, probe_context(ENV, "f"))
        assert filtered == Failure(Outcome.DENIED, "filtered: no answer within 0.5s")
        # Without a timeout of its own, the step's remaining time is the wait.
        default = {"host": "127.0.0.1", "port": port, "filtered_is_denied": True}
        assert observe(PROBE, default, probe_context(ENV, "d", seconds=1)) == Failure(
            Outcome.DENIED, "filtered: no answer within 1s"
        )


def test_a_name_that_does_not_resolve_is_not_a_deny() -> None:
    # .invalid never resolves (RFC 6761); without a resolver at hand it is an error, never a deny.
    result = observe(PROBE, {"host": "parityprobe.invalid", "port": 443}, probe_context(ENV, "dns"))
    assert result in (
        Failure(Outcome.NOT_FOUND, "unknown host"),
        Failure.error(ErrorKind.UNREACHABLE, "name resolution failed"),
    )


def test_a_port_open_in_staging_and_refused_in_production_is_a_finding(tmp_path: Path) -> None:
    with TcpListener() as listener:
        envs = tmp_path / "environments.yaml"
        envs.write_text(
            "environments:\n"
            f"  staging: {{vars: {{db_port: '{listener.port}'}}}}\n"
            f"  production: {{vars: {{db_port: '{closed_port()}'}}}}\n"
        )
        scenario = tmp_path / "net-db.yaml"
        scenario.write_text(
            "id: net-db\nsteps:\n"
            "  - id: reach-db\n"
            "    probe: net.tcp_connect\n"
            "    with: {host: 127.0.0.1, port: '${{ vars.db_port }}', timeout: 2}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "parityprobe", "run", "-q", "--format", "json", "-e", envs, scenario],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    report = json.loads(done.stdout)
    text = json.dumps(report)
    assert "outcome_mismatch" in text, done.stderr
    assert '"refused"' in text
    assert f"127.0.0.1:{listener.port}" in text  # the target, recorded with the observation
