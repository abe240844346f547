"""Faulty targets on loopback: an HTTP server answering like a broken load balancer, proxy or WAF, and
listening sockets that never answer or never let a connection complete."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# A request parameter, as a proxy's page might echo it back.
ECHO = b"RoleArn=arn:aws:iam::123456789012:role/echoed-by-the-proxy"
_PIECE = 16 * 1024


@dataclass(frozen=True)
class Reply:
    """Status, content type (None: no header) and body; ``trickle`` > 0 sends the body in pieces, this many
    seconds apart; ``delay`` seconds pass before the answer starts."""

    status: int
    content_type: str | None
    body: bytes
    trickle: float = 0.0
    delay: float = 0.0


class FaultServer(ThreadingHTTPServer):
    """Answers every request (any method, any path) with :attr:`reply`."""

    daemon_threads = True
    reply = Reply(500, None, b"")

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up mid-body (the point of a trickled reply) is expected, not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        assert isinstance(self.server, FaultServer)
        reply = self.server.reply
        if reply.delay > 0:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.trickle <= 0:
            self.wfile.write(reply.body)
            return
        for start in range(0, len(reply.body), _PIECE):
            self.wfile.write(reply.body[start : start + _PIECE])
            self.wfile.flush()
            time.sleep(reply.trickle)

    do_GET = do_POST = do_PUT = do_HEAD = _answer


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    """A :class:`FaultServer` on a loopback port chosen now, serving until the block ends."""
    server = FaultServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="pp-fault-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never answers; closing it resets them."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


@contextmanager
def unconnectable_endpoint() -> Iterator[str]:
    """A listener whose accept queue is full: the kernel drops further connection attempts, which hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(address)
            with socket.socket() as check:
                check.settimeout(0.5)
                if check.connect_ex(address) == 0:
                    pytest.skip("this kernel completes connections beyond a full accept queue")
            yield f"http://127.0.0.1:{address[1]}"
        finally:
            for filler in fillers:
                filler.close()


@contextmanager
def two_http_apis(tmp_path: Any) -> Iterator[tuple[FaultServer, FaultServer, Any, Any]]:
    """Staging's and production's HTTP APIs on loopback, an environments file pointing at them and a
    one-step scenario reading ``/data`` that expects it allowed: (staging, production, environments file,
    scenario file). Set each server's ``reply`` before running."""
    with fault_server() as staging, fault_server() as production:
        envs = tmp_path / "environments.yaml"
        envs.write_text(
            "environments:\n"
            f"  staging: {{http: {{base_url: '{staging.url}'}}}}\n"
            f"  production: {{http: {{base_url: '{production.url}'}}}}\n"
        )
        scenario = tmp_path / "api.yaml"
        scenario.write_text(
            "id: api\nsteps:\n"
            "  - {id: read, probe: http.request, with: {path: /data}, expect: {outcome: allowed}}\n"
        )
        yield staging, production, envs, scenario
