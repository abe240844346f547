"""k8s.can_i and k8s.request against the Kubernetes contract server (tests/k8s_contract_server.py), over
real TLS on loopback: one server per environment, each with its own CA.

The planted gap: staging's service account may read Secrets in ``payments``, production's may not; and
staging's SelfSubjectAccessReview answers declare it may not either (a binding the declared permissions do
not show), so ``crosscheck: can_i`` finds a declared mismatch there.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from parityprobe.config.environments import Environment
from parityprobe.model import Effect, ErrorKind, Outcome
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.k8s.can_i import CanI
from parityprobe.probes.k8s.client import server_version
from parityprobe.probes.k8s.paths import ResourceAttributes, attributes_for
from parityprobe.probes.k8s.request import K8sRequest
from parityprobe.probes.k8s.settings import K8sSettings
from tests.k8s_contract_server import (
    SSAR,
    Account,
    ContractServer,
    Fault,
    Pki,
    Rule,
    make_pki,
    start_contract_server,
)
from tests.probe_support import environment, observe, probe_context

RUN = secrets.token_hex(4)
CAN_I, REQUEST = CanI(), K8sRequest()
USER = "system:serviceaccount:payments:parityprobe"
SECRETS = "/api/v1/namespaces/payments/secrets"
PODS = "/api/v1/namespaces/payments/pods"
READ_PODS = Rule(("get", "list"), ("pods", "pods/log"), ("payments",))
READ_SECRETS = Rule(("get", "list"), ("secrets",), ("payments",))
WRITE_CONFIGMAPS = Rule(("create", "patch", "update", "delete"), ("configmaps",), ("payments",))


@dataclass(frozen=True)
class Lab:
    staging: ContractServer
    production: ContractServer
    pki: dict[str, Pki]
    tokens: dict[str, str]
    directory: Path

    def server(self, name: str) -> ContractServer:
        return self.staging if name == "staging" else self.production


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("k8s")
    pki = {name: make_pki(directory, name) for name in ("staging", "production")}
    tokens = {name: f"k8s-{name}-" + secrets.token_urlsafe(24) for name in ("staging", "production")}
    staging = start_contract_server(
        pki["staging"],
        [
            Account(
                tokens["staging"],
                USER,
                rules=(READ_PODS, READ_SECRETS, WRITE_CONFIGMAPS),
                declared=(READ_PODS, WRITE_CONFIGMAPS),
            )
        ],
    )
    production = start_contract_server(
        pki["production"],
        [
            Account(tokens["production"], USER, rules=(READ_PODS,)),
            Account("deny-" + tokens["production"], USER, deny_outright=True),
            Account("mute-" + tokens["production"], USER, may_review=False),
        ],
        git_version="v1.29.6",
    )
    for server in (staging, production):
        server.put("payments", "pods", "web-0", spec={"containers": [{"name": "web"}]})
        server.put("payments", "secrets", "db", data={"password": base64.b64encode(b"hunter22").decode()})
    yield Lab(staging, production, pki, tokens, directory)
    staging.stop()
    production.stop()


BOTH = ["staging", "production"]


def explicit(
    lab: Lab, name: str, *, token: str | None = None, url: str | None = None, **extra: Any
) -> Environment:
    """An environment reaching ``name``'s server: ``api_server``, ``token`` (a file) and ``ca_bundle``."""
    token_file = lab.directory / f"token-{secrets.token_hex(4)}"
    token_file.write_text(token if token is not None else lab.tokens[name])
    settings = {
        "api_server": url or lab.server(name).url,
        "ca_bundle": str(lab.pki[name].ca_cert),
        "token": {"file": str(token_file)},
    }
    env = environment({"name": name, "k8s": settings, **extra})
    section = env.section("k8s", K8sSettings)
    assert section is not None and section.token is not None
    section.token.resolve(Path.cwd(), "token")
    return env


def observed(
    env: Environment, probe: CanI | K8sRequest, step: str, seconds: float = 10, **params: Any
) -> ProbeResult | Failure:
    return observe(probe, params, probe_context(env, step, seconds=seconds, run=RUN))


def allowed(result: ProbeResult | Failure) -> ProbeResult:
    assert isinstance(result, ProbeResult) and result.outcome is Outcome.ALLOWED, result
    return result


# --- k8s.can_i --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOTH)
def test_can_i_allowed_reports_the_identity(lab: Lab, name: str) -> None:
    result = allowed(
        observed(
            explicit(lab, name), CAN_I, "can-list-pods", verb="list", resource="pods", namespace="payments"
        )
    )
    assert result.grant.identity == USER
    asked = [s for s in lab.server(name).requests_with(f"pp-{RUN}-can-list-pods") if s.path == SSAR]
    assert [s.body["spec"]["resourceAttributes"] for s in asked] == [
        {"namespace": "payments", "verb": "list", "group": "", "resource": "pods"}
    ]


@pytest.mark.parametrize("name", BOTH)
def test_can_i_denied(lab: Lab, name: str) -> None:
    result = observed(
        explicit(lab, name), CAN_I, "can-delete-pods", verb="delete", resource="pods", namespace="payments"
    )
    assert isinstance(result, ProbeResult)
    assert (result.outcome, result.reason) == (Outcome.DENIED, "no rule allows it")
    assert result.grant.identity == USER


def test_can_i_denied_outright_by_an_authorizer(lab: Lab) -> None:
    env = explicit(lab, "production", token="deny-" + lab.tokens["production"])
    result = observed(env, CAN_I, "can-outright", verb="get", resource="pods", namespace="payments")
    assert isinstance(result, ProbeResult) and (result.outcome, result.reason) == (
        Outcome.DENIED,
        "denied by an authorizer",
    )


def test_an_identity_that_may_not_ask_is_a_harness_error_never_a_denial(lab: Lab) -> None:
    env = explicit(lab, "production", token="mute-" + lab.tokens["production"])
    result = observed(env, CAN_I, "can-not-ask", verb="get", resource="pods", namespace="payments")
    assert isinstance(result, Failure) and result.error_kind is ErrorKind.HARNESS_ERROR
    assert "may not create SelfSubjectAccessReviews" in result.reason


def test_can_i_with_a_refused_token_is_unauthorized(lab: Lab) -> None:
    env = explicit(lab, "staging", token="not-a-valid-token-" + secrets.token_hex(8))
    assert observed(env, CAN_I, "can-bad-token", verb="list", resource="pods") == Failure(
        Outcome.DENIED, "unauthorized"
    )


def test_the_correlation_id_travels_as_audit_id_and_in_the_user_agent(lab: Lab) -> None:
    allowed(observed(explicit(lab, "staging"), REQUEST, "correlated", path=PODS))
    seen = [s for s in lab.staging.seen if s.path == PODS and s.audit_id == f"pp-{RUN}-correlated"]
    assert len(seen) == 1 and seen[0].bearer
    assert seen[0].user_agent is not None and seen[0].user_agent.endswith(f"(pp-{RUN}-correlated)")


# --- k8s.request ------------------------------------------------------------------------------------------


def test_request_allowed_lists_and_gets(lab: Lab) -> None:
    env = explicit(lab, "staging")
    listed = allowed(observed(env, REQUEST, "list-secrets", path=SECRETS))
    assert listed.outputs == {"status": "200"} and listed.grant.identity == USER
    allowed(observed(env, REQUEST, "get-secret", method="get", path=f"{SECRETS}/db"))
    allowed(observed(env, REQUEST, "head-pod", method="HEAD", path=f"{PODS}/web-0"))


def test_request_forbidden_where_rbac_refuses(lab: Lab) -> None:
    assert observed(explicit(lab, "production"), REQUEST, "list-secrets", path=SECRETS) == Failure(
        Outcome.DENIED, "forbidden"
    )


def test_request_not_found(lab: Lab) -> None:
    result = observed(explicit(lab, "staging"), REQUEST, "get-missing", path=f"{SECRETS}/nothing-here")
    assert result == Failure(Outcome.NOT_FOUND, "not found")


def test_request_with_a_wrong_token_is_unauthorized(lab: Lab) -> None:
    env = explicit(lab, "production", token="wrong-" + secrets.token_hex(12))
    assert observed(env, REQUEST, "wrong-token", path=PODS) == Failure(Outcome.DENIED, "unauthorized")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(429, retry_after=3), Failure.error(ErrorKind.THROTTLED, "throttled: retry after 3s")),
        (Fault(429), Failure.error(ErrorKind.THROTTLED, "throttled")),
        (Fault(500), Failure.error(ErrorKind.TARGET_ERROR, "server error 500")),
        (Fault(503, retry_after=1), Failure.error(ErrorKind.TARGET_ERROR, "server error 503")),
    ],
)
def test_request_faults_are_errors(lab: Lab, fault: Fault, expected: Failure) -> None:
    path = f"/api/v1/namespaces/faulty-{secrets.token_hex(3)}/pods"
    lab.staging.faults[path] = fault
    assert observed(explicit(lab, "staging"), REQUEST, "fault", path=path) == expected


def test_request_slower_than_the_step_deadline_times_out(lab: Lab) -> None:
    path = "/api/v1/namespaces/slow/pods"
    lab.staging.faults[path] = Fault(delay=2.0)
    assert observed(explicit(lab, "staging"), REQUEST, "slow", seconds=0.5, path=path) == Failure.error(
        ErrorKind.TIMEOUT, "timed out"
    )


def test_unreachable_api_server(lab: Lab, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = explicit(lab, "staging", url=f"https://127.0.0.1:{port}")
    assert observed(env, REQUEST, "unreachable", path=PODS) == Failure.error(
        ErrorKind.UNREACHABLE, "connection failed"
    )


def test_a_server_certificate_from_another_ca_is_not_trusted(lab: Lab) -> None:
    env = explicit(lab, "staging", url=lab.production.url)  # staging's CA, production's certificate
    assert observed(env, REQUEST, "wrong-ca", path=PODS) == Failure.error(
        ErrorKind.TARGET_ERROR, "server certificate not trusted"
    )


def test_identity_unknown_on_a_server_without_self_subject_review(lab: Lab) -> None:
    lab.production.self_subject_review = False
    try:
        result = allowed(observed(explicit(lab, "production"), REQUEST, "old-server", path=PODS))
    finally:
        lab.production.self_subject_review = True
    assert result.grant.identity is None


def test_writes_run_only_where_allowed_and_patch_is_a_merge_patch(lab: Lab) -> None:
    path = "/api/v1/namespaces/payments/configmaps"
    body = {"metadata": {"name": "probe"}, "data": {"k": "v"}}
    refused = observed(explicit(lab, "staging"), REQUEST, "create-ro", method="POST", path=path, body=body)
    assert isinstance(refused, Failure) and refused.error_kind is ErrorKind.HARNESS_ERROR
    assert not [s for s in lab.staging.seen if s.audit_id == f"pp-{RUN}-create-ro" and s.path == path]
    writable = explicit(lab, "staging", safety={"allow_effects": ["read", "write"]})
    created = allowed(observed(writable, REQUEST, "create", method="POST", path=path, body=body))
    assert created.outputs == {"status": "201"}
    allowed(
        observed(writable, REQUEST, "patch", method="PATCH", path=f"{path}/probe", body={"data": {"k": "w"}})
    )
    patched = [s for s in lab.staging.seen if s.audit_id == f"pp-{RUN}-patch" and s.method == "PATCH"]
    assert [s.content_type for s in patched] == ["application/merge-patch+json"]
    allowed(observed(writable, REQUEST, "delete", method="DELETE", path=f"{path}/probe"))
    assert K8sRequest.effect_for({"method": "get"}) is Effect.READ
    assert K8sRequest.effect_for({}) is Effect.READ
    assert K8sRequest.effect_for({"method": "DELETE"}) is Effect.WRITE
    assert K8sRequest.effect_for({"method": "${{ vars.method }}"}) is Effect.WRITE


# --- the declared decision for a request ------------------------------------------------------------------


def test_declared_decision_for_the_same_request(lab: Lab) -> None:
    env = explicit(lab, "staging")
    params = K8sRequest.Params.model_validate({"path": SECRETS})
    ctx = probe_context(env, "declared-secrets", run=RUN)
    assert REQUEST.declared(params, ctx).outcome is Outcome.DENIED  # though the live request is allowed
    pods = K8sRequest.Params.model_validate({"path": f"{PODS}/web-0/log"})
    assert REQUEST.declared(pods, probe_context(env, "declared-log", run=RUN)).outcome is Outcome.ALLOWED
    asked = [
        s.body["spec"]["resourceAttributes"] for s in lab.staging.requests_with(f"pp-{RUN}-declared-log")
    ]
    assert asked == [
        {
            "namespace": "payments",
            "verb": "get",
            "group": "",
            "version": "v1",
            "resource": "pods",
            "subresource": "log",
            "name": "web-0",
        }
    ]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", SECRETS, ResourceAttributes("list", "secrets", "", "v1", "payments")),
        (
            "GET",
            f"{SECRETS}/db?resourceVersion=0",
            ResourceAttributes("get", "secrets", "", "v1", "payments", "db"),
        ),
        ("HEAD", "/api/v1/nodes", ResourceAttributes("list", "nodes", "", "v1")),
        (
            "POST",
            "/apis/apps/v1/namespaces/shop/deployments",
            ResourceAttributes("create", "deployments", "apps", "v1", "shop"),
        ),
        (
            "PUT",
            "/apis/apps/v1/namespaces/shop/deployments/web/scale",
            ResourceAttributes("update", "deployments", "apps", "v1", "shop", "web", "scale"),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/shop",
            ResourceAttributes("patch", "namespaces", "", "v1", "shop", "shop"),
        ),
        (
            "PUT",
            "/api/v1/namespaces/shop/finalize",
            ResourceAttributes("update", "namespaces", "", "v1", "shop", "shop", "finalize"),
        ),
        ("DELETE", f"{PODS}/web-0", ResourceAttributes("delete", "pods", "", "v1", "payments", "web-0")),
        ("DELETE", PODS, ResourceAttributes("deletecollection", "pods", "", "v1", "payments")),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user",
            ResourceAttributes(
                "get", "clusterroles", "rbac.authorization.k8s.io", "v1", "", "system:basic-user"
            ),
        ),
    ],
)
def test_requests_read_as_the_authorizer_reads_them(
    method: str, path: str, expected: ResourceAttributes
) -> None:
    assert attributes_for(method, path) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"path": "/healthz"},
        {"path": "/api/v1"},
        {"path": "/apis/apps/v1"},
        {"path": "api/v1/pods"},
        {"path": "/api/v1/namespaces/payments/pods?watch=true"},
        {"path": "/api/v1/namespaces/payments/pods/web-0/log?follow=1"},
        {"path": "/api/v1/namespaces/../secrets"},
        {"path": "/api/v1//pods"},
        {"path": "/api/v1/pods/a%2Fb"},
        {"path": "/api/v1/namespaces/payments/pods/web-0/proxy/extra"},
        {"path": PODS, "body": {"x": 1}},
        {"path": PODS, "method": "OPTIONS"},
    ],
)
def test_bad_request_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        K8sRequest.Params.model_validate(params)


@pytest.mark.parametrize(
    "params",
    [
        {"verb": "List", "resource": "pods"},
        {"verb": "get pods", "resource": "pods"},
        {"verb": "get", "resource": ""},
        {"verb": "get", "resource": "pods", "namespace": "a/b"},
        {"verb": "get", "resource": "pods", "token": "x"},
    ],
)
def test_bad_can_i_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CanI.Params.model_validate(params)


def test_server_version(lab: Lab) -> None:
    versions = {name: server_version(probe_context(explicit(lab, name), "version")) for name in BOTH}
    assert versions == {"staging": "Kubernetes v1.30.2", "production": "Kubernetes v1.29.6"}
    # The section's hook, as runs ask it, says the same.
    env = explicit(lab, "production")
    section = env.section("k8s", K8sSettings)
    assert section is not None
    assert section.server_version(probe_context(env, "version-hook")) == "Kubernetes v1.29.6"


# --- the other two ways: kubeconfig and in-cluster --------------------------------------------------------


def write_kubeconfig(
    lab: Lab, path: Path, user: dict[str, Any], *, inline_ca: bool = False, context: str = "staging"
) -> Path:
    pki = lab.pki["staging"]
    cluster: dict[str, Any] = {"server": lab.staging.url}
    if inline_ca:
        cluster["certificate-authority-data"] = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    else:
        cluster["certificate-authority"] = os.path.relpath(pki.ca_cert, path.parent)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "other",
        "clusters": [{"name": "stg", "cluster": cluster}],
        "users": [{"name": "probe", "user": user}],
        "contexts": [
            {"name": context, "context": {"cluster": "stg", "user": "probe", "namespace": "payments"}}
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def kubeconfig_env(path: Path, context: str | None = "staging") -> Environment:
    settings: dict[str, Any] = {"kubeconfig": str(path)}
    if context is not None:
        settings["context"] = context
    env = environment({"name": "staging", "k8s": settings})
    section = env.section("k8s", K8sSettings)
    assert section is not None and section.kubeconfig is not None
    section.kubeconfig.resolve(path.parent, "kubeconfig")
    return env


@pytest.mark.parametrize("inline_ca", [False, True])
def test_kubeconfig_with_a_token(lab: Lab, tmp_path: Path, inline_ca: bool) -> None:
    path = write_kubeconfig(lab, tmp_path / "config", {"token": lab.tokens["staging"]}, inline_ca=inline_ca)
    env = kubeconfig_env(path)
    result = allowed(
        observed(env, CAN_I, "kubeconfig-token", verb="list", resource="pods", namespace="payments")
    )
    assert result.grant.identity == USER


def test_kubeconfig_with_a_token_file(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "sa-token").write_text(lab.tokens["staging"] + "\n")
    path = write_kubeconfig(lab, tmp_path / "config", {"tokenFile": "sa-token"})
    allowed(observed(kubeconfig_env(path), REQUEST, "kubeconfig-token-file", path=SECRETS))


@pytest.mark.parametrize(
    ("user", "context", "message"),
    [
        ({"token": "x" * 20}, "production", "no context named 'production'"),
        ({"token": "x" * 20}, None, "no context named 'other'"),
        ({"exec": {"command": "aws"}}, "staging", "exec credential plugins (exec) are not supported"),
        ({"client-certificate-data": "Zm9v", "client-key-data": "YmFy"}, "staging", "client certificates"),
        ({}, "staging", "neither a token nor a tokenFile"),
        ({"tokenFile": "missing-token"}, "staging", "cannot read secret file"),
    ],
)
def test_kubeconfig_problems_are_refused(
    lab: Lab, tmp_path: Path, user: dict[str, Any], context: str | None, message: str
) -> None:
    path = write_kubeconfig(lab, tmp_path / "config", user)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        kubeconfig_env(path, context)
    assert "x" * 20 not in str(caught.value)


def test_in_cluster_service_account(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(lab.tokens["production"])
    (account / "ca.crt").write_bytes(lab.pki["production"].ca_cert.read_bytes())
    (account / "namespace").write_text("payments")
    settings = {"in_cluster": True, "service_account_dir": str(account)}
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    outside = observed(environment({"name": "production", "k8s": settings}), REQUEST, "not-in-pod", path=PODS)
    assert isinstance(outside, Failure) and outside.error_kind is ErrorKind.HARNESS_ERROR
    assert "KUBERNETES_SERVICE_HOST" in outside.reason
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(lab.production.port))
    env = environment({"name": "production", "k8s": settings})
    result = allowed(observed(env, REQUEST, "in-cluster", path=PODS))
    assert result.grant.identity == USER
    assert observed(env, REQUEST, "in-cluster-secrets", path=SECRETS) == Failure(Outcome.DENIED, "forbidden")


# --- through the command line -----------------------------------------------------------------------------

SCENARIO = """\
id: k8s-secrets
description: The payments service account reads its pods, never Secrets.
steps:
  - id: list-pods
    probe: k8s.request
    with: {path: "/api/v1/namespaces/${{ vars.namespace }}/pods"}
    crosscheck: can_i
    expect: {outcome: allowed}
  - id: list-secrets
    probe: k8s.request
    with: {path: "/api/v1/namespaces/${{ vars.namespace }}/secrets"}
    crosscheck: can_i
  - id: can-read-secrets
    probe: k8s.can_i
    with: {verb: get, resource: secrets, namespace: "${{ vars.namespace }}"}
"""


def cli(cwd: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parityprobe", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_run_finds_the_declared_mismatch_and_leaks_no_token(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "staging-token").write_text(lab.tokens["staging"])
    write_kubeconfig(lab, tmp_path / "kubeconfig", {"tokenFile": "staging-token"})
    environments = {
        "environments": {
            "staging": {
                "k8s": {"kubeconfig": "kubeconfig", "context": "staging"},
                "vars": {"namespace": "payments"},
            },
            "production": {
                "k8s": {
                    "api_server": lab.production.url,
                    "ca_bundle": str(lab.pki["production"].ca_cert),
                    "token": {"env": "PP_TEST_K8S_PRODUCTION_TOKEN"},
                },
                "vars": {"namespace": "payments"},
            },
        }
    }
    (tmp_path / "environments.yaml").write_text(yaml.safe_dump(environments))
    (tmp_path / "k8s-secrets.yaml").write_text(SCENARIO)
    token_env = {"PP_TEST_K8S_PRODUCTION_TOKEN": lab.tokens["production"]}
    result = cli(
        tmp_path,
        "run",
        "-q",
        "--format",
        "json",
        "-e",
        "environments.yaml",
        "k8s-secrets.yaml",
        env=token_env,
    )
    assert result.returncode == 1, result.stderr
    for token in lab.tokens.values():
        assert token not in result.stdout and token not in result.stderr
    report = json.loads(result.stdout)
    found = {(f["category"], f["step"]) for f in report["findings"]}
    # Staging lists Secrets although its declared permissions refuse it; production refuses, as declared.
    assert ("declared_mismatch", "list-secrets") in found
    assert ("outcome_mismatch", "list-secrets") in found
    assert not any(step == "list-pods" for _, step in found)
    assert not any(step == "can-read-secrets" for _, step in found)
    # The two API servers' versions differ: configuration drift, each environment's version side by side.
    drift = [f for f in report["findings"] if f["category"] == "config_drift"]
    assert [f["environments"] for f in drift] == [
        {"staging": "Kubernetes v1.30.2", "production": "Kubernetes v1.29.6"}
    ]
    mismatch = next(f for f in report["findings"] if f["category"] == "declared_mismatch")
    assert mismatch["environments"]["staging"].startswith("allowed")
    observations = {(run["environment"], o["step"]): o for run in report["runs"] for o in run["observations"]}
    assert observations["staging", "list-secrets"]["declared"] == "denied"
    assert observations["production", "list-secrets"]["declared"] == "denied"
    assert observations["production", "list-secrets"]["reason"] == "forbidden"
    assert observations["staging", "list-pods"]["grant"]["identity"] == USER
    assert observations["staging", "list-secrets"]["target"] == "/api/v1/namespaces/payments/secrets"


@pytest.mark.parametrize(
    ("k8s", "message"),
    [
        (
            {"in_cluster": True, "api_server": "https://127.0.0.1:6443", "token": {"env": "X"}},
            "exactly one way",
        ),
        ({"kubeconfig": "kubeconfig", "context": "nowhere"}, "no context named 'nowhere'"),
        ({"api_server": "http://127.0.0.1:6443", "token": {"env": "X"}}, "https://"),
        ({"api_server": "https://127.0.0.1:6443"}, "needs a 'token'"),
        ({"in_cluster": True, "context": "staging"}, "give 'kubeconfig' too"),
        ({"api_server": "https://127.0.0.1:6443", "token": "literal-token-value"}, "never a literal value"),
    ],
)
def test_a_bad_section_is_a_located_error(
    lab: Lab, tmp_path: Path, k8s: dict[str, Any], message: str
) -> None:
    write_kubeconfig(lab, tmp_path / "kubeconfig", {"token": lab.tokens["staging"]})
    text = f"environments:\n  staging:\n    vars: {{namespace: payments}}\n    k8s: {json.dumps(k8s)}\n"
    (tmp_path / "environments.yaml").write_text(text)
    (tmp_path / "k8s-secrets.yaml").write_text(SCENARIO)
    result = cli(tmp_path, "validate", "-e", "environments.yaml", "k8s-secrets.yaml")
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "environments.yaml:4" in output and message in output
    assert lab.tokens["staging"] not in output
