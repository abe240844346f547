"""The plan: environments and scenarios checked together before any action.

``build_plan`` resolves every probe, binds every step's ``with`` to the probe's own parameter model,
checks every reference and every effect against every environment, and reports all problems at once.
Nothing runs unless the whole plan is sound.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from parityprobe.config.environments import Environment
from parityprobe.config.load import LoadedEnvironments, LoadedScenario
from parityprobe.config.scenario import Step
from parityprobe.config.template import EnvNameRef, OutputRef, TemplateError, VarRef, references
from parityprobe.config.yamlsource import Locator, PathPart
from parityprobe.errors import InputError, PluginError, Problem
from parityprobe.model import Effect
from parityprobe.probe import Probe
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret

_TAKES_SECRET = "takes a secret: pass a step's secret output, e.g. ${{ steps.login.outputs.token }}"
_EFFECT_RANK = {Effect.READ: 0, Effect.WRITE: 1, Effect.PRIVILEGED: 2}
_ARBITRARY = ConfigDict(arbitrary_types_allowed=True)


@dataclass(frozen=True)
class PlannedStep:
    """A step whose probe is resolved and whose effect is settled."""

    step: Step
    probe: type[Probe]
    effect: Effect


@dataclass(frozen=True)
class PlannedScenario:
    source: LoadedScenario
    steps: tuple[PlannedStep, ...]
    cleanup: tuple[PlannedStep, ...]

    @property
    def id(self) -> str:
        return self.source.scenario.id


@dataclass(frozen=True)
class Plan:
    """What a run will do: which scenarios, in which environments."""

    environments_file: Path
    environments: tuple[Environment, ...]
    scenarios: tuple[PlannedScenario, ...]


def build_plan(
    environments: LoadedEnvironments, scenarios: list[LoadedScenario], registry: ProbeRegistry
) -> Plan:
    """Check everything; InputError listing every problem, or the plan."""
    problems: list[Problem] = []
    planned = []
    for loaded in scenarios:
        checker = _ScenarioChecker(loaded, environments.environments, registry, problems)
        planned.append(checker.check())
    if problems:
        raise InputError(problems)
    return Plan(environments.path, tuple(environments.environments), tuple(planned))


class _ScenarioChecker:
    def __init__(
        self,
        loaded: LoadedScenario,
        environments: list[Environment],
        registry: ProbeRegistry,
        problems: list[Problem],
    ) -> None:
        self.loaded = loaded
        self.locator: Locator = loaded.locator
        self.environments = environments
        self.registry = registry
        self.problems = problems
        self.outputs: dict[str, frozenset[str]] = {}

    def add(self, path: tuple[PathPart, ...], message: str) -> None:
        self.problems.append(self.locator.problem(path, message))

    def check(self) -> PlannedScenario:
        scenario = self.loaded.scenario
        steps = tuple(self._step(s, ("steps", i)) for i, s in enumerate(scenario.steps))
        cleanup = tuple(self._step(s, ("cleanup", i)) for i, s in enumerate(scenario.cleanup))
        return PlannedScenario(self.loaded, tuple(p for p in steps if p), tuple(p for p in cleanup if p))

    def _step(self, step: Step, path: tuple[PathPart, ...]) -> PlannedStep | None:
        try:
            probe = self.registry.probe_class(step.probe)
        except PluginError as exc:
            known = ", ".join(self.registry.names())
            self.add((*path, "probe"), f"{exc} (known probes: {known})")
            self.outputs[step.id] = frozenset()
            return None
        self._bind(step, probe, path)
        effect = self._effect(step, probe, path)
        self._plane(step, path)
        # Registered after binding: a step may only reference the steps before it.
        self.outputs[step.id] = probe.outputs
        return PlannedStep(step, probe, effect)

    def _bind(self, step: Step, probe: type[Probe], path: tuple[PathPart, ...]) -> None:
        fields = probe.Params.model_fields
        with_path = (*path, "with")
        for key in step.with_:
            if key not in fields:
                accepts = ", ".join(fields) or "no parameters"
                self.add((*with_path, key), f"unknown parameter for probe {step.probe} (accepts: {accepts})")
        for name, info in fields.items():
            if name not in step.with_:
                if info.is_required():
                    self.add(with_path, f"probe {step.probe} needs parameter {name!r}")
                continue
            self._value(step.with_[name], name, info, (*with_path, name))

    def _value(self, value: Any, name: str, info: FieldInfo, path: tuple[PathPart, ...]) -> None:
        takes_secret = _accepts(info.annotation, Secret)
        try:
            refs = list(references(value))
        except TemplateError as exc:
            self.add(path, str(exc))
            return
        if takes_secret and not (len(refs) == 1 and refs[0][1] and isinstance(refs[0][0], OutputRef)):
            self.add(
                path, "takes a secret: pass a step's secret output, e.g. ${{ steps.login.outputs.token }}"
            )
            return
        for ref, whole in refs:
            self._reference(ref, whole, path)
        if refs:
            return
        try:
            annotation = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=_ARBITRARY)  # type: ignore[arg-type]
            adapter.validate_python(value)
        except ValidationError as exc:
            self.add(path, exc.errors(include_url=False)[0]["msg"])

    def _reference(self, ref: object, whole: bool, path: tuple[PathPart, ...]) -> None:
        if isinstance(ref, OutputRef):
            if ref.step not in self.outputs:
                self.add(path, f"steps.{ref.step} is not a step before this one")
            elif ref.output not in self.outputs[ref.step]:
                have = ", ".join(sorted(self.outputs[ref.step])) or "none"
                self.add(path, f"step {ref.step!r} has no output {ref.output!r} (outputs: {have})")
        elif isinstance(ref, VarRef):
            for env in self.environments:
                if ref.name not in env.vars:
                    self.add(path, f"vars.{ref.name} is not defined for environment {env.name}")
        else:
            assert isinstance(ref, EnvNameRef)

    def _effect(self, step: Step, probe: type[Probe], path: tuple[PathPart, ...]) -> Effect:
        effect = probe.effect
        if step.effect is not None:
            if _EFFECT_RANK[step.effect] < _EFFECT_RANK[probe.effect]:
                self.add(
                    (*path, "effect"),
                    f"probe {step.probe} has effect {probe.effect.value}; a step cannot lower it",
                )
            else:
                effect = step.effect
        for env in self.environments:
            if not env.safety.allows(effect):
                allowed = ", ".join(e.value for e in env.safety.allow_effects)
                self.add(
                    (*path, "effect") if step.effect else (*path, "probe"),
                    f"effect {effect.value} is not allowed in environment {env.name} "
                    f"(its safety.allow_effects: [{allowed}])",
                )
        return effect

    def _plane(self, step: Step, path: tuple[PathPart, ...]) -> None:
        plane = step.probe.split(".", 1)[0]
        if plane not in Environment.model_fields:
            return
        for env in self.environments:
            if getattr(env, plane) is None:
                self.add(
                    (*path, "probe"),
                    f"environment {env.name} has no '{plane}' section, needed by {step.probe}",
                )


def _accepts(annotation: Any, cls: type) -> bool:
    if annotation is cls:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, Annotated):
        return any(_accepts(arg, cls) for arg in typing.get_args(annotation))
    return False
