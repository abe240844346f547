"""The daemon's HTTP endpoints: ``/healthz`` (alive), ``/readyz`` (scheduler running, store reachable) and
``/metrics`` (the Prometheus exposition, when the environment's telemetry enables it).

A plain threaded ``http.server`` on its own thread: nothing here touches a probe or a secret, and each
answer is a short fixed text (a reason for "not ready" is one of the daemon's own phrases, passed through
the redactor all the same).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

Readiness = Callable[[], str | None]  # None when ready, else why not
Metrics = Callable[[], tuple[bytes, str] | None]  # (body, content type), None when not enabled


class HealthServer:
    """Serves the endpoints on ``host:port`` (port 0: any free port, see :attr:`port`) until :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Readiness,
        metrics: Metrics = lambda: None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        handler = _handler(readiness, metrics, alive)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pp-health", kwargs={"poll_interval": 0.2}, daemon=True
        )

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(
    readiness: Readiness, metrics: Metrics, alive: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "parityprobe"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._answer(200 if alive() else 503, b"ok\n" if alive() else b"not alive\n")
            elif path == "/readyz":
                why = _safely(readiness)
                self._answer(200, b"ready\n") if why is None else self._answer(503, f"{why}\n".encode())
            elif path == "/metrics":
                exposition = metrics()
                if exposition is None:
                    self._answer(404, b"metrics are not exported here: enable telemetry.metrics prometheus\n")
                else:
                    self._answer(200, exposition[0], exposition[1])
            else:
                self._answer(404, b"not found\n")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("health endpoint: " + format, *args)

    return Handler


def _safely(readiness: Readiness) -> str | None:
    try:
        return readiness()
    except Exception as exc:  # a readiness check that breaks says so, never takes the server down
        return f"readiness check failed: {type(exc).__name__}"
