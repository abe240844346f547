"""A small OAuth 2.0 authorization server and protected API, in process, for the lab and the tests.

- ``POST /oauth/token``: the client-credentials grant (RFC 6749 §4.4). The client authenticates with HTTP
  Basic (``client_secret_basic``, id and secret form-encoded first, §2.3.1) or in the form body
  (``client_secret_post``). Errors are §5.2 JSON bodies: ``invalid_client`` (401, with a
  ``WWW-Authenticate`` challenge for Basic), ``invalid_request``, ``unsupported_grant_type`` and
  ``invalid_scope`` (400). A token response has ``access_token``, ``token_type`` ``Bearer``, ``expires_in``
  and ``scope``, with ``Cache-Control: no-store``. Without ``scope`` the client gets all its scopes.
- ``GET``/``HEAD /api/<resource>``: needs a bearer token (RFC 6750) with the scope the resource is
  configured with: 401 without one or with an unknown or expired one, 404 for an unknown resource, 403
  (``insufficient_scope``) without the scope; 200 with a JSON body naming the resource, the client and the
  token's scopes.
- ``GET /status/<code>``: answers ``code`` (429, 500, 302…) with a small JSON body, for fault mapping;
  ``GET /slow/<seconds>``: answers 200 after sleeping that long (at most a minute), for timeouts.

The tests start it in process (:func:`start_oauth_server`); the lab runs it as a process of its own
(``python -m parityprobe.lab.oauth_server --port P --config FILE``, see :func:`serve`), which reads its
clients from a JSON file the lab writes (0600, removed by ``lab down``).

It listens on 127.0.0.1 at a port chosen when it starts (plain HTTP, or TLS with the context it is given),
serves each request on its own thread, and records each request's method, path and correlation header
(:attr:`OAuthServer.seen`) so tests can check what arrived. Error descriptions deliberately echo the request
(as real servers may): a probe must never repeat them.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

TOKEN_PATH = "/oauth/token"
API_PREFIX = "/api/"
CORRELATION_HEADER = "X-Correlation-ID"
_MAX_BODY = 64 * 1024
_MAX_SLEEP = 60.0
_SEEN_KEPT = 10_000


@dataclass(frozen=True)
class OAuthClientSpec:
    """A registered client: its id, secret and the scopes it may be granted."""

    client_id: str
    secret: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Seen:
    """One request as it arrived: method, path (with its query) and the correlation header's value."""

    method: str
    path: str
    correlation_id: str | None
    authorization: bool


@dataclass(frozen=True)
class _Issued:
    client_id: str
    scopes: frozenset[str]
    expires: float


@dataclass
class _State:
    clients: dict[str, OAuthClientSpec]
    resources: dict[str, str]
    token_ttl: int
    correlation_header: str
    tokens: dict[str, _Issued] = field(default_factory=dict)
    # The latest requests only: the lab's server runs for as long as the lab does.
    seen: deque[Seen] = field(default_factory=lambda: deque(maxlen=_SEEN_KEPT))
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must not wait for a request still sleeping in /slow/.
    block_on_close = False

    def __init__(self, state: _State, tls: ssl.SSLContext | None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = state
        if tls is not None:
            # The handshake runs when a connection is accepted; one that fails is dropped by socketserver.
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or failed its TLS handshake is not the server's error: stay quiet."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it so
        """Quiet: tests read :attr:`OAuthServer.seen` instead."""

    # --- dispatch ------------------------------------------------------------------------------------------

    def do_POST(self) -> None:
        self._record()
        body = self._body()
        path = urlsplit(self.path).path
        if path == TOKEN_PATH:
            self._token(body)
        elif path.startswith("/status/"):
            self._status(path[len("/status/") :])
        else:
            self._json(405 if self._is_api() else 404, {"error": "not_found"})

    def do_GET(self) -> None:
        self._record()
        self._read(head=False)

    def do_HEAD(self) -> None:
        self._record()
        self._read(head=True)

    def _read(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        if path.startswith(API_PREFIX):
            self._api(path[len(API_PREFIX) :], head=head)
        elif path.startswith("/status/"):
            self._status(path[len("/status/") :])
        elif path.startswith("/slow/"):
            self._slow(path[len("/slow/") :])
        else:
            self._json(404, {"error": "not_found"})

    def _is_api(self) -> bool:
        return urlsplit(self.path).path.startswith(API_PREFIX)

    # --- token endpoint ------------------------------------------------------------------------------------

    def _token(self, body: bytes) -> None:
        state = self.server.state
        try:
            form = {k: v for k, v in parse_qs(body.decode("ascii"), strict_parsing=False).items()}
        except UnicodeDecodeError:
            self._oauth_error(400, "invalid_request", "body is not form-encoded")
            return
        if any(len(values) != 1 for values in form.values()):
            self._oauth_error(400, "invalid_request", "a parameter is repeated")
            return
        params = {k: v[0] for k, v in form.items()}
        basic = self._basic_credentials()
        if basic is not None and ("client_secret" in params or "client_id" in params):
            self._oauth_error(400, "invalid_request", "more than one client authentication method")
            return
        credentials = basic if basic is not None else (params.get("client_id"), params.get("client_secret"))
        client = state.clients.get(credentials[0] or "")
        if (
            client is None
            or credentials[1] is None
            or not secrets.compare_digest(client.secret.encode(), credentials[1].encode())
        ):
            self._oauth_error(
                401, "invalid_client", f"client {credentials[0]!r} not authenticated", basic=True
            )
            return
        if params.get("grant_type") != "client_credentials":
            self._oauth_error(400, "unsupported_grant_type", f"grant type {params.get('grant_type')!r}")
            return
        requested = frozenset(params["scope"].split()) if "scope" in params else client.scopes
        refused = requested - client.scopes
        if refused:
            self._oauth_error(400, "invalid_scope", f"scope {' '.join(sorted(refused))} not allowed")
            return
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = _Issued(client.client_id, requested, time.monotonic() + state.token_ttl)
        reply = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.token_ttl,
            "scope": " ".join(sorted(requested)),
        }
        self._json(200, reply, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _basic_credentials(self) -> tuple[str | None, str | None] | None:
        header = self.headers.get("Authorization")
        if header is None or not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return (None, None)
        name, sep, secret = decoded.partition(":")
        if not sep:
            return (None, None)
        return unquote_plus(name), unquote_plus(secret)

    def _oauth_error(self, status: int, code: str, description: str, *, basic: bool = False) -> None:
        headers = {"Cache-Control": "no-store"}
        if status == 401 and basic:
            headers["WWW-Authenticate"] = 'Basic realm="parityprobe-lab"'
        self._json(status, {"error": code, "error_description": description}, headers)

    # --- protected API -------------------------------------------------------------------------------------

    def _api(self, resource: str, *, head: bool) -> None:
        state = self.server.state
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        with state.lock:
            issued = state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if issued is None or issued.expires <= time.monotonic():
            challenge = 'Bearer realm="parityprobe-lab"'
            if header:
                challenge += ', error="invalid_token"'
            self._json(401, {"error": "invalid_token"}, {"WWW-Authenticate": challenge}, head=head)
            return
        needed = state.resources.get(resource)
        if needed is None:
            self._json(404, {"error": "not_found"}, head=head)
            return
        if needed not in issued.scopes:
            challenge = f'Bearer realm="parityprobe-lab", error="insufficient_scope", scope="{needed}"'
            self._json(403, {"error": "insufficient_scope"}, {"WWW-Authenticate": challenge}, head=head)
            return
        body = {"resource": resource, "client_id": issued.client_id, "scope": " ".join(sorted(issued.scopes))}
        self._json(200, body, head=head)

    # --- faults --------------------------------------------------------------------------------------------

    def _status(self, text: str) -> None:
        if not text.isdigit() or not 200 <= int(text) <= 599:
            self._json(404, {"error": "not_found"})
            return
        status = int(text)
        headers = {"Location": "/status/200"} if 300 <= status < 400 else {}
        if status == 429:
            headers["Retry-After"] = "1"
        self._json(status, {"status": status}, headers)

    def _slow(self, text: str) -> None:
        try:
            seconds = min(float(text), _MAX_SLEEP)
        except ValueError:
            self._json(404, {"error": "not_found"})
            return
        time.sleep(max(0.0, seconds))
        self._json(200, {"slept": seconds})

    # --- plumbing ------------------------------------------------------------------------------------------

    def _record(self) -> None:
        state = self.server.state
        seen = Seen(
            self.command,
            self.path,
            self.headers.get(state.correlation_header),
            "Authorization" in self.headers,
        )
        with state.lock:
            state.seen.append(seen)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(max(length, 0), _MAX_BODY))

    def _json(
        self,
        status: int,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        head: bool = False,
    ) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a probe's deadline): nothing to answer


class OAuthServer:
    """A running server: its base :attr:`url` (``http://127.0.0.1:<port>``), what it has :attr:`seen`, and
    :meth:`stop`."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        scheme = "https" if isinstance(server.socket, ssl.SSLSocket) else "http"
        self.url = f"{scheme}://{host!s}:{port}"
        self.token_url = self.url + TOKEN_PATH

    @property
    def seen(self) -> list[Seen]:
        """The requests received so far, in order of arrival."""
        with self._server.state.lock:
            return list(self._server.state.seen)

    def stop(self) -> None:
        """Stop serving and close the listening socket (requests still sleeping are abandoned)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_oauth_server(
    clients: Iterable[OAuthClientSpec],
    resources: Mapping[str, str],
    *,
    token_ttl: int = 3600,
    correlation_header: str = CORRELATION_HEADER,
    tls: ssl.SSLContext | None = None,
) -> OAuthServer:
    """Start a server knowing ``clients`` and protecting ``resources`` (resource → the scope it needs);
    over TLS with ``tls`` (a server context: require client certificates in it for mutual TLS)."""
    state = _State({c.client_id: c for c in clients}, dict(resources), token_ttl, correlation_header)
    server = _Server(state, tls)
    thread = threading.Thread(target=server.serve_forever, name="oauth-lab-server", daemon=True)
    thread.start()
    return OAuthServer(server, thread)


def serve(argv: list[str] | None = None) -> None:
    """Serve on ``--port`` until terminated, with the clients, resources and token lifetime of ``--config``:
    ``{"clients": {id: {"secret": s, "scopes": [..]}}, "resources": {name: scope}, "token_ttl": seconds}``."""
    import argparse
    import signal
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m parityprobe.lab.oauth_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    clients = [
        OAuthClientSpec(client_id, spec["secret"], frozenset(spec["scopes"]))
        for client_id, spec in config["clients"].items()
    ]
    state = _State(
        {c.client_id: c for c in clients},
        dict(config["resources"]),
        int(config["token_ttl"]),
        CORRELATION_HEADER,
    )
    server = _Server(state, None, port=args.port)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    serve()
