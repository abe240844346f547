"""A :class:`Telemetry`: one tracer provider and one meter provider, built for one environment.

They are never installed as OpenTelemetry's global providers (which can be set once per process): whoever
needs them is handed the :class:`Telemetry`, so tests and daemons build fresh ones. Prometheus metrics live
in a ``CollectorRegistry`` of its own, never prometheus_client's global one; the daemon's health server
serves :meth:`Telemetry.prometheus_text` on ``/metrics``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from parityprobe.redact import Redactor
from parityprobe.telemetry import exporters
from parityprobe.telemetry.resolve import TelemetryConfig, resolve
from parityprobe.telemetry.settings import TelemetrySettings

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from prometheus_client import CollectorRegistry

INSTRUMENTATION_NAME = "parityprobe"
# What Telemetry.prometheus_text returns: the text format prometheus_client's generate_latest writes.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Telemetry:
    """A tracer provider and a meter provider of one's own; :meth:`shutdown` flushes and stops both.

    Use it as a context manager, or call :meth:`shutdown` once done: spans and metric points still buffered
    are exported then (nothing is registered to run at interpreter exit).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        prometheus_registry: CollectorRegistry | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._prometheus = prometheus_registry
        self._closed = False
        self._lock = threading.Lock()

    @property
    def tracer(self) -> Tracer:
        return self.tracer_provider.get_tracer(INSTRUMENTATION_NAME, _version())

    @property
    def meter(self) -> Meter:
        return self.meter_provider.get_meter(INSTRUMENTATION_NAME, _version())

    @property
    def prometheus_enabled(self) -> bool:
        return self._prometheus is not None

    def prometheus_text(self) -> bytes | None:
        """The current metrics in Prometheus's text format (content type :data:`PROMETHEUS_CONTENT_TYPE`),
        for a ``/metrics`` endpoint; None when this environment's telemetry has no Prometheus exporter."""
        if self._prometheus is None:
            return None
        return exporters.prometheus_exposition(self._prometheus)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export what is buffered now; False when an exporter did not finish in time."""
        traces = self.tracer_provider.force_flush(timeout_millis)
        metrics = self.meter_provider.force_flush(timeout_millis)
        return bool(traces and metrics)

    def shutdown(self) -> None:
        """Flush and stop both providers (the Prometheus reader leaves its registry). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.tracer_provider.shutdown()
        finally:
            self.meter_provider.shutdown()

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()


def make_telemetry(
    *,
    resource: Resource | None = None,
    span_exporters: Iterable[SpanExporter] = (),
    metric_readers: Iterable[MetricReader] = (),
    prometheus: bool = False,
    batch: bool = False,
) -> Telemetry:
    """A :class:`Telemetry` exporting to exactly these exporters and readers (tests pass the in-memory
    ones), plus a Prometheus reader on a registry of its own when ``prometheus``. Spans are exported as
    each ends, or in batches from a background thread when ``batch`` (for network exporters)."""
    resource = resource or Resource({"service.name": "parityprobe"})
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in span_exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        tracer_provider.add_span_processor(processor)
    readers = list(metric_readers)
    registry = None
    if prometheus:
        registry = exporters.new_prometheus_registry()
        readers.append(exporters.prometheus_reader(registry))
    meter_provider = MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False)
    return Telemetry(tracer_provider, meter_provider, registry)


def build_telemetry(
    settings: TelemetrySettings | None,
    environ: Mapping[str, str],
    redactor: Redactor | None = None,
) -> Telemetry:
    """The telemetry an environment's ``telemetry`` section (None: it has none) and the ``OTEL_*``
    variables in ``environ`` configure. Secret header values from the variables are registered with
    ``redactor``. InputError for a variable with a bad value; PluginError when an exporter's package is
    missing."""
    config = resolve(settings, environ)
    if redactor is not None:
        for secret in config.secrets():
            redactor.register(secret)
    return telemetry_for(config)


def telemetry_for(config: TelemetryConfig) -> Telemetry:
    """The :class:`Telemetry` a resolved configuration describes, its exporters built."""
    span_exporter = exporters.span_exporter(config)
    return make_telemetry(
        resource=resource_of(config),
        span_exporters=[span_exporter] if span_exporter is not None else [],
        metric_readers=exporters.metric_readers(config),
        prometheus=config.prometheus,
        batch=True,
    )


def resource_of(config: TelemetryConfig) -> Resource:
    """The resource every span and metric carries: the SDK's own attributes, then the configured ones.

    Built without the SDK's resource detectors, which read the process environment themselves: the
    configuration has already decided what the variables say.
    """
    from opentelemetry.sdk.resources import (
        TELEMETRY_SDK_LANGUAGE,
        TELEMETRY_SDK_NAME,
        TELEMETRY_SDK_VERSION,
    )
    from opentelemetry.sdk.version import __version__ as sdk_version

    base = {
        TELEMETRY_SDK_LANGUAGE: "python",
        TELEMETRY_SDK_NAME: "opentelemetry",
        TELEMETRY_SDK_VERSION: sdk_version,
    }
    return Resource({**base, "service.version": _version(), **config.resource_attributes})


def _version() -> str:
    from parityprobe import __version__

    return __version__
