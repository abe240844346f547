"""An environment's network side in the lab, as one process: TCP listeners (open or closed ports) and TLS
servers (one per endpoint), plus a small HTTP endpoint that says where they are.

The lab runs it as ``python -m parityprobe.lab.net_servers --port P --config FILE`` (see
:func:`parityprobe.lab.servers.start_net_servers`), so that ``lab down`` from another process stops it like
any other lab server. ``FILE`` is JSON written by the lab (paths only, no key material)::

    {"listeners": {"db": "open", "admin": "closed"},
     "tls": {"cert": PATH, "key": PATH,
             "endpoints": {"api": {"client_ca": PATH | null, "require_client_cert": bool}}} | null}

Every port is chosen by the system when the process binds it, so nothing can take it between choosing and
binding; ``GET /health`` on ``P`` answers ``{"listeners": {"db": 40123, ...}, "tls": {"api": 40125}}``
once everything listens, and the lab reads the ports from there. An ``open`` port accepts connections and
closes them at once (nothing is sent); a ``closed`` port is held bound without listening, which makes the
kernel refuse connections to it (a reset), and keeps it from being reused while the lab runs.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from parityprobe.lab.net_profile import LAB_HOST, Listener
from parityprobe.lab.tls_server import TcpListener, TlsServer

HEALTH_PATH = "/health"


class Listeners:
    """The listeners by name: open ones accept and close (:class:`~.tls_server.TcpListener`), closed ones are
    sockets held bound without listening."""

    def __init__(self, spec: Mapping[str, Listener]) -> None:
        self._open: dict[str, TcpListener] = {}
        self._closed: dict[str, socket.socket] = {}
        try:
            for name, kind in spec.items():
                if kind is Listener.OPEN:
                    self._open[name] = TcpListener().start()
                else:
                    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    self._closed[name] = held
                    held.bind((LAB_HOST, 0))
        except BaseException:
            self.stop()
            raise

    @property
    def ports(self) -> dict[str, int]:
        """Each listener's port."""
        ports = {name: listener.port for name, listener in self._open.items()}
        ports.update((name, int(held.getsockname()[1])) for name, held in self._closed.items())
        return ports

    def stop(self) -> None:
        """Release every port."""
        for listener in self._open.values():
            listener.stop()
        for held in self._closed.values():
            held.close()


class _Health(BaseHTTPRequestHandler):
    server: _HealthServer

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it so
        """Quiet: the lab's log holds only what goes wrong."""

    def do_GET(self) -> None:
        status, body = (200, self.server.where) if self.path == HEALTH_PATH else (404, {"error": "not_found"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, where: Mapping[str, Any]) -> None:
        super().__init__((LAB_HOST, port), _Health)
        self.where = dict(where)


def serve(argv: list[str] | None = None) -> None:
    """Bind the listeners and start the TLS servers of ``--config``, then answer ``/health`` on ``--port``
    until terminated."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m parityprobe.lab.net_servers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    listeners = Listeners({name: Listener(kind) for name, kind in config["listeners"].items()})
    tls_servers: dict[str, TlsServer] = {}
    try:
        tls = config.get("tls") or {"endpoints": {}}
        for endpoint, asks in tls["endpoints"].items():
            tls_servers[endpoint] = TlsServer(
                Path(tls["cert"]),
                Path(tls["key"]),
                Path(asks["client_ca"]) if asks["client_ca"] else None,
                require_client_cert=bool(asks["require_client_cert"]),
            ).start()
        where = {"listeners": listeners.ports, "tls": {n: server.port for n, server in tls_servers.items()}}
        health = _HealthServer(args.port, where)
        try:
            health.serve_forever()
        finally:
            health.server_close()
    finally:
        for server in tls_servers.values():
            server.stop()
        listeners.stop()


if __name__ == "__main__":
    serve()
