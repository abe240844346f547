"""Loading input files: YAML → validated models, every problem located; secret references resolved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from parityprobe.config.environments import (
    CORE_FIELDS,
    Environment,
    EnvironmentsFile,
    SectionRegistry,
    environments_model,
)
from parityprobe.config.scenario import Scenario
from parityprobe.config.secretref import SecretRef
from parityprobe.config.yamlsource import Locator, PathPart, load_yaml, validation_problems
from parityprobe.errors import InputError, PluginError, Problem
from parityprobe.redact import Redactor

M = TypeVar("M", bound=BaseModel)

SCENARIO_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Loaded:
    """A validated model with the file it came from, for locating later problems."""

    path: Path
    locator: Locator


@dataclass(frozen=True)
class LoadedScenario(Loaded):
    scenario: Scenario


@dataclass(frozen=True)
class LoadedEnvironments(Loaded):
    environments: list[Environment]


def load_model(path: Path, model: type[M]) -> tuple[M, Locator]:
    """Load one YAML file into ``model``; InputError naming file, line and field otherwise."""
    data, locator = load_mapping(path, model.__name__)
    return validate(model, data, locator), locator


def validate(model: type[M], data: dict[str, Any], locator: Locator) -> M:
    """``data`` (from ``locator``'s file) as ``model``; InputError with every problem located."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_problems(exc, locator)) from None


def load_mapping(path: Path, what: str) -> tuple[dict[str, Any], Locator]:
    """One YAML file whose top is a mapping; InputError otherwise, saying what was found."""
    data, locator = load_yaml(path)
    if not isinstance(data, dict):
        if () not in locator.lines:  # no node at all: empty, or only comments
            message = f"the file holds no YAML document: expected a mapping ({what})"
        else:
            message = f"expected a mapping at the top of the file ({what}), found {_kind(data)}"
        raise InputError([Problem(path, locator.line(()) or 1, None, message)])
    return data, locator


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a list" if isinstance(value, list) else "null"


def load_environments(
    path: Path,
    redactor: Redactor,
    only: Iterable[str] | None = None,
    sections: SectionRegistry | None = None,
) -> LoadedEnvironments:
    """The environments file, restricted to ``only`` (in that order), with every secret reference read.

    Each environment's sections are validated against the models their plugins register (``sections``,
    by default the ``parityprobe.sections`` entry points); a key that names none is refused, located.
    """
    parsed, locator = parse_environments(path, sections)
    names = list(parsed.environments)
    if only is not None:
        wanted = list(only)
        unknown = [n for n in wanted if n not in parsed.environments]
        if unknown:
            raise InputError(
                [
                    Problem(path, None, None, f"no environment named {n!r} (have: {', '.join(names)})")
                    for n in unknown
                ]
            )
        names = wanted
    problems: list[Problem] = []
    for name in names:
        env = parsed.environments[name]
        for settings in env.sections().values():
            settings.resolve_paths(path.parent)
        for field_path, ref in _secret_refs(env, ("environments", name)):
            try:
                redactor.register(ref.resolve(path.parent, label=str(field_path[-1])))
            except ValueError as exc:
                problems.append(locator.problem(field_path, str(exc)))
    if problems:
        raise InputError(problems)
    return LoadedEnvironments(path, locator, [parsed.environments[n] for n in names])


def parse_environments(
    path: Path, sections: SectionRegistry | None = None
) -> tuple[EnvironmentsFile, Locator]:
    """The environments file validated, every section against its plugin's model; secrets not read yet."""
    data, locator = load_mapping(path, EnvironmentsFile.__name__)
    return validate(_model_for(data, locator, sections or SectionRegistry()), data, locator), locator


def _model_for(data: dict[str, Any], locator: Locator, registry: SectionRegistry) -> type[EnvironmentsFile]:
    """The file's model, with the sections its environments use; every unknown section is a problem."""
    environments = data.get("environments")
    used: dict[str, tuple[PathPart, ...]] = {}
    if isinstance(environments, dict):
        for env_name, env in environments.items():
            if isinstance(env, dict):
                for key in env:
                    if key not in CORE_FIELDS:
                        used.setdefault(str(key), ("environments", env_name, key))
    problems = []
    for section, where in used.items():
        try:
            registry.load(section)
        except PluginError as exc:
            problems.append(locator.problem(where, str(exc)))
    if problems:
        raise InputError(problems)
    return environments_model(used, registry)


def _secret_refs(
    model: BaseModel, path: tuple[PathPart, ...]
) -> list[tuple[tuple[PathPart, ...], SecretRef]]:
    found: list[tuple[tuple[PathPart, ...], SecretRef]] = []
    for name in type(model).model_fields:
        found.extend(_refs_in(getattr(model, name), (*path, name)))
    return found


def _refs_in(value: Any, path: tuple[PathPart, ...]) -> list[tuple[tuple[PathPart, ...], SecretRef]]:
    """The secret references in one field's value: itself, a nested model's, or a mapping's or list's
    items' (a SIEM connector by name, say)."""
    if isinstance(value, SecretRef):
        return [(path, value)]
    if isinstance(value, BaseModel):
        return _secret_refs(value, path)
    if isinstance(value, dict):
        return [ref for key, item in value.items() for ref in _refs_in(item, (*path, str(key)))]
    if isinstance(value, list | tuple):
        return [ref for index, item in enumerate(value) for ref in _refs_in(item, (*path, index))]
    return []


def load_scenario(path: Path) -> LoadedScenario:
    scenario, locator = load_model(path, Scenario)
    return LoadedScenario(path, locator, scenario)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Scenario files named directly, plus the YAML files directly inside named directories (sorted)."""
    found: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem(path, None, None, "no such file or directory"))
    if problems:
        raise InputError(problems)
    return found


def load_scenarios(paths: Iterable[Path]) -> list[LoadedScenario]:
    """Every scenario under ``paths``; all files' problems are reported together, ids must be unique."""
    paths = list(paths)
    loaded: list[LoadedScenario] = []
    problems: list[Problem] = []
    for path in discover(paths):
        try:
            loaded.append(load_scenario(path))
        except InputError as exc:
            problems.extend(exc.problems)
    seen: dict[str, Path] = {}
    for item in loaded:
        first = seen.setdefault(item.scenario.id, item.path)
        if first != item.path:
            problems.append(
                item.locator.problem(("id",), f"scenario id {item.scenario.id!r} is also used by {first}")
            )
    if problems:
        raise InputError(problems)
    if not loaded:
        # Files named directly always load or fail above, so every path here is a directory without any.
        patterns = ", ".join(f"*{suffix}" for suffix in SCENARIO_SUFFIXES)
        message = f"no scenario files ({patterns}) in this directory"
        raise InputError(
            [Problem(p, None, None, message) for p in paths]
            or [Problem(None, None, None, "no scenario files or directories named")]
        )
    return loaded
