"""The environments file: per environment, its sections (how to reach each plane: ``vault``, ``aws``, …),
its legitimate differences (``vars``) and its safety settings.

The engine knows no plane. Each section is a plugin: a :class:`SectionSettings` model registered under its
name in the ``parityprobe.sections`` entry-point group (the built-in ``vault`` and ``aws`` ones exactly as a
third party's would be). :func:`environments_model` builds the file's model from the sections it uses, so
pydantic validates every section with the same file:line errors as the rest, and a key that names no
registered section is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from parityprobe.model import Effect, Tier
from parityprobe.plugins import PluginRegistry

if TYPE_CHECKING:
    from parityprobe.probe import ProbeContext

SECTION_GROUP = "parityprobe.sections"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _environment_name(value: Any) -> Any:
    # Names appear in reports, logs, thread names and store rows: short plain names only.
    if isinstance(value, str) and not _NAME.fullmatch(value):
        raise ValueError(
            "an environment name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


EnvironmentName = Annotated[str, BeforeValidator(_environment_name)]
_PRODUCTION_NAMES = frozenset({"prod", "production", "prd"})
S = TypeVar("S", bound="SectionSettings")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SectionSettings(_Input):
    """Base of an environment section's settings (a plane's connection and identity settings).

    Secret fields are :class:`~parityprobe.config.secretref.SecretRef`; the loader reads every one of them,
    wherever it is nested, before anything runs.
    """

    def resolve_paths(self, base_dir: Path) -> None:
        """Make relative file paths (a CA bundle, say) relative to the environments file's directory."""

    def server_version(self, ctx: ProbeContext) -> str | None:
        """The version of the server this section reaches (``2.1.0``), asked once per run through the probe
        boundary and compared across environments as configuration drift; None where the plane cannot say.
        Raises like a probe's ``run``: the plane's probes translate what it raises."""
        return None


def http_address(value: str) -> str:
    """An ``http://`` or ``https://`` address without a trailing slash; ValueError otherwise."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


def _scalar_to_str(value: Any) -> Any:
    # YAML reads account ids and ports as numbers; vars are text that templates substitute.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


VarValue = Annotated[str, BeforeValidator(_scalar_to_str)]


class Safety(_Input):
    """Which step effects may run here (read only unless the file says otherwise), and how many probe calls
    the daemon may make here per hour (``calls_per_hour``; no limit when absent): a due run that would
    exceed it is skipped and recorded as over budget."""

    allow_effects: list[Effect] = Field(default_factory=lambda: [Effect.READ])
    calls_per_hour: int | None = Field(default=None, ge=1)

    def allows(self, effect: Effect) -> bool:
        return effect in self.allow_effects


class Environment(_Input):
    """One deployment target. ``name`` is its key in the environments file; each section it has is a
    field named for it (``env.vault``), and :meth:`section` gives typed access."""

    name: str = ""
    tier: Tier | None = None
    vars: dict[str, VarValue] = Field(default_factory=dict)
    safety: Safety = Field(default_factory=Safety)

    @property
    def effective_tier(self) -> Tier:
        """The declared tier, else production for an environment named prod/production, else staging."""
        if self.tier is not None:
            return self.tier
        return Tier.PRODUCTION if self.name.lower() in _PRODUCTION_NAMES else Tier.STAGING

    def sections(self) -> dict[str, SectionSettings]:
        """The sections this environment has, by name."""
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SectionSettings)
        }

    def section(self, name: str, model: type[S]) -> S | None:
        """The section ``name`` if the environment has it; TypeError if it is not a ``model``."""
        value = self.sections().get(name)
        if value is not None and not isinstance(value, model):
            raise TypeError(f"section {name!r} is a {type(value).__name__}, not a {model.__name__}")
        return value

    def require_section(self, name: str, model: type[S], missing: type[Exception]) -> S:
        """The section ``name``; ``missing`` (the plane's setup error, so its translator reads it) with a
        message naming the environment when it has none."""
        value = self.section(name, model)
        if value is None:
            raise missing(f"environment {self.name!r} has no {name!r} section")
        return value


CORE_FIELDS = frozenset(Environment.model_fields)


class EnvironmentsFile(_Input):
    """The whole environments file (its environment model carries the sections in use)."""

    environments: dict[EnvironmentName, Environment] = Field(min_length=1)

    @model_validator(mode="after")
    def _name_environments(self) -> EnvironmentsFile:
        for name, env in self.environments.items():
            env.name = name
        return self


class SectionRegistry(PluginRegistry[SectionSettings]):
    """Environment sections by name, from the ``parityprobe.sections`` entry points."""

    group = SECTION_GROUP
    kind = "environment section"

    def check(self, name: str, loaded: type) -> str | None:
        if not issubclass(loaded, SectionSettings):
            return "is not a SectionSettings model"
        return None


def environment_model(sections: Iterable[str], registry: SectionRegistry) -> type[Environment]:
    """The model of one environment that may have these sections (each optional).

    PluginError for a section nothing registers or that fails to load.
    """
    fields: dict[str, Any] = {name: (registry.load(name) | None, None) for name in sorted(set(sections))}
    if not fields:
        return Environment
    return create_model("Environment", __base__=Environment, **fields)


def environments_model(sections: Iterable[str], registry: SectionRegistry) -> type[EnvironmentsFile]:
    """The environments file's model, its environments having these sections (see
    :func:`environment_model`)."""
    environment = environment_model(sections, registry)
    if environment is Environment:
        return EnvironmentsFile
    return create_model(
        "EnvironmentsFile",
        __base__=EnvironmentsFile,
        environments=(dict[EnvironmentName, environment], Field(min_length=1)),  # type: ignore[valid-type]
    )
