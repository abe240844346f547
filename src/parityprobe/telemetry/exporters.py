"""The exporters a :class:`~parityprobe.telemetry.resolve.TelemetryConfig` names, built from it.

Each exporter's package is imported only here and only when a configuration names it, so ``parityprobe``
starts as fast without them; a missing one is a :class:`~parityprobe.errors.PluginError` naming the extra
that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from parityprobe.errors import PluginError
from parityprobe.telemetry.resolve import TelemetryConfig
from parityprobe.telemetry.settings import MetricExporter, TraceExporter

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter
    from prometheus_client import CollectorRegistry

_EXTRA = "pip install 'parityprobe[telemetry]'"
_SPAN_MODULES = {
    TraceExporter.OTLP_GRPC: ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "otlp_grpc"),
    TraceExporter.OTLP_HTTP: ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "otlp_http"),
}
_METRIC_MODULES = {
    MetricExporter.OTLP_GRPC: ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "otlp_grpc"),
    MetricExporter.OTLP_HTTP: ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "otlp_http"),
}


def _module(name: str, exporter: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PluginError(
            f"the {exporter} telemetry exporter needs a package that is not installed "
            f"({exc.name or name}): {_EXTRA}"
        ) from None


def span_exporter(config: TelemetryConfig) -> SpanExporter | None:
    """The configured span exporter; None when traces are not exported."""
    kind = config.trace_exporter
    if kind is TraceExporter.NONE:
        return None
    if kind is TraceExporter.CONSOLE:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=config.service_name)
    module, label = _SPAN_MODULES[kind]
    target = config.traces
    args: dict[str, Any] = {"headers": target.plain_headers() or None, "timeout": target.timeout}
    if target.endpoint is not None:
        args["endpoint"] = target.endpoint
    if kind is TraceExporter.OTLP_GRPC:
        args["insecure"] = target.insecure
    exporter: SpanExporter = _module(module, label).OTLPSpanExporter(**args)
    return exporter


def metric_readers(config: TelemetryConfig) -> list[MetricReader]:
    """A periodic reader for each configured push exporter (OTLP, console); Prometheus is not one of them
    (see :func:`prometheus_reader`)."""
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    readers: list[MetricReader] = []
    for kind in config.metric_exporters:
        if kind is MetricExporter.PROMETHEUS:
            continue
        if kind is MetricExporter.CONSOLE:
            exporter: Any = ConsoleMetricExporter()
        else:
            module, label = _METRIC_MODULES[kind]
            target = config.metrics
            args: dict[str, Any] = {"headers": target.plain_headers() or None, "timeout": target.timeout}
            if target.endpoint is not None:
                args["endpoint"] = target.endpoint
            if kind is MetricExporter.OTLP_GRPC:
                args["insecure"] = target.insecure
            exporter = _module(module, label).OTLPMetricExporter(**args)
        readers.append(
            PeriodicExportingMetricReader(
                exporter,
                export_interval_millis=config.metric_interval * 1000,
                export_timeout_millis=config.metric_timeout * 1000,
            )
        )
    return readers


def prometheus_reader(registry: CollectorRegistry) -> MetricReader:
    """A reader that answers Prometheus scrapes from ``registry`` (never prometheus_client's global one)."""
    module = _module("opentelemetry.exporter.prometheus", "prometheus")
    try:
        reader: MetricReader = module.PrometheusMetricReader(registry=registry)
    except TypeError:  # before 0.63b0 it could only register on the global registry
        raise PluginError(
            f"opentelemetry-exporter-prometheus is too old (0.63b0 or later is needed): {_EXTRA}"
        ) from None
    return reader


def new_prometheus_registry() -> CollectorRegistry:
    """An empty registry of parityprobe's own, for one :class:`Telemetry`."""
    return _module("prometheus_client", "prometheus").CollectorRegistry()  # type: ignore[no-any-return]


def prometheus_exposition(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in Prometheus's text exposition format (version 0.0.4)."""
    return _module("prometheus_client", "prometheus").generate_latest(registry)  # type: ignore[no-any-return]
