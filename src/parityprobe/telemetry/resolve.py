"""What an environment's telemetry is, once its ``telemetry`` section and the standard ``OTEL_*`` variables
are put together: a frozen :class:`TelemetryConfig`.

The file wins over the variables, field by field. The variables read here, as the OpenTelemetry
specification and SDK define them:

``OTEL_SDK_DISABLED``
    ``true``: nothing exported (unless the file names exporters).
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``
    ``key=value,…`` (values URL-decoded); ``OTEL_SERVICE_NAME`` wins over a ``service.name`` there.
``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER``
    ``otlp``, ``otlp_proto_grpc``, ``otlp_proto_http``, ``console``, ``none``; metrics also ``prometheus``
    and a comma-separated list. ``otlp`` means gRPC unless ``OTEL_EXPORTER_OTLP[_TRACES|_METRICS]_PROTOCOL``
    says ``http/protobuf`` (as the Python SDK does).
``OTEL_EXPORTER_OTLP[_TRACES|_METRICS]_ENDPOINT``, ``…_HEADERS``, ``…_INSECURE``
    For OTLP over HTTP the generic endpoint gets ``/v1/traces`` or ``/v1/metrics`` added, a signal's own
    endpoint is used as it is. Header values are treated as secrets (they usually carry a token).
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_METRIC_EXPORT_TIMEOUT``
    Milliseconds.

One deliberate difference from the SDK's defaults: with no exporter and no endpoint named anywhere, nothing is
exported (the SDK would try a collector on localhost). Whatever else an exporter reads from the process
environment (certificates, compression) it still reads itself.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from parityprobe.config.secretref import SecretRef
from parityprobe.errors import InputError, Problem
from parityprobe.secret import Secret
from parityprobe.telemetry.settings import (
    MetricExporter,
    MetricsSettings,
    TelemetrySettings,
    TraceExporter,
    TracesSettings,
)

DEFAULT_SERVICE_NAME = "parityprobe"
DEFAULT_METRIC_INTERVAL = 60.0
DEFAULT_METRIC_TIMEOUT = 30.0
# The Python SDK's own names for the two OTLP exporters.
_SDK_NAMES = {"otlp_proto_grpc": "otlp_grpc", "otlp_proto_http": "otlp_http"}
_PROTOCOLS = {"grpc": "grpc", "http/protobuf": "http"}
_NO_HEADERS: Mapping[str, str | Secret] = MappingProxyType({})


@dataclass(frozen=True)
class OtlpTarget:
    """Where one signal's OTLP exports go. ``endpoint`` None: the exporter's own default; ``headers`` values
    are :class:`Secret` where they may carry a credential; ``insecure`` None: from the endpoint's scheme."""

    endpoint: str | None = None
    headers: Mapping[str, str | Secret] = field(default_factory=lambda: _NO_HEADERS)
    insecure: bool | None = None
    timeout: float | None = None

    def plain_headers(self) -> dict[str, str]:
        """The headers as the exporter sends them (secrets revealed: for the exporter only)."""
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.headers.items()}


@dataclass(frozen=True)
class TelemetryConfig:
    """An environment's telemetry, resolved: nothing here is read again from the file or the variables."""

    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    trace_exporter: TraceExporter = TraceExporter.NONE
    traces: OtlpTarget = field(default_factory=OtlpTarget)
    metric_exporters: tuple[MetricExporter, ...] = ()
    metrics: OtlpTarget = field(default_factory=OtlpTarget)
    metric_interval: float = DEFAULT_METRIC_INTERVAL
    metric_timeout: float = DEFAULT_METRIC_TIMEOUT

    @property
    def prometheus(self) -> bool:
        return MetricExporter.PROMETHEUS in self.metric_exporters

    def secrets(self) -> list[Secret]:
        """Every secret header value, for the redactor."""
        return [v for t in (self.traces, self.metrics) for v in t.headers.values() if isinstance(v, Secret)]


def resolve(settings: TelemetrySettings | None, environ: Mapping[str, str]) -> TelemetryConfig:
    """The telemetry of an environment with this section (None: none) in this process environment.

    InputError naming the variable when one holds a value parityprobe cannot use. The section's secret
    references must have been read (the environments loader does it).
    """
    settings = settings or TelemetrySettings()
    env = _Env(environ)
    attributes = env.resource_attributes()
    service = (
        settings.service_name
        or env.get("OTEL_SERVICE_NAME")
        or attributes.get("service.name")
        or DEFAULT_SERVICE_NAME
    )
    attributes.update(settings.resource_attributes)
    attributes["service.name"] = service
    disabled = (env.get("OTEL_SDK_DISABLED") or "").lower() == "true"
    trace_exporter = settings.traces.exporter or _trace_exporter(env, disabled, settings.traces.endpoint)
    metric_exporters = settings.metrics.exporters
    if metric_exporters is None:
        metric_exporters = _metric_exporters(env, disabled, settings.metrics.endpoint)
    traces = _target(settings.traces, env, "TRACES", "v1/traces", trace_exporter is TraceExporter.OTLP_HTTP)
    metrics = _target(
        settings.metrics, env, "METRICS", "v1/metrics", MetricExporter.OTLP_HTTP in metric_exporters
    )
    interval, timeout = settings.metrics.interval, settings.metrics.timeout
    config = TelemetryConfig(
        service_name=service,
        resource_attributes=MappingProxyType(attributes),
        trace_exporter=trace_exporter,
        traces=traces,
        metric_exporters=tuple(dict.fromkeys(metric_exporters)),
        metrics=metrics,
        metric_interval=(
            float(interval)
            if interval is not None
            else env.millis("OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_METRIC_INTERVAL)
        ),
        metric_timeout=(
            float(timeout)
            if timeout is not None
            else env.millis("OTEL_METRIC_EXPORT_TIMEOUT", DEFAULT_METRIC_TIMEOUT)
        ),
    )
    env.raise_problems()
    return config


def _trace_exporter(env: _Env, disabled: bool, endpoint: str | None) -> TraceExporter:
    """The trace exporter the variables name; with none named, OTLP when an endpoint is known."""
    names = env.exporter_names("OTEL_TRACES_EXPORTER", "TRACES")
    if disabled or (env.get("OTEL_TRACES_EXPORTER") is not None and not names):
        return TraceExporter.NONE
    if len(names) > 1:
        env.problem("OTEL_TRACES_EXPORTER", "parityprobe sends traces to one exporter: name one")
    if names:
        if names[0] in _values(TraceExporter):
            return TraceExporter(names[0])
        env.problem("OTEL_TRACES_EXPORTER", f"{names[0]!r} is not a trace exporter parityprobe has")
        return TraceExporter.NONE
    if endpoint or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return TraceExporter.OTLP_HTTP if env.protocol("TRACES") == "http" else TraceExporter.OTLP_GRPC
    return TraceExporter.NONE


def _metric_exporters(env: _Env, disabled: bool, endpoint: str | None) -> list[MetricExporter]:
    """The metric exporters the variables name; with none named, OTLP when an endpoint is known."""
    names = env.exporter_names("OTEL_METRICS_EXPORTER", "METRICS")
    if disabled or (env.get("OTEL_METRICS_EXPORTER") is not None and not names):
        return []
    if names:
        known = _values(MetricExporter)
        for name in names:
            if name not in known:
                env.problem("OTEL_METRICS_EXPORTER", f"{name!r} is not a metric exporter parityprobe has")
        return [MetricExporter(name) for name in names if name in known]
    if endpoint or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return [MetricExporter.OTLP_HTTP if env.protocol("METRICS") == "http" else MetricExporter.OTLP_GRPC]
    return []


def _target(
    section: TracesSettings | MetricsSettings, env: _Env, signal: str, path: str, http: bool
) -> OtlpTarget:
    """One signal's OTLP destination: the file's fields, else the signal's variables, else the generic ones.

    OTLP over HTTP posts to the signal's path, added to a base address (the file's when it has no path of
    its own, or the generic variable's); a signal's own variable is the whole URL already.
    """
    headers: dict[str, str | Secret] = dict(env.headers(signal))
    for name, value in section.headers.items():
        headers[name.lower()] = value.secret() if isinstance(value, SecretRef) else value
    insecure = section.insecure
    if insecure is None:
        insecure = env.flag(f"OTEL_EXPORTER_OTLP_{signal}_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")
    endpoint = section.endpoint
    if endpoint is not None:
        if http and urllib.parse.urlsplit(endpoint).path in ("", "/"):
            endpoint = f"{endpoint.rstrip('/')}/{path}"
    elif (own := env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")) is not None:
        endpoint = own
    elif (generic := env.get("OTEL_EXPORTER_OTLP_ENDPOINT")) is not None:
        endpoint = f"{generic.rstrip('/')}/{path}" if http else generic
    timeout = float(section.timeout) if section.timeout is not None else None
    return OtlpTarget(endpoint, MappingProxyType(headers), insecure, timeout)


def _values(kind: type[TraceExporter] | type[MetricExporter]) -> frozenset[str]:
    return frozenset(member.value for member in kind)


class _Env:
    """The process environment as telemetry reads it, collecting every problem before raising them."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Problem] = []

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or default

    def problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(None, None, name, message))

    def raise_problems(self) -> None:
        if self.problems:
            raise InputError(self.problems)

    def protocol(self, signal: str) -> str:
        name = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
        if self.get(name) is None:
            name = "OTEL_EXPORTER_OTLP_PROTOCOL"
        value = self.get(name, "grpc") or "grpc"
        if value not in _PROTOCOLS:
            self.problem(name, f"{value!r} is not an OTLP protocol parityprobe speaks (grpc, http/protobuf)")
            return "grpc"
        return _PROTOCOLS[value]

    def exporter_names(self, name: str, signal: str) -> list[str]:
        """The variable's exporters as this module names them (``otlp`` resolved by protocol); ``none``
        and empty give none."""
        names = [n.strip().lower() for n in (self.get(name) or "").split(",") if n.strip()]
        if names == ["none"]:
            return []
        if "otlp" in names:
            otlp = "otlp_http" if self.protocol(signal) == "http" else "otlp_grpc"
            names = [otlp if n == "otlp" else n for n in names]
        return [_SDK_NAMES.get(n, n) for n in names]

    def headers(self, signal: str) -> dict[str, str | Secret]:
        raw = self.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS") or self.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
        found: dict[str, str | Secret] = {}
        for item in raw.split(","):
            if not item.strip():
                continue
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                self.problem(
                    f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "expected name=value pairs, comma-separated"
                )
                continue
            key = urllib.parse.unquote(name.strip()).lower()
            found[key] = Secret(urllib.parse.unquote(value.strip()), f"OTLP header {key}")
        return found

    def flag(self, *names: str) -> bool | None:
        for name in names:
            value = self.get(name)
            if value is not None:
                return value.lower() == "true"
        return None

    def millis(self, name: str, default: float) -> float:
        """Seconds, from a variable in milliseconds."""
        value = self.get(name)
        if value is None:
            return default
        try:
            seconds = float(value) / 1000
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            self.problem(name, f"expected a positive number of milliseconds, not {value!r}")
            return default
        return seconds

    def resource_attributes(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for item in (self.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                self.problem("OTEL_RESOURCE_ATTRIBUTES", "expected key=value pairs, comma-separated")
                continue
            found[key.strip()] = urllib.parse.unquote(value.strip())
        return found
