"""http.request and oauth2.client_credentials against real local OAuth servers over loopback.

Two servers stand for two environments: staging's client may have ``reports:read``, production's may not
(the scope gap); staging's client authenticates with HTTP Basic, production's in the form body.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parityprobe.config.environments import Environment
from parityprobe.lab.oauth_server import OAuthClientSpec, OAuthServer, start_oauth_server
from parityprobe.model import Effect, ErrorKind, Outcome
from parityprobe.probe import Failure, ProbeContext, ProbeResult
from parityprobe.probes.http.oauth2 import ClientCredentials
from parityprobe.probes.http.request import HttpRequest, HttpRequestParams
from parityprobe.probes.http.settings import HttpSettings
from parityprobe.secret import Secret
from tests.probe_support import environment, observe, probe_context

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)
REQUEST, GRANT = HttpRequest(), ClientCredentials()
RESOURCES = {"orders": "orders:read", "reports": "reports:read"}
STAGING_SCOPES = frozenset({"orders:read", "orders:write", "reports:read"})
PRODUCTION_SCOPES = frozenset({"orders:read", "orders:write"})


@dataclass(frozen=True)
class Lab:
    staging: OAuthServer
    production: OAuthServer
    envs: dict[str, Environment]
    client_secrets: dict[str, str]

    def server(self, name: str) -> OAuthServer:
        return self.staging if name == "staging" else self.production


def make_env(name: str, http: dict[str, Any], **extra: Any) -> Environment:
    env = environment({"name": name, "http": http, **extra})
    settings = env.section("http", HttpSettings)
    assert settings is not None
    if settings.oauth2 is not None:
        settings.oauth2.client_secret.resolve(Path.cwd(), "client secret")
        if not isinstance(settings.oauth2.client_id, str):
            settings.oauth2.client_id.resolve(Path.cwd(), "client id")
    return env


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    staging_secret, production_secret = (
        secrets.token_urlsafe(18) + "+/:% é",
        secrets.token_urlsafe(18) + "+/:%",
    )
    staging = start_oauth_server([OAuthClientSpec("svc:staging", staging_secret, STAGING_SCOPES)], RESOURCES)
    production = start_oauth_server(
        [OAuthClientSpec("svc:production", production_secret, PRODUCTION_SCOPES)],
        RESOURCES,
        correlation_header="X-Request-Trace",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PP_TEST_HTTP_STAGING_SECRET", staging_secret)
        mp.setenv("PP_TEST_HTTP_PRODUCTION_SECRET", production_secret)
        mp.setenv("PP_TEST_HTTP_PRODUCTION_ID", "svc:production")
        envs = {
            "staging": make_env(
                "staging",
                {
                    "base_url": staging.url,
                    "oauth2": {
                        "token_url": "/oauth/token",
                        "client_id": "svc:staging",
                        "client_secret": {"env": "PP_TEST_HTTP_STAGING_SECRET"},
                        "auth_method": "client_secret_basic",
                    },
                },
            ),
            "production": make_env(
                "production",
                {
                    "base_url": production.url,
                    "correlation_header": "X-Request-Trace",
                    "oauth2": {
                        "token_url": production.token_url,
                        "client_id": {"env": "PP_TEST_HTTP_PRODUCTION_ID"},
                        "client_secret": {"env": "PP_TEST_HTTP_PRODUCTION_SECRET"},
                        "auth_method": "client_secret_post",
                    },
                },
                safety={"allow_effects": ["read", "write"]},
            ),
        }
    yield Lab(staging, production, envs, {"staging": staging_secret, "production": production_secret})
    staging.stop()
    production.stop()


BOTH = ["staging", "production"]


def context(env: Environment, step: str, seconds: float = 10) -> ProbeContext:
    return probe_context(env, step, seconds=seconds, run=RUN)


def allowed(observed: ProbeResult | Failure) -> ProbeResult:
    assert isinstance(observed, ProbeResult), observed
    assert observed.outcome is Outcome.ALLOWED
    return observed


def token_for(lab: Lab, name: str, scopes: list[str]) -> Secret:
    result = allowed(observe(GRANT, {"scopes": scopes}, context(lab.envs[name], "grant")))
    token = result.outputs["access_token"]
    assert isinstance(token, Secret)
    return token


def request(lab: Lab, name: str, step: str, seconds: float = 10, **params: Any) -> ProbeResult | Failure:
    return observe(REQUEST, params, context(lab.envs[name], step, seconds))


# --- oauth2.client_credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOTH)
def test_grant_allowed_with_both_client_auth_methods(lab: Lab, name: str) -> None:
    ctx = context(lab.envs[name], "grant-orders")
    result = allowed(observe(GRANT, {"scopes": ["orders:read"]}, ctx))
    assert result.grant.ttl_seconds == 3600
    assert dict(result.grant.attributes) == {"scope": "orders:read", "token_type": "bearer"}
    token = result.outputs["access_token"]
    assert isinstance(token, Secret) and token.reveal()
    assert ctx.redactor.redact(f"x {token.reveal()} y") != f"x {token.reveal()} y"
    assert ctx.timer.used
    # staging authenticates with HTTP Basic, production in the form body: what the server received says so.
    seen = [s for s in lab.server(name).seen if s.correlation_id == ctx.correlation_id]
    assert [(s.method, s.path, s.authorization) for s in seen] == [
        ("POST", "/oauth/token", name == "staging")
    ]


def test_default_scopes_show_the_scope_gap_as_a_grant_difference(lab: Lab) -> None:
    scopes = {
        name: allowed(observe(GRANT, {}, context(lab.envs[name], "grant-default"))).grant.attributes["scope"]
        for name in BOTH
    }
    assert scopes == {
        "staging": "orders:read orders:write reports:read",
        "production": "orders:read orders:write",
    }


def test_unauthorised_scope_is_denied_where_the_client_lacks_it(lab: Lab) -> None:
    allowed(observe(GRANT, {"scopes": ["reports:read"]}, context(lab.envs["staging"], "grant-reports")))
    refused = observe(GRANT, {"scopes": ["reports:read"]}, context(lab.envs["production"], "grant-reports"))
    # The server's error_description ("scope reports:read not allowed") is never echoed.
    assert refused == Failure(Outcome.DENIED, "invalid scope")


@pytest.mark.parametrize("name", BOTH)
def test_wrong_client_secret_is_denied_as_invalid_client(lab: Lab, name: str) -> None:
    wrong = Secret("not-the-secret-" + secrets.token_hex(4), "client secret")
    refused = observe(GRANT, {"client_secret": wrong}, context(lab.envs[name], "grant-wrong-secret"))
    assert refused == Failure(Outcome.DENIED, "invalid client")


def test_unknown_client_is_denied_as_invalid_client(lab: Lab) -> None:
    refused = observe(GRANT, {"client_id": "svc-nobody"}, context(lab.envs["staging"], "grant-unknown"))
    assert refused == Failure(Outcome.DENIED, "invalid client")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, Failure.error(ErrorKind.TARGET_ERROR, "server error 500")),
        (503, Failure.error(ErrorKind.TARGET_ERROR, "server error 503")),
        (429, Failure.error(ErrorKind.THROTTLED, "rate limited")),
    ],
)
def test_token_endpoint_faults_are_errors(lab: Lab, status: int, expected: Failure) -> None:
    env = make_env(
        "faulty",
        {
            "base_url": lab.staging.url,
            "oauth2": {
                "token_url": f"/status/{status}",
                "client_id": "svc:staging",
                "client_secret": {"file": str(secret_file(lab.client_secrets["staging"]))},
            },
        },
    )
    assert observe(GRANT, {}, context(env, "grant-fault")) == expected


def test_environment_without_oauth2_client_is_a_harness_error(lab: Lab) -> None:
    env = make_env("plain", {"base_url": lab.staging.url})
    observed = observe(GRANT, {}, context(env, "grant-none"))
    assert isinstance(observed, Failure) and observed.error_kind is ErrorKind.HARNESS_ERROR


# --- http.request with a bearer token ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BOTH)
def test_bearer_token_flow(lab: Lab, name: str) -> None:
    token = token_for(lab, name, ["orders:read"])
    result = allowed(request(lab, name, "orders", path="/api/orders", token=token, json_field="scope"))
    assert result.outputs == {"status": "200"}
    assert dict(result.grant.attributes) == {"scope": "orders:read"}
    # The token lacks reports:read: the API refuses it.
    assert request(lab, name, "reports", path="/api/reports", token=token) == Failure(
        Outcome.DENIED, "forbidden"
    )


def test_scope_gap_decides_the_api_call(lab: Lab) -> None:
    decided = {
        name: request(lab, name, "reports-all", path="/api/reports", token=token_for(lab, name, []))
        for name in BOTH
    }
    assert isinstance(decided["staging"], ProbeResult) and decided["staging"].outcome is Outcome.ALLOWED
    assert decided["production"] == Failure(Outcome.DENIED, "forbidden")


def test_json_field_reads_a_nested_value_and_skips_a_missing_one(lab: Lab) -> None:
    token = token_for(lab, "staging", ["orders:read"])
    got = allowed(request(lab, "staging", "field", path="/api/orders", token=token, json_field="client_id"))
    assert dict(got.grant.attributes) == {"client_id": "svc:staging"}
    absent = allowed(request(lab, "staging", "field", path="/api/orders", token=token, json_field="a.b"))
    assert dict(absent.grant.attributes) == {}


@pytest.mark.parametrize("name", BOTH)
def test_missing_or_unknown_token_is_unauthorized(lab: Lab, name: str) -> None:
    assert request(lab, name, "anon", path="/api/orders") == Failure(Outcome.DENIED, "unauthorized")
    bogus = Secret(secrets.token_urlsafe(24), "bogus token")
    assert request(lab, name, "bogus", path="/api/orders", token=bogus) == Failure(
        Outcome.DENIED, "unauthorized"
    )


def test_unknown_resource_is_not_found(lab: Lab) -> None:
    token = token_for(lab, "staging", ["orders:read"])
    observed = request(lab, "staging", "missing", path="/api/nothing-here", token=token)
    assert observed == Failure(Outcome.NOT_FOUND, "not found")


def test_head_is_answered_like_get(lab: Lab) -> None:
    token = token_for(lab, "staging", ["orders:read"])
    assert allowed(
        request(lab, "staging", "head", method="HEAD", path="/api/orders", token=token)
    ).outputs == {"status": "200"}


# --- status mapping and faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, Failure(Outcome.DENIED, "unauthorized")),
        (403, Failure(Outcome.DENIED, "forbidden")),
        (404, Failure(Outcome.NOT_FOUND, "not found")),
        (429, Failure.error(ErrorKind.THROTTLED, "rate limited")),
        (500, Failure.error(ErrorKind.TARGET_ERROR, "server error 500")),
        (502, Failure.error(ErrorKind.TARGET_ERROR, "server error 502")),
        (302, Failure.error(ErrorKind.TARGET_ERROR, "unexpected redirect 302")),
        (418, Failure.error(ErrorKind.TARGET_ERROR, "unexpected status 418")),
    ],
)
def test_status_mapping(lab: Lab, status: int, expected: Failure) -> None:
    assert request(lab, "staging", f"status-{status}", path=f"/status/{status}") == expected


@pytest.mark.parametrize("status", [200, 201, 204])
def test_any_2xx_is_allowed(lab: Lab, status: int) -> None:
    assert allowed(request(lab, "staging", "ok", path=f"/status/{status}")).outputs == {"status": str(status)}


def test_unreachable_port_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there now (bound, never listened, closed).
    env = make_env("gone", {"base_url": f"http://127.0.0.1:{port}"})
    observed = observe(REQUEST, {"path": "/api/orders"}, context(env, "gone"))
    assert observed == Failure.error(ErrorKind.UNREACHABLE, "connection failed")


def test_request_slower_than_the_step_deadline_times_out(lab: Lab) -> None:
    observed = request(lab, "staging", "slow", seconds=0.5, path="/slow/5")
    assert observed == Failure.error(ErrorKind.TIMEOUT, "timed out")


def test_tls_to_a_plain_http_server_fails_the_handshake(lab: Lab) -> None:
    env = make_env("tls", {"base_url": lab.staging.url.replace("http://", "https://")})
    observed = observe(REQUEST, {"path": "/api/orders"}, context(env, "tls"))
    assert observed == Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed")


@pytest.mark.parametrize(("name", "header"), [("staging", None), ("production", "X-Request-Trace")])
def test_correlation_id_reaches_the_server_in_the_configured_header(
    lab: Lab, name: str, header: str | None
) -> None:
    ctx = context(lab.envs[name], f"cid-{secrets.token_hex(3)}")
    observe(REQUEST, {"path": "/status/200", "headers": {"Accept": "application/json"}}, ctx)
    seen = [s for s in lab.server(name).seen if s.path == "/status/200"]
    assert ctx.correlation_id in [s.correlation_id for s in seen]


# --- effect and safety ------------------------------------------------------------------------------------


def test_effect_follows_the_method() -> None:
    assert HttpRequest.effect_for({"path": "/x"}) is Effect.READ
    assert HttpRequest.effect_for({"method": "head"}) is Effect.READ
    assert HttpRequest.effect_for({"method": "POST"}) is Effect.WRITE
    assert HttpRequest.effect_for({"method": "${{ vars.method }}"}) is Effect.WRITE


def test_write_refused_before_sending_where_not_allowed(lab: Lab) -> None:
    before = len(lab.staging.seen)
    observed = request(lab, "staging", "post", method="POST", path="/status/200", data={"a": 1})
    assert isinstance(observed, Failure) and observed.error_kind is ErrorKind.HARNESS_ERROR
    assert len(lab.staging.seen) == before
    # production allows write: the same request is sent (and the lab answers 405 for POST on /api).
    token = token_for(lab, "production", ["orders:write"])
    sent = request(lab, "production", "post", method="POST", path="/api/orders", token=token, data={"a": 1})
    assert sent == Failure.error(ErrorKind.TARGET_ERROR, "unexpected status 405")


@pytest.mark.parametrize(
    "params",
    [
        {"path": "/x", "url": "http://127.0.0.1/x"},
        {},
        {"path": "relative"},
        {"path": "/a/../b"},
        {"path": "/x", "headers": {"Authorization": "Bearer x"}},
        {"path": "/x", "headers": {"bad name": "x"}},
        {"path": "/x", "json_field": "access_token"},
        {"path": "/x", "method": "GET", "data": {"a": 1}},
    ],
)
def test_bad_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HttpRequestParams.model_validate(params)


# --- secrets ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOTH)
def test_secrets_never_appear_in_results(lab: Lab, name: str) -> None:
    client_secret = lab.client_secrets[name]
    ctx = context(lab.envs[name], "secrets")
    granted = allowed(observe(GRANT, {"scopes": ["orders:read"]}, ctx))
    token = granted.outputs["access_token"]
    assert isinstance(token, Secret)
    # The server echoes a refused scope in its error_description: the probe must not repeat it.
    echoed = f"marker-{secrets.token_hex(6)}"
    refused = observe(GRANT, {"scopes": ["admin:all", echoed]}, context(lab.envs[name], "secrets-2"))
    wrong = Secret(client_secret + "x", "client secret")
    invalid = observe(GRANT, {"client_secret": wrong}, context(lab.envs[name], "secrets-3"))
    used = observe(REQUEST, {"path": "/api/reports", "token": token}, context(lab.envs[name], "secrets-4"))
    for observed in (granted, refused, invalid, used):
        text = repr(observed) + str(getattr(observed, "reason", ""))
        assert client_secret not in text
        assert token.reveal() not in text
        assert echoed not in text
    assert isinstance(refused, Failure) and refused.reason == "invalid scope"


def secret_file(value: str) -> Path:
    path = Path(f"/tmp/pp-http-test-{RUN}-{secrets.token_hex(4)}")
    path.write_text(value)
    path.chmod(0o600)
    return path


# --- mutual TLS -------------------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "1", "-subj", "/CN=parityprobe test ca", cwd=d)  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d


@pytest.fixture(scope="module")
def mtls_server(pki: Path) -> Iterator[OAuthServer]:
    import ssl

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    tls.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    tls.verify_mode = ssl.CERT_REQUIRED
    server = start_oauth_server([], {}, tls=tls)
    yield server
    server.stop()


def test_mutual_tls(pki: Path, mtls_server: OAuthServer) -> None:
    base = {"base_url": mtls_server.url, "ca_cert": str(pki / "ca.pem")}
    with_cert = make_env(
        "mtls",
        {**base, "client_cert": {"cert_file": str(pki / "client.pem"), "key_file": str(pki / "client.key")}},
    )
    observed = observe(REQUEST, {"path": "/status/204"}, context(with_cert, "mtls"))
    assert allowed(observed).outputs == {"status": "204"}
    # Without a client certificate the server refuses the handshake (TLS 1.3: a certificate_required alert,
    # read with the response; the ssl error is under httpx's ReadError).
    without = observe(REQUEST, {"path": "/status/204"}, context(make_env("no-cert", base), "mtls-none"))
    assert without == Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed")
    # An untrusted server (no CA given: certifi's bundle) fails verification.
    untrusted = make_env("untrusted", {"base_url": mtls_server.url})
    observed = observe(REQUEST, {"path": "/status/204"}, context(untrusted, "mtls-untrusted"))
    assert observed == Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed")


def test_missing_client_certificate_file_is_a_harness_error(pki: Path, mtls_server: OAuthServer) -> None:
    env = make_env(
        "bad-cert", {"base_url": mtls_server.url, "client_cert": {"cert_file": str(pki / "nope.pem")}}
    )
    observed = observe(REQUEST, {"path": "/status/204"}, context(env, "bad-cert"))
    assert isinstance(observed, Failure) and observed.error_kind is ErrorKind.HARNESS_ERROR
    assert "nope.pem" in observed.reason
