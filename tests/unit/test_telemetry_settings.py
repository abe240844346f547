"""The ``telemetry`` section and the ``OTEL_*`` variables: the file wins field by field, the variables fill
the rest, secret headers reach the redactor, and bad values are located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from parityprobe.config.load import load_environments
from parityprobe.errors import InputError
from parityprobe.redact import Redactor
from parityprobe.secret import Secret
from parityprobe.telemetry.providers import build_telemetry
from parityprobe.telemetry.resolve import TelemetryConfig, resolve
from parityprobe.telemetry.settings import MetricExporter, TelemetrySettings, TraceExporter

TOKEN = "otlp-tenant-token-5f2a9c"


def load(tmp_path: Path, text: str, redactor: Redactor | None = None) -> TelemetrySettings | None:
    path = tmp_path / "environments.yaml"
    path.write_text(text)
    (env,) = load_environments(path, redactor or Redactor()).environments
    return env.section("telemetry", TelemetrySettings)


FULL = """\
environments:
  staging:
    telemetry:
      service_name: pp-staging
      resource_attributes: {deployment.environment: staging, build: 42}
      traces:
        exporter: otlp_http
        endpoint: https://otel.example.com:4318
        headers: {Authorization: {env: PP_OTLP_TOKEN}, x-tenant: payments}
      metrics:
        exporters: [prometheus]
        interval: 15s
"""


def test_the_file_wins_over_the_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_OTLP_TOKEN", f"Bearer {TOKEN}")
    redactor = Redactor()
    settings = load(tmp_path, FULL, redactor)
    environ = {
        "OTEL_SERVICE_NAME": "from-variable",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=elsewhere,team=payments%20core",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
    }
    config = resolve(settings, environ)
    assert config.service_name == "pp-staging"
    assert dict(config.resource_attributes) == {
        "deployment.environment": "staging",
        "team": "payments core",  # the variable fills what the file leaves out
        "build": "42",
        "service.name": "pp-staging",
    }
    assert config.trace_exporter is TraceExporter.OTLP_HTTP
    # The file's base address gets the signal's path, as OTLP over HTTP posts there.
    assert config.traces.endpoint == "https://otel.example.com:4318/v1/traces"
    assert config.traces.plain_headers() == {"authorization": f"Bearer {TOKEN}", "x-tenant": "payments"}
    assert config.metric_exporters == (MetricExporter.PROMETHEUS,)
    assert config.metric_interval == 15.0
    # The header's secret was read by the loader and is known to the redactor.
    assert redactor.redact(f"sent Bearer {TOKEN}") == "sent ***"


def test_the_variables_apply_where_the_file_is_silent(tmp_path: Path) -> None:
    settings = load(tmp_path, "environments:\n  staging:\n    telemetry: {}\n")
    environ = {
        "OTEL_SERVICE_NAME": "from-variable",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,region=eu",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/custom/traces",
        "OTEL_METRICS_EXPORTER": "prometheus,otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{TOKEN},x-scope=a",
        "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "true",
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
    }
    config = resolve(settings, environ)
    assert config.service_name == "from-variable"  # OTEL_SERVICE_NAME wins over service.name in the list
    assert dict(config.resource_attributes) == {"service.name": "from-variable", "region": "eu"}
    assert config.trace_exporter is TraceExporter.OTLP_HTTP
    assert config.traces.endpoint == "http://collector:4318/custom/traces"  # a signal's own URL, as it is
    assert config.metric_exporters == (MetricExporter.PROMETHEUS, MetricExporter.OTLP_GRPC)  # otlp: gRPC
    assert (config.metrics.endpoint, config.metrics.insecure) == ("http://collector:4317", True)
    assert config.metric_interval == 5.0
    # Header values from the variables are secrets: registered, they are masked.
    assert config.traces.plain_headers() == {"authorization": f"Bearer {TOKEN}", "x-scope": "a"}
    redactor = Redactor(config.secrets())
    assert TOKEN not in redactor.redact(f"Bearer {TOKEN}")


def test_generic_endpoint_gets_the_signal_path_over_http_only() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    config = resolve(None, environ)
    assert config.trace_exporter is TraceExporter.OTLP_HTTP
    assert config.traces.endpoint == "http://collector:4318/v1/traces"
    assert config.metrics.endpoint == "http://collector:4318/v1/metrics"
    grpc = resolve(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert (grpc.trace_exporter, grpc.traces.endpoint) == (TraceExporter.OTLP_GRPC, "http://collector:4317")
    assert grpc.metric_exporters == (MetricExporter.OTLP_GRPC,)
    # The SDK's own exporter names are understood too.
    named = resolve(
        None, {"OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_METRICS_EXPORTER": "otlp_proto_grpc"}
    )
    assert (named.trace_exporter, named.metric_exporters) == (
        TraceExporter.OTLP_HTTP,
        (MetricExporter.OTLP_GRPC,),
    )


@pytest.mark.parametrize(
    "environ",
    [
        {},  # nothing named anywhere: nothing exported (the SDK would try localhost)
        {
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
        },
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "prometheus"},
    ],
)
def test_nothing_is_exported_unless_asked(environ: dict[str, str]) -> None:
    config = resolve(None, environ)
    assert (config.trace_exporter, config.metric_exporters, config.prometheus) == (
        TraceExporter.NONE,
        (),
        False,
    )
    assert config.service_name == "parityprobe"
    with build_telemetry(None, environ) as telemetry:
        assert telemetry.prometheus_text() is None


def test_sdk_disabled_gives_way_to_the_file() -> None:
    settings = TelemetrySettings.model_validate({"metrics": {"exporters": ["prometheus"]}})
    config = resolve(settings, {"OTEL_SDK_DISABLED": "true"})
    assert (
        config.metric_exporters == (MetricExporter.PROMETHEUS,)
        and config.trace_exporter is TraceExporter.NONE
    )


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_METRICS_EXPORTER": "prometheus,statsd"}, "OTEL_METRICS_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "soon"}, "OTEL_METRIC_EXPORT_INTERVAL"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "a=b,=c"}, "OTEL_RESOURCE_ATTRIBUTES"),
    ],
)
def test_a_bad_variable_is_an_input_error_naming_it(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(InputError) as caught:
        resolve(None, environ)
    assert [p.field for p in caught.value.problems][:1] == [variable]


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ("      traces: {exporter: zipkin}\n", 4, "exporter"),
        ("      traces:\n        endpoint: collector:4317\n", 5, "endpoint"),
        ("      metrics: {exporters: [otlp_grpc, statsd]}\n", 4, "exporters"),
        ("      metrics:\n        interval: soon\n", 5, "interval"),
        ("      traces: {headers: {authorization: {env: A, file: b}}}\n", 4, "authorization"),
        ("      sampling: 0.5\n", 4, "sampling"),
    ],
)
def test_a_bad_field_is_located(tmp_path: Path, body: str, line: int, field: str) -> None:
    text = "environments:\n  staging:\n    telemetry:\n" + body
    with pytest.raises(InputError) as caught:
        load(tmp_path, text)
    (problem,) = caught.value.problems
    assert problem.file == tmp_path / "environments.yaml"
    assert problem.line == line
    assert field in (problem.field or "")


def test_a_missing_secret_header_is_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PP_OTLP_TOKEN", raising=False)
    with pytest.raises(InputError) as caught:
        load(tmp_path, FULL)
    (problem,) = caught.value.problems
    assert problem.line == 9 and "PP_OTLP_TOKEN" in problem.message


def test_secrets_of_the_config_are_the_secret_headers_only() -> None:
    config = TelemetryConfig()
    assert config.secrets() == []
    with_headers = resolve(None, {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"a={TOKEN}"})
    assert [s.reveal() for s in with_headers.secrets()] == [TOKEN]
    assert all(isinstance(s, Secret) for s in with_headers.secrets())
