"""The ``siem`` section of an environment: its connectors, by a name scenarios use, and how to poll them.

```yaml
siem:
  default: audit                      # the connector a step's expectation uses when it names none
  poll_interval: 2s                   # first pause between queries; grows 1.5x up to max_poll_interval
  max_poll_interval: 30s
  connectors:
    audit: {type: file, path: /var/log/vault/audit.log}
    logs: {type: cloudwatch_logs, log_group: /vault/audit, region: eu-west-1}
```

Each connector's settings are validated by its type's model (a plugin of the ``parityprobe.siem`` group), so
an unknown type or field is a located error like any other. The section imports pydantic only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Union, cast

from pydantic import Field, model_validator

from parityprobe.config.durations import Duration
from parityprobe.config.environments import SectionSettings
from parityprobe.plugins import PluginRegistry
from parityprobe.siem.connector import SIEM_GROUP, ConnectorSettings


class SiemRegistry(PluginRegistry[ConnectorSettings]):
    """Connector types by name, from the ``parityprobe.siem`` entry points (their settings models)."""

    group = SIEM_GROUP
    kind = "SIEM connector type"

    def check(self, name: str, loaded: type) -> str | None:
        if not issubclass(loaded, ConnectorSettings):
            return "is not a ConnectorSettings model"
        if getattr(loaded, "name", None) != name:
            return f"is not a connector settings model named {name!r}"
        return None


@functools.cache
def _connector_union() -> Any:
    """Every registered connector type's settings, told apart by ``type``."""
    registry = SiemRegistry()
    models = tuple(registry.load(name) for name in registry.names())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007  # a runtime tuple


# Every registered connector type's settings model, told apart by ``type``.
AnyConnector = _connector_union()
ConnectorName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


class SiemSettings(SectionSettings):
    """Where this environment's SIEM events can be searched (``connectors``, by the name scenarios use),
    which one a step uses when it names none (``default``; the only one, when there is one), and how often
    the wait phase asks (``poll_interval``, growing 1.5x up to ``max_poll_interval``)."""

    default: str | None = None
    poll_interval: Duration = Field(default=2, gt=0)
    max_poll_interval: Duration = Field(default=30, gt=0)
    connectors: dict[ConnectorName, AnyConnector] = Field(min_length=1)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _default_known(self) -> SiemSettings:
        if self.default is None and len(self.connectors) == 1:
            self.default = next(iter(self.connectors))
        if self.default is not None and self.default not in self.connectors:
            raise ValueError(f"default {self.default!r} is not one of connectors")
        return self

    def settings_of(self, name: str | None) -> ConnectorSettings | None:
        """The connector named (the default when None); None when there is none of that name."""
        key = self.default if name is None else name
        return None if key is None else cast(ConnectorSettings | None, self.connectors.get(key))

    def resolve_paths(self, base_dir: Path) -> None:
        for settings in self.connectors.values():
            cast(ConnectorSettings, settings).resolve_paths(base_dir)
