"""tls.handshake against real TLS servers on loopback, with certificate authorities made for the test:
chains that verify against one trust store and not another, different roots, mutual TLS required,
requested or absent (TLS 1.3 and 1.2), expiry, peers that do not speak TLS, and through the command line
with no private key byte in any output."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes

from parityprobe.config.environments import Environment
from parityprobe.lab.certificates import CertificateAuthority, make_ca
from parityprobe.lab.tls_server import TcpListener, TlsServer
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.tls.errors import CRYPTOGRAPHY_MISSING
from parityprobe.probes.tls.handshake import TlsHandshake
from parityprobe.probes.tls.settings import TlsSettings
from tests.fault_server import fault_server, silent_endpoint
from tests.probe_support import environment, observe, probe_context

PROBE = TlsHandshake()
TLS12 = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True)
class Pki:
    """Two CAs (A, B) and what they issued, written under ``directory``."""

    directory: Path
    a: CertificateAuthority
    b: CertificateAuthority
    paths: dict[str, tuple[Path, Path]]

    def server(self, stem: str, client_ca: str | None = None, required: bool = False, **kw: Any) -> TlsServer:
        cert, key = self.paths[stem]
        ca = self.paths[client_ca][0] if client_ca else None
        return TlsServer(cert, key, ca, required, **kw)

    def env(self, bundle: str = "ca-a", name: str = "staging") -> Environment:
        certificates = {
            stem: {"cert": str(self.paths[stem][0]), "key": {"file": str(self.paths[stem][1])}}
            for stem in ("client-a", "client-b")
        }
        # A certificate whose key is another's: it cannot be loaded.
        certificates["mismatched"] = {
            "cert": str(self.paths["client-a"][0]),
            "key": {"file": str(self.paths["client-b"][1])},
        }
        env = environment(
            {
                "name": name,
                "tls": {"ca_bundle": str(self.paths[bundle][0]), "client_certificates": certificates},
            }
        )
        settings = env.section("tls", TlsSettings)
        assert settings is not None
        for certificate in settings.client_certificates.values():
            certificate.key.resolve(self.directory, "client key")
        return env


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    a, b = make_ca("Lab CA A"), make_ca("Lab CA B")
    issued = {
        "ca-a": a,
        "ca-b": b,
        "server-a": a.issue_server("localhost", ["localhost"], ["127.0.0.1"], days=90),
        "server-b": b.issue_server("localhost", ["localhost"], ["127.0.0.1"], days=90),
        "short-a": a.issue_server("localhost", ["localhost"], ["127.0.0.1"], days=0.5),
        "client-a": a.issue_client("payments-workload"),
        "client-b": b.issue_client("payments-workload"),
    }
    return Pki(directory, a, b, {stem: cert.write(directory, stem) for stem, cert in issued.items()})


def shake(env: Environment, port: int, seconds: float = 10, **params: Any) -> ProbeResult | Failure:
    return observe(
        PROBE, {"host": "127.0.0.1", "port": port, **params}, probe_context(env, "tls", seconds=seconds)
    )


def allowed(result: ProbeResult | Failure) -> dict[str, str]:
    assert isinstance(result, ProbeResult), result
    assert result.outcome is Outcome.ALLOWED
    return dict(result.grant.attributes)


def sha256(ca: CertificateAuthority) -> str:
    return ":".join(f"{b:02X}" for b in ca.certificate.fingerprint(hashes.SHA256()))


def test_the_chain_verifies_against_its_own_root_only(pki: Pki) -> None:
    with pki.server("server-a") as server:
        good = shake(pki.env("ca-a"), server.port, server_name="localhost")
        other = shake(pki.env("ca-b"), server.port, server_name="localhost")
    assert isinstance(good, ProbeResult)
    assert good.grant.identity == "CN=localhost"
    attributes = allowed(good)
    assert attributes["chain"] == "verifies"
    assert attributes["issuer"] == attributes["root"] == "CN=Lab CA A"
    assert attributes["root sha256"] == sha256(pki.a)
    assert attributes["client certificate"] == "not requested"
    assert good.server is not None and good.server.startswith("TLSv1.3 TLS_")
    assert "protocol" not in attributes and "cipher" not in attributes  # compared as drift, not as a grant
    # Not a denial: the grant says the chain does not verify, and the root is not in that store.
    mismatch = allowed(other)
    assert mismatch["chain"] == "does not verify: unable to get local issuer certificate"
    assert mismatch["root"] == "CN=Lab CA A" and mismatch["root sha256"] == "not sent"


def test_a_name_mismatch_is_reported_and_the_root_found_in_the_trust_store(pki: Pki) -> None:
    with pki.server("server-a") as server:
        attributes = allowed(shake(pki.env("ca-a"), server.port, server_name="payments.other.example"))
    assert attributes["chain"] == "does not verify: name mismatch"
    assert attributes["root sha256"] == sha256(pki.a)


def test_different_roots_give_different_root_attributes(pki: Pki) -> None:
    with pki.server("server-a") as a, pki.server("server-b") as b:
        from_a = allowed(shake(pki.env("ca-a"), a.port, server_name="localhost"))
        from_b = allowed(shake(pki.env("ca-b"), b.port, server_name="localhost"))
    assert (from_a["root"], from_b["root"]) == ("CN=Lab CA A", "CN=Lab CA B")
    assert (from_a["root sha256"], from_b["root sha256"]) == (sha256(pki.a), sha256(pki.b))
    assert from_a["chain"] == from_b["chain"] == "verifies"


@pytest.mark.parametrize("version", [None, TLS12], ids=["tls1.3", "tls1.2"])
def test_mutual_tls_required(pki: Pki, version: ssl.TLSVersion | None) -> None:
    env = pki.env("ca-a")
    with pki.server("server-a", "ca-a", required=True, maximum_version=version) as server:
        without = shake(env, server.port, server_name="localhost")
        with_a = shake(env, server.port, server_name="localhost", client_certificate="client-a")
        with_b = shake(env, server.port, server_name="localhost", client_certificate="client-b")
    assert without == Failure(Outcome.DENIED, "client certificate required")
    attributes = allowed(with_a)
    assert attributes["client certificate"] == "required"
    assert isinstance(with_a, ProbeResult) and with_a.server is not None
    assert with_a.server.split()[0] == ("TLSv1.2" if version else "TLSv1.3")
    assert with_b == Failure(Outcome.DENIED, "certificate refused")


def test_mutual_tls_requested_but_not_required(pki: Pki) -> None:
    env = pki.env("ca-a")
    with pki.server("server-a", "ca-a", required=False) as server:
        without = allowed(shake(env, server.port, server_name="localhost"))
        with_a = allowed(shake(env, server.port, server_name="localhost", client_certificate="client-a"))
    assert without["client certificate"] == with_a["client certificate"] == "requested"


def test_expiry_is_the_leafs_not_after(pki: Pki) -> None:
    now = datetime.now(UTC)
    with pki.server("short-a") as short, pki.server("server-a") as long:
        soon = shake(pki.env(), short.port, server_name="localhost")
        later = shake(pki.env(), long.port, server_name="localhost")
    assert isinstance(soon, ProbeResult) and isinstance(later, ProbeResult)
    assert soon.grant.expires_at is not None and later.grant.expires_at is not None
    assert now + timedelta(hours=11) < soon.grant.expires_at < now + timedelta(hours=13)
    assert now + timedelta(days=89) < later.grant.expires_at < now + timedelta(days=91)
    # Days to expiry differ between any two runs: they are no attribute to compare.
    assert not any("day" in key or "expir" in key for key in soon.grant.attributes)


def test_peers_that_do_not_speak_tls_are_target_errors(pki: Pki) -> None:
    with TcpListener() as plain:
        closed = shake(pki.env(), plain.port)
    # Closed before or after the client's hello arrived: a clean close, or a reset.
    assert closed in (
        Failure.error(ErrorKind.TARGET_ERROR, "closed during handshake"),
        Failure.error(ErrorKind.TARGET_ERROR, "connection reset"),
    )
    with fault_server() as http:
        assert shake(pki.env(), http.port) == Failure.error(ErrorKind.TARGET_ERROR, "tls handshake failed")


def test_a_closed_port_is_unreachable_and_silence_a_timeout(pki: Pki) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert shake(pki.env(), port) == Failure.error(ErrorKind.UNREACHABLE, "connection refused")
    with silent_endpoint() as url:
        silent = int(url.rsplit(":", 1)[1])
        assert shake(pki.env(), silent, seconds=0.5) == Failure.error(ErrorKind.TIMEOUT, "timed out")


def test_client_certificate_setup_errors_are_harness_errors_naming_no_key(pki: Pki) -> None:
    with pki.server("server-a", "ca-a", required=True) as server:
        unknown = shake(pki.env(), server.port, client_certificate="nope")
        mismatched = shake(pki.env(), server.port, client_certificate="mismatched")
    assert isinstance(unknown, Failure) and unknown.error_kind is ErrorKind.HARNESS_ERROR
    assert "declares no client certificate 'nope'" in unknown.reason
    assert isinstance(mismatched, Failure) and mismatched.error_kind is ErrorKind.HARNESS_ERROR
    assert "cannot be loaded" in mismatched.reason
    key_lines = pki.paths["client-b"][1].read_text().splitlines()[1:-1]
    assert not any(line in mismatched.reason for line in key_lines)


@pytest.fixture
def two_environments(pki: Pki, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Staging: CA A, no mutual TLS. Production: CA B, mutual TLS required. Both present a client
    certificate named ``workload``; paths relative to the environments file."""
    with pki.server("server-a") as staging, pki.server("server-b", "ca-b", required=True) as production:
        envs = tmp_path / "environments.yaml"
        rel = os.path.relpath(pki.directory, tmp_path)  # resolved against the environments file
        lines = ["environments:"]
        for name, server, ca, client in (
            ("staging", staging, "ca-a", "client-a"),
            ("production", production, "ca-b", "client-b"),
        ):
            lines += [
                f"  {name}:",
                f"    vars: {{api_port: '{server.port}'}}",
                "    tls:",
                f"      ca_bundle: {rel}/{ca}.crt",
                "      client_certificates:",
                f"        workload: {{cert: {rel}/{client}.crt, key: {{file: {rel}/{client}.key}}}}",
            ]
        envs.write_text("\n".join(lines) + "\n")
        scenario = tmp_path / "tls-api.yaml"
        common = "host: 127.0.0.1, port: '${{ vars.api_port }}', server_name: localhost"
        scenario.write_text(
            "id: tls-api\nsteps:\n"
            f"  - {{id: anonymous, probe: tls.handshake, with: {{{common}}}}}\n"
            f"  - {{id: workload, probe: tls.handshake, with: {{{common}, client_certificate: workload}}}}\n"
        )
        yield envs, scenario


def test_through_the_command_line_gaps_are_findings_and_no_key_byte_leaves(
    pki: Pki, two_environments: tuple[Path, Path]
) -> None:
    envs, scenario = two_environments
    done = subprocess.run(
        [sys.executable, "-m", "parityprobe", "-v", "run", "--format", "json", "-e", envs, scenario],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    text = json.dumps(report)
    # mTLS required in production only (a denial there), and a different root on the step both pass.
    assert "outcome_mismatch" in text and "client certificate required" in text, done.stderr
    assert "grant_mismatch" in text and "CN=Lab CA B" in text
    for stem in ("client-a", "client-b"):
        key_lines = pki.paths[stem][1].read_text().splitlines()[1:-1]
        assert key_lines and not any(line in done.stdout or line in done.stderr for line in key_lines)


def test_without_cryptography_a_step_is_a_harness_error_naming_the_extra(pki: Pki) -> None:
    cert, key = pki.paths["server-a"]
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from parityprobe.lab.tls_server import TlsServer\n"
        "from parityprobe.probes.tls.handshake import TlsHandshake\n"
        "from tests.probe_support import environment, observe, probe_context\n"
        f"with TlsServer({str(cert)!r}, {str(key)!r}) as server:\n"
        "    params = {'host': '127.0.0.1', 'port': server.port}\n"
        "    print(repr(observe(TlsHandshake(), params, probe_context(environment({'name': 'x'}), 's'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(Failure.error(ErrorKind.HARNESS_ERROR, CRYPTOGRAPHY_MISSING))
