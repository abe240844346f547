"""Telemetry leaving the process through the real exporters and real sockets: a Prometheus scrape of
``/metrics`` over HTTP, and OTLP over HTTP posted to a collector on loopback. Nothing lands in
prometheus_client's global registry."""

from __future__ import annotations

import gzip
import http.server
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from parityprobe.daemon.records import ScheduleOutcome
from parityprobe.errors import PluginError
from parityprobe.listeners import RunStarted
from parityprobe.model import Observation, Outcome, Run, Tier
from parityprobe.redact import Redactor
from parityprobe.secret import Secret
from parityprobe.spec import EnvironmentFacts, ScenarioSpec
from parityprobe.telemetry.listener import TelemetryListener
from parityprobe.telemetry.providers import PROMETHEUS_CONTENT_TYPE, Telemetry, build_telemetry
from parityprobe.telemetry.settings import TelemetrySettings

SECRET = Secret("prom-leak-check-8d1e0b7a", "token")
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def one_run(listener: TelemetryListener) -> None:
    spec = ScenarioSpec("export", "a" * 64)
    env = EnvironmentFacts("staging", Tier.STAGING)
    started = RunStarted("r9", spec, env, AT)
    obs = Observation(
        "login",
        "vault.approle_login",
        "staging",
        "pp-r9-login",
        Outcome.DENIED,
        AT,
        reason=f"permission denied for {SECRET.reveal()}",
        latency_ms=42.0,
    )
    listener.run_started(started)
    listener.step_finished(started, obs)
    listener.run_finished(Run("r9", spec, env, AT, AT, (obs,)))


@dataclass
class Served:
    url: str
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Served, http.server.BaseHTTPRequestHandler], None]], Served]]:
    """Starts a loopback HTTP server on a free port whose handler is the given function."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handle: Callable[[Served, http.server.BaseHTTPRequestHandler], None]) -> Served:
        served = Served("")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(served, self)

            def do_POST(self) -> None:
                handle(served, self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        served.url = f"http://127.0.0.1:{server.server_address[1]}"
        return served

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def metrics_endpoint(telemetry: Telemetry) -> Callable[[Served, http.server.BaseHTTPRequestHandler], None]:
    """What the daemon's health server does for ``/metrics``."""

    def handle(served: Served, request: http.server.BaseHTTPRequestHandler) -> None:
        body = telemetry.prometheus_text() if request.path == "/metrics" else None
        request.send_response(200 if body is not None else 404)
        request.send_header("Content-Type", PROMETHEUS_CONTENT_TYPE)
        request.end_headers()
        request.wfile.write(body or b"")

    return handle


def test_prometheus_text_scraped_over_http(serve: Callable[..., Served]) -> None:
    settings = TelemetrySettings.model_validate({"metrics": {"exporters": ["prometheus"]}})
    with build_telemetry(settings, {}) as telemetry:
        listener = TelemetryListener(telemetry, Redactor([SECRET]))
        one_run(listener)
        listener.record_schedule_event("staging", "export", ScheduleOutcome.OVER_BUDGET)
        served = serve(metrics_endpoint(telemetry))
        with urllib.request.urlopen(f"{served.url}/metrics", timeout=10) as response:
            content_type = response.headers["Content-Type"]
            text = response.read().decode("utf-8")
    assert content_type == PROMETHEUS_CONTENT_TYPE
    samples = {
        (
            sample.name,
            tuple(sorted((k, v) for k, v in sample.labels.items() if not k.startswith("otel_scope"))),
        ): (sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    step = (
        ("environment", "staging"),
        ("outcome", "denied"),
        ("phase", "step"),
        ("probe", "vault.approle_login"),
    )
    step_labels = tuple(sorted((*step, ("scenario", "export"), ("step", "login"))))
    assert samples[("parityprobe_step_outcomes_total", step_labels)] == 1.0
    assert samples[("parityprobe_step_duration_seconds_count", step_labels)] == 1.0
    assert samples[("parityprobe_step_duration_seconds_sum", step_labels)] == pytest.approx(0.042)
    schedule = (("environment", "staging"), ("kind", "over_budget"), ("scenario", "export"))
    assert samples[("parityprobe_schedule_events_total", schedule)] == 1.0
    assert SECRET.reveal() not in text and "r9" not in text  # no secret, no run id in any label
    # Our registry only: the process-wide one never saw these metrics.
    assert b"parityprobe_step" not in generate_latest(REGISTRY)


def test_two_telemetries_in_one_process_keep_their_own_metrics() -> None:
    settings = TelemetrySettings.model_validate({"metrics": {"exporters": ["prometheus"]}})
    with build_telemetry(settings, {}) as first, build_telemetry(settings, {}) as second:
        TelemetryListener(first, Redactor()).record_schedule_event("staging", "a", ScheduleOutcome.RAN)
        TelemetryListener(second, Redactor()).record_schedule_event("production", "b", ScheduleOutcome.MISSED)
        first_text, second_text = first.prometheus_text() or b"", second.prometheus_text() or b""
    assert b'kind="ran"' in first_text and b"missed" not in first_text
    assert b'kind="missed"' in second_text and b'kind="ran"' not in second_text


def otlp_collector(served: Served, request: http.server.BaseHTTPRequestHandler) -> None:
    length = int(request.headers.get("Content-Length", "0"))
    body = request.rfile.read(length)
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    served.requests.append(
        (request.command, request.path, {k.lower(): v for k, v in request.headers.items()}, body)
    )
    request.send_response(200)
    request.send_header("Content-Type", "application/x-protobuf")
    request.end_headers()


def test_otlp_http_export_reaches_a_collector(
    serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = serve(otlp_collector)
    settings = TelemetrySettings.model_validate(
        {
            "service_name": "pp-test",
            "resource_attributes": {"deployment.environment": "staging"},
            "traces": {
                "exporter": "otlp_http",
                "endpoint": collector.url,
                "headers": {"X-Tenant": "payments"},
            },
            "metrics": {"exporters": ["otlp_http"], "endpoint": collector.url},
        }
    )
    for name in ("OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"):
        monkeypatch.delenv(name, raising=False)  # the exporter reads these itself
    telemetry = build_telemetry(settings, {})
    one_run(TelemetryListener(telemetry, Redactor([SECRET])))
    telemetry.shutdown()  # flushes both signals

    by_path = {path: (method, headers, body) for method, path, headers, body in collector.requests}
    assert set(by_path) == {"/v1/traces", "/v1/metrics"}
    method, headers, body = by_path["/v1/traces"]
    assert method == "POST" and headers["content-type"] == "application/x-protobuf"
    assert headers["x-tenant"] == "payments"
    traces = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = traces.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "pp-test" and resource["deployment.environment"] == "staging"
    spans = {s.name: s for scope in resource_spans.scope_spans for s in scope.spans}
    assert set(spans) == {"run export", "step login"}
    assert spans["step login"].parent_span_id == spans["run export"].span_id
    attributes = {a.key: a.value.string_value for a in spans["step login"].attributes}
    assert attributes["parityprobe.outcome"] == "denied"
    assert attributes["parityprobe.reason"] == "permission denied for ***"
    assert SECRET.reveal().encode() not in body

    _, metric_headers, metric_body = by_path["/v1/metrics"]
    assert metric_headers["content-type"] == "application/x-protobuf"
    names = {
        m.name
        for rm in ExportMetricsServiceRequest.FromString(metric_body).resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert {"parityprobe.step.duration", "parityprobe.step.outcomes"} <= names


def test_a_missing_exporter_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes importing that module fail, as when the package is not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    settings = TelemetrySettings.model_validate({"traces": {"exporter": "otlp_grpc"}})
    with pytest.raises(PluginError, match=r"parityprobe\[telemetry\]"):
        build_telemetry(settings, {})


def test_compare_exports_its_findings_as_the_otel_variables_say(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """``compare`` (like ``run``) has no environments file to read a telemetry section from: the standard
    variables configure it, and the findings it reports are counted at the collector."""
    from click.testing import CliRunner

    from parityprobe.cli import main
    from parityprobe.runner import Runner
    from parityprobe.store import ResultStore
    from tests.plugins import build, registry

    plan = build(
        tmp_path,
        "environments:\n  staging: {}\n  production: {}\n",
        "id: gate\nsteps:\n  - {id: a, probe: test.declare, with: {live: {production: denied}}}\n",
    )
    store_url = f"sqlite:///{tmp_path / 'results.db'}"
    store = ResultStore(store_url)
    for result in Runner(registry(), Redactor()).run(plan):
        for run in result.runs:
            store.write(run)
    store.close()
    collector = serve(otlp_collector)
    environ = {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
    }
    result = CliRunner().invoke(main, ["compare", "--store", store_url, "--format", "json"], env=environ)
    assert result.exit_code == 1, result.output  # the outcome mismatch
    (body,) = [body for _, path, _, body in collector.requests if path == "/v1/metrics"]
    points = {
        (m.name, tuple(sorted((a.key, a.value.string_value) for a in p.attributes)), p.as_int)
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.sum.data_points
    }
    findings = {(attrs, value) for name, attrs, value in points if name == "parityprobe.findings"}
    assert findings == {((("category", "outcome_mismatch"), ("scenario", "gate"), ("severity", "high")), 1)}
