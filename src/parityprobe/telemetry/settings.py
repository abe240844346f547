"""The ``telemetry`` section of an environment: where its traces and metrics go.

```yaml
telemetry:
  service_name: parityprobe-staging        # else OTEL_SERVICE_NAME, else "parityprobe"
  resource_attributes: {deployment.environment: staging}
  traces:
    exporter: otlp_http                    # otlp_grpc | otlp_http | console | none
    endpoint: https://otel.example.com:4318
    headers: {authorization: {env: OTEL_TOKEN}}
  metrics:
    exporters: [prometheus, otlp_grpc]     # served on the daemon's /metrics; pushed over OTLP
    endpoint: http://collector:4317
    interval: 30s
```

Every field is optional. A field the file leaves out takes the standard OpenTelemetry variable
(``OTEL_TRACES_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, …; :mod:`parityprobe.telemetry.resolve` reads
them); a field the file sets wins over the variable. Header values that are secrets are references
(``{env: NAME}``, ``{file: PATH}``), read with every other secret before anything runs. The section imports
pydantic only: the OpenTelemetry exporters are imported when a run uses them.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from parityprobe.config.durations import Duration
from parityprobe.config.environments import SectionSettings, VarValue, http_address
from parityprobe.config.secretref import SecretRef


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceExporter(enum.Enum):
    """Where spans go."""

    OTLP_GRPC = "otlp_grpc"
    OTLP_HTTP = "otlp_http"
    CONSOLE = "console"
    NONE = "none"


class MetricExporter(enum.Enum):
    """Where metric points go: pushed over OTLP, or kept for the daemon's ``/metrics`` (Prometheus)."""

    OTLP_GRPC = "otlp_grpc"
    OTLP_HTTP = "otlp_http"
    PROMETHEUS = "prometheus"
    CONSOLE = "console"


Endpoint = Annotated[str, AfterValidator(http_address)]
# Header names as HTTP and gRPC metadata accept them (gRPC wants them lower case; they are lowered).
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]


def _header_kind(value: Any) -> str:
    # Text is sent as it is; anything else must be a secret reference, and is judged as one alone (a plain
    # union would report a mistyped reference twice, once as not being text).
    return "text" if isinstance(value, str) else "secret"


HeaderValue = Annotated[
    Union[Annotated[str, Tag("text")], Annotated[SecretRef, Tag("secret")]],  # noqa: UP007  # tagged members
    Discriminator(_header_kind),
]


class TracesSettings(_Input):
    """The trace exporter, its collector endpoint (``http://`` or ``https://``; for ``otlp_http`` the base
    address, ``/v1/traces`` is added), headers sent with every export and, for gRPC, whether the channel is
    plain text (else taken from the endpoint's scheme)."""

    exporter: TraceExporter | None = None
    endpoint: Endpoint | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    insecure: bool | None = None
    timeout: Duration | None = Field(default=None, gt=0)


class MetricsSettings(_Input):
    """The metric exporters (any of OTLP gRPC, OTLP HTTP, Prometheus, console; ``[]`` for none), the OTLP
    collector endpoint and headers, and how often points are pushed (``interval``)."""

    exporters: list[MetricExporter] | None = None
    endpoint: Endpoint | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    insecure: bool | None = None
    interval: Duration | None = Field(default=None, gt=0)
    timeout: Duration | None = Field(default=None, gt=0)


class TelemetrySettings(SectionSettings):
    """An environment's OpenTelemetry settings: the service name and resource attributes its spans and
    metrics carry, and where traces and metrics are exported. Unset fields fall back to the standard
    ``OTEL_*`` variables."""

    service_name: str | None = Field(default=None, min_length=1, max_length=255)
    resource_attributes: dict[Annotated[str, Field(min_length=1, max_length=255)], VarValue] = Field(
        default_factory=dict
    )
    traces: TracesSettings = Field(default_factory=TracesSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
