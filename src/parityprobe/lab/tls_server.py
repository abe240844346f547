"""Small loopback servers for the network and TLS planes: a TLS server with its own certificate (and, for
mutual TLS, the CA its clients' certificates must come from), and a TCP listener that accepts and closes.

Both listen on 127.0.0.1 on a port chosen when they start (or a given one), serve from daemon threads, and
are context managers (or ``start()`` / ``stop()``). The TLS server completes the handshake, then answers a
minimal ``HTTP/1.1 200`` to whatever it reads first and closes; a client that reads nothing (a handshake
probe) is closed on without a word.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
)
# How long a connection may stay silent before the server drops it: lab clients speak at once or not at all.
_IDLE_SECONDS = 5.0
_BACKLOG = 64


class _Listener:
    """A listening socket on 127.0.0.1 served by one daemon thread that hands each connection to
    :meth:`_serve` (in a thread of its own)."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The port listened on (chosen at :meth:`start` when none was given)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._requested_port))
        listener.listen(_BACKLOG)
        self._socket = listener
        self._port = int(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, name=f"pp-{self._kind}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._socket is not None:
            # shutdown wakes the thread blocked in accept(); close alone does not on Linux.
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    _kind = "listener"
    # Serve each connection in the accepting thread: for servers whose serving never waits on the client.
    # A backlog that fills while accepts lag behind makes the kernel drop connection attempts, which the
    # clients retry a second later.
    _inline = False

    def _accept_loop(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return  # stopped
            if self._inline:
                self._guarded(connection)  # nothing to wait for: a thread would only slow the accepts
            else:
                threading.Thread(target=self._guarded, args=(connection,), daemon=True).start()

    def _guarded(self, connection: socket.socket) -> None:
        try:
            self._serve(connection)
        except OSError:
            pass  # a client that gives up, or a refused handshake: the client sees what happened
        finally:
            connection.close()

    def _serve(self, connection: socket.socket) -> None:
        """Accept and close: nothing is read or sent."""


class TcpListener(_Listener):
    """Accepts every connection and closes it at once: an open port with nothing behind it. It closes
    politely (never with a reset, which a client still inside its connect call would read as refused)."""

    _kind = "tcp-listener"
    _inline = True


class TlsServer(_Listener):
    """A TLS server presenting ``cert_path`` / ``key_path``.

    With ``client_ca_path`` it asks clients for a certificate issued by that CA: it refuses a handshake
    without one when ``require_client_cert`` (mutual TLS required), and accepts one without a certificate
    otherwise (requested only). ``minimum_version`` / ``maximum_version`` pin the protocol (a TLS 1.2
    server, say); by default both TLS 1.2 and 1.3 are offered.
    """

    _kind = "tls-server"

    def __init__(
        self,
        cert_path: str | Path,
        key_path: str | Path,
        client_ca_path: str | Path | None = None,
        require_client_cert: bool = False,
        *,
        port: int = 0,
        minimum_version: ssl.TLSVersion | None = None,
        maximum_version: ssl.TLSVersion | None = None,
    ) -> None:
        if require_client_cert and client_ca_path is None:
            raise ValueError("requiring a client certificate needs the CA that issues them (client_ca_path)")
        super().__init__(port)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        if minimum_version is not None:
            context.minimum_version = minimum_version
        if maximum_version is not None:
            context.maximum_version = maximum_version
        if client_ca_path is not None:
            context.load_verify_locations(cafile=str(client_ca_path))
            context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        self._context = context

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(_IDLE_SECONDS)
        with self._context.wrap_socket(connection, server_side=True) as tls:
            try:
                if tls.recv(4096):
                    tls.sendall(_RESPONSE)
            except (ssl.SSLError, TimeoutError):
                return  # the client closed (or never spoke): nothing to answer
