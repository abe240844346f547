"""``tls.handshake``: what does a TLS server present here, does it verify, and does it let this client in?"""

from __future__ import annotations

import ssl
from types import MappingProxyType
from typing import ClassVar

from pydantic import Field, field_validator

from parityprobe.model import Effect, Grant
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult

from . import errors
from .chain import facts
from .contexts import present, register_key, unverified, verifying
from .errors import CLIENT_CERTIFICATE_REQUIRED, HandshakeRefused, TlsSetupError
from .session import Session, handshake
from .settings import ClientCertificate, TlsSettings

SECTION = "tls"


class HandshakeParams(ProbeParams):
    """The server (``host``, ``port``), the name to announce and verify (``server_name``, SNI; default the
    host), the client certificate to present (its name in the environment's ``tls`` section), and a CA
    bundle overriding the section's (a path; relative to the working directory)."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, min_length=1, max_length=253)
    client_certificate: str | None = Field(default=None, min_length=1)
    ca_bundle: str | None = Field(default=None, min_length=1)

    @field_validator("server_name")
    @classmethod
    def _sni(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith(".") or any(c.isspace() for c in v)):
            raise ValueError("a server name is a host name: no leading dot, no spaces")
        return v


class TlsHandshake:
    """Shake hands with the TLS server at ``host:port`` and close: nothing is sent after the handshake.

    ALLOWED: the handshake completed (and the server did not then refuse the client's certificate). DENIED
    "client certificate required": the server asked for a client certificate, none was given, and it
    ended the connection (TLS 1.3 servers say so only after the handshake, in an alert the probe waits
    for). DENIED "certificate refused": the server rejected the certificate given (unknown CA, expired,
    revoked, bad). A chain that does not verify is *not* a denial: it is reported in the grant, so a root
    that differs between environments, or verifies in one only, is a finding rather than an error. A closed
    port, an unknown host, silence, or a peer that does not speak TLS is an ERROR; see :mod:`.errors`.

    How: a handshake that verifies the chain against the trust store (``ca_bundle``, else the ``tls``
    section's, else the system's) and the certificate's name against ``server_name``, as the workload's own
    client would; when the chain does not verify, a second handshake that verifies nothing, to learn what
    the server presents. When a client certificate was presented and the server asked for one, one more
    handshake without it tells "required" from merely "requested" (not timed).

    Grant: ``identity`` the leaf's subject (RFC 4514), ``expires_at`` its notAfter (UTC), and attributes
    ``issuer`` (the leaf's issuer), ``root`` (the root's subject) and ``root sha256`` (its fingerprint;
    "not sent" when the server does not send the root and the trust store does not hold it), ``chain``
    ("verifies" or "does not verify: <reason>"), ``client certificate`` ("required", "requested", "not
    requested"; "unknown" where this Python cannot watch the handshake). The protocol and cipher agreed are
    the step's ``server`` (``TLSv1.3 TLS_AES_256_GCM_SHA384``), compared as configuration drift. Days to
    expiry are not an attribute (they differ between any two runs); a step's ``expect: {valid_for: 30d}``
    makes a certificate that expires sooner a finding in its own environment. Outputs: none.

    The correlation id cannot travel in a handshake (there is no header to put it in); the server's logs
    are searched by address and time. The effect is READ. A client certificate's private key comes from
    the ``tls`` section by secret reference only, is registered with the redactor, and reaches OpenSSL
    through an anonymous in-memory file. Certificates are read with ``cryptography``
    (``pip install 'parityprobe[tls]'``); without it the step is a harness error saying so.
    """

    name: ClassVar[str] = "tls.handshake"
    Params: ClassVar[type[ProbeParams]] = HandshakeParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    # The section is optional (without it: the system trust store, no client certificate).
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: HandshakeParams, ctx: ProbeContext) -> ProbeResult:
        """One verifying handshake; one more unverified when the chain does not verify; one more without a
        certificate when one was presented and requested."""
        settings = ctx.environment.section(SECTION, TlsSettings) or TlsSettings()
        bundle = params.ca_bundle or settings.ca_bundle
        sni = params.server_name or params.host
        cert = params.client_certificate
        presented = cert is not None
        if cert is not None:
            # Every run: a daemon's redactor forgets a run's secrets when the run ends; contexts are cached.
            register_key(ctx.redactor, declared(ctx, settings, cert).key.secret())
        checked = _context(ctx, settings, "verifying", bundle, cert)
        try:
            with ctx.timer:
                session = handshake(
                    checked, params.host, params.port, sni, ctx.remaining(), presented=presented
                )
            chain = "verifies"
        except ssl.SSLCertVerificationError as exc:
            chain = f"does not verify: {verify_reason(exc)}"
            probing = _context(ctx, settings, "unverified", None, cert)
            with ctx.timer:
                session = handshake(
                    probing, params.host, params.port, sni, ctx.remaining(), presented=presented
                )
        if not session.sent:
            raise ssl.SSLError("the server sent no certificate")
        found = facts(session.sent, session.verified, bundle)
        attributes = {
            "issuer": found.issuer,
            "root": found.root,
            "root sha256": found.root_sha256,
            "chain": chain,
            "client certificate": self._client_certificate(params, ctx, settings, session, sni),
        }
        return ProbeResult(
            grant=Grant(
                identity=found.subject,
                expires_at=found.not_after,
                attributes=MappingProxyType(attributes),
            ),
            server=f"{session.protocol} {session.cipher}",
        )

    def translate(self, exc: BaseException) -> Failure | None:
        """See :func:`parityprobe.probes.tls.errors.translate`."""
        return errors.translate(exc)

    def target(self, params: HandshakeParams) -> str:
        """``host:port (server name)``."""
        where = f"[{params.host}]" if ":" in params.host else params.host
        return f"{where}:{params.port} ({params.server_name or params.host})"

    def _client_certificate(
        self, params: HandshakeParams, ctx: ProbeContext, settings: TlsSettings, session: Session, sni: str
    ) -> str:
        if session.requested is None:
            return "unknown"
        if not session.requested:
            return "not requested"
        if params.client_certificate is None:
            return "requested"  # and the handshake went on without one
        bare = _context(ctx, settings, "unverified", None, None)
        try:
            handshake(bare, params.host, params.port, sni, ctx.remaining(), presented=False)
        except HandshakeRefused as exc:
            return "required" if exc.reason == CLIENT_CERTIFICATE_REQUIRED else "requested"
        except (OSError, ssl.SSLError):
            return "requested"  # no verdict either way: it was requested, at least
        return "requested"


def verify_reason(exc: ssl.SSLCertVerificationError) -> str:
    """OpenSSL's fixed text for why a chain does not verify; a name mismatch without the name (which
    differs between environments when it comes from their vars)."""
    if exc.verify_code == _HOSTNAME_MISMATCH:
        return "name mismatch"
    if exc.verify_code == _IP_ADDRESS_MISMATCH:
        return "address mismatch"
    return str(exc.verify_message or "unknown reason").lower()


# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH (OpenSSL's x509_vfy.h).
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64


def _context(
    ctx: ProbeContext, settings: TlsSettings, kind: str, bundle: str | None, certificate: str | None
) -> ssl.SSLContext:
    """A client context, built once per invocation (loading a trust store or a key costs more than a
    handshake)."""

    def build() -> ssl.SSLContext:
        context = verifying(bundle) if kind == "verifying" else unverified()
        if certificate is not None:
            present(context, certificate, declared(ctx, settings, certificate))
        return context

    return ctx.clients.get(f"tls:{kind}:{bundle}:{certificate}", build)


def declared(ctx: ProbeContext, settings: TlsSettings, name: str) -> ClientCertificate:
    """The client certificate the ``tls`` section declares as ``name``; TlsSetupError when it does not."""
    found = settings.client_certificates.get(name)
    if found is None:
        raise TlsSetupError(
            f"environment {ctx.environment.name!r} declares no client certificate {name!r} in its tls section"
        )
    return found
