"""A local HTTPS server that speaks the Kubernetes API's documented shapes, for the k8s plane's tests.

No Kubernetes API server runs on these machines; real clusters are the plane's target. This server answers
what the probes ask, in the shapes the Kubernetes API reference documents:

- ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` → 201, the review with ``status:
  {allowed, denied?, reason?, evaluationError?}`` for ``spec.resourceAttributes``;
- ``POST /apis/authentication.k8s.io/v1/selfsubjectreviews`` → 201, ``status.userInfo {username, uid,
  groups, extra}`` (404 when ``self_subject_review`` is off, as on servers before 1.28);
- ``GET /version`` → ``{major, minor, gitVersion, gitCommit, gitTreeState, buildDate, goVersion, compiler,
  platform}``;
- resource paths (``/api/v1/...``, ``/apis/GROUP/VERSION/...``): 200 lists and objects, 201 on create, or a
  ``Status`` object (``kind: Status, apiVersion: v1, status: Failure, message, reason, details, code``) with
  401 Unauthorized, 403 Forbidden, 404 NotFound, and any fault a test plants (429 with ``Retry-After``, 500,
  a delay).

Authentication is by bearer token (401 without one, except for ``/version``, or with an unknown one), in
kube-apiserver's order: authentication, then authorization, then the object. Each token is an
:class:`Account` with RBAC-like ``rules`` deciding live requests and, separately, ``declared`` rules deciding
what SelfSubjectAccessReviews answer — a test makes the two disagree on purpose. TLS is real: certificates
from a CA made for the test (:func:`make_pki`, with :mod:`parityprobe.lab.certificates`).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from parityprobe.lab.certificates import make_ca

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


# --- certificates -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA certificate and a server certificate (for 127.0.0.1 and localhost) with its key, as PEM files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_pki(directory: Path, name: str = "cluster") -> Pki:
    """A fresh CA named ``name`` and a server certificate it signed, written under ``directory``."""
    ca = make_ca(f"{name}-ca")
    ca_cert = directory / f"{name}-ca.pem"
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert.write_bytes(ca.cert_pem())
    server = ca.issue_server("kube-apiserver", ["localhost"], ["127.0.0.1"], days=1)
    server_cert, server_key = server.write(directory, f"{name}-server")
    return Pki(ca_cert, server_cert, server_key)


# --- RBAC -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attributes:
    """What the authorizer is asked (the resource attributes of a request or of a review)."""

    verb: str
    resource: str
    group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""


@dataclass(frozen=True)
class Rule:
    """An RBAC-like rule: these verbs on these resources (``res`` or ``res/sub``) of these groups, in these
    namespaces (``*``: any, and cluster-wide questions)."""

    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    namespaces: tuple[str, ...] = ("*",)
    groups: tuple[str, ...] = ("",)

    def allows(self, a: Attributes) -> bool:
        resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        return (
            ("*" in self.verbs or a.verb in self.verbs)
            and ("*" in self.resources or resource in self.resources)
            and ("*" in self.groups or a.group in self.groups)
            and ("*" in self.namespaces or (a.namespace != "" and a.namespace in self.namespaces))
        )


@dataclass
class Account:
    """One bearer token's identity, what it may really do (``rules``), and what reviews declare it may do
    (``declared``; ``rules`` when None). ``deny_outright`` answers denials with ``denied: true``;
    without ``may_review`` a SelfSubjectAccessReview is itself forbidden (403)."""

    token: str
    username: str
    rules: tuple[Rule, ...] = ()
    declared: tuple[Rule, ...] | None = None
    deny_outright: bool = False
    may_review: bool = True
    groups: tuple[str, ...] = ("system:serviceaccounts", "system:authenticated")

    def may(self, a: Attributes, *, declared: bool = False) -> bool:
        rules = self.declared if declared and self.declared is not None else self.rules
        return any(rule.allows(a) for rule in rules)


@dataclass(frozen=True)
class Fault:
    """What a path answers instead of its real reply: a status (with ``Retry-After`` when given) and/or a
    delay in seconds before answering."""

    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    audit_id: str | None
    user_agent: str | None
    bearer: bool
    content_type: str | None
    body: Any


@dataclass
class ContractServer:
    """The running server: its address, accounts, stored objects (by (group, namespace, resource), name →
    object), planted faults (by path, query ignored) and every request it saw."""

    httpd: ThreadingHTTPServer
    accounts: dict[str, Account]
    objects: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    self_subject_review: bool = True
    git_version: str = "v1.30.2"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def put(self, namespace: str, resource: str, name: str, group: str = "", **fields: Any) -> None:
        """Store an object (its metadata made up)."""
        obj = {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}, **fields}
        self.objects.setdefault((group, namespace, resource), {})[name] = obj

    def requests_with(self, correlation_id: str) -> list[Seen]:
        return [s for s in self.seen if s.audit_id == correlation_id]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_contract_server(pki: Pki, accounts: list[Account], **options: Any) -> ContractServer:
    """Serve on a loopback port the system picks, in a daemon thread, until :meth:`ContractServer.stop`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    httpd = _TlsServer(("127.0.0.1", 0), _Handler, context)
    server = ContractServer(httpd, {a.token: a for a in accounts}, **options)
    httpd.contract = server
    threading.Thread(target=httpd.serve_forever, name="k8s-contract", daemon=True).start()
    return server


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    contract: ContractServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext):
        super().__init__(address, handler)
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the request's own thread: a client that fails it fails alone.
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(wrapped, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a step's deadline) closes its connection mid-reply: nothing to report.
        pass


def status_object(code: int, reason: str, message: str, **details: str) -> dict[str, Any]:
    """A ``Status`` object (``meta/v1``) for a failure."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalError",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        contract = self.server.contract
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = self.headers.get("Authorization") or ""
        contract.seen.append(
            Seen(
                self.command,
                self.path,
                self.headers.get("Audit-ID"),
                self.headers.get("User-Agent"),
                auth.startswith("Bearer "),
                self.headers.get("Content-Type"),
                body,
            )
        )
        fault = contract.faults.get(path)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status is not None:
                reason = _REASONS.get(fault.status, "InternalError")
                extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                self._status(fault.status, reason, f"planted {fault.status}", extra)
                return
        account = contract.accounts.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if path == "/version" and (account is not None or not auth):
            self._json(200, _version(contract.git_version))
        elif account is None:
            self._status(401, "Unauthorized", "Unauthorized")
        elif self.command == "POST" and path == SSR:
            self._self_subject(contract, account)
        elif self.command == "POST" and path == SSAR:
            self._access_review(account, body)
        else:
            self._resource(contract, account, path, body)

    def _self_subject(self, contract: ContractServer, account: Account) -> None:
        if not contract.self_subject_review:
            self._status(404, "NotFound", "the server could not find the requested resource")
            return
        user = {
            "username": account.username,
            "uid": f"uid-{account.username}",
            "groups": list(account.groups),
        }
        user["extra"] = {"authentication.kubernetes.io/pod-name": ["parityprobe-0"]}
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}}
        self._json(201, {**review, "status": {"userInfo": user}})

    def _access_review(self, account: Account, body: Any) -> None:
        if not account.may_review:
            message = f'selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "{account.username}"'
            self._status(403, "Forbidden", message)
            return
        spec = body.get("spec", {}).get("resourceAttributes", {}) if isinstance(body, dict) else {}
        a = Attributes(
            verb=spec.get("verb", ""),
            resource=spec.get("resource", ""),
            group=spec.get("group", ""),
            namespace=spec.get("namespace", ""),
            name=spec.get("name", ""),
            subresource=spec.get("subresource", ""),
        )
        status: dict[str, Any] = {"allowed": account.may(a, declared=True)}
        if status["allowed"]:
            status["reason"] = (
                f'RBAC: allowed by RoleBinding "probe/{a.namespace}" to User "{account.username}"'
            )
        elif account.deny_outright:
            status["denied"] = True
            status["reason"] = "denied by the policy webhook"
        self._json(201, {**body, "metadata": {}, "status": status})

    def _resource(self, contract: ContractServer, account: Account, path: str, body: Any) -> None:
        parsed = _parse(path)
        if parsed is None:
            self._status(404, "NotFound", "the server could not find the requested resource")
            return
        group, namespace, resource, name, subresource = parsed
        verb = _verb(self.command, bool(name))
        a = Attributes(verb, resource, group, namespace, name, subresource)
        if not account.may(a):
            where = f' in the namespace "{namespace}"' if namespace else ""
            message = (
                f'{resource} is forbidden: User "{account.username}" cannot {verb} resource "{resource}" '
                f'in API group "{group}"{where}'
            )
            self._status(403, "Forbidden", message, details={"kind": resource})
            return
        store = contract.objects.setdefault((group, namespace, resource), {})
        if verb == "list":
            self._json(
                200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": list(store.values())}
            )
        elif verb == "create":
            created = body if isinstance(body, dict) else {}
            new_name = created.get("metadata", {}).get("name", "generated")
            store[new_name] = created
            self._json(201, created)
        elif name not in store:
            self._status(
                404, "NotFound", f'{resource} "{name}" not found', details={"name": name, "kind": resource}
            )
        elif verb == "delete":
            del store[name]
            self._json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        elif verb in ("update", "patch"):
            store[name] = {**store[name], **(body or {})}
            self._json(200, store[name])
        else:
            self._json(200, store[name])

    def _status(
        self,
        code: int,
        reason: str,
        message: str,
        extra: dict[str, str] | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        self._json(code, status_object(code, reason, message, **(details or {})), extra)

    def _json(self, code: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        audit_id = self.headers.get("Audit-ID")
        if audit_id:
            self.send_header("Audit-ID", audit_id)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _version(git_version: str) -> dict[str, str]:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2024-06-11T20:20:00Z",
        "goVersion": "go1.22.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _parse(path: str) -> tuple[str, str, str, str, str] | None:
    """(group, namespace, resource, name, subresource) of a resource path; None for anything else."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 2 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
    rest = [*rest, "", ""]
    return group, namespace, rest[0], rest[1], rest[2]


def _verb(method: str, named: bool) -> str:
    if method in ("GET", "HEAD"):
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}[method]
