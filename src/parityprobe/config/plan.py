"""The plan: environments and scenarios checked together before any action.

``build_plan`` resolves every probe, binds every step's ``with`` to the probe's own parameter model,
checks every template, reference, secret and effect against every environment, and reports all problems
at once. Nothing runs unless the whole plan is sound.

Parameter values are validated as the runner will see them: rendered with the same :func:`render`, once
per environment when they use ``vars`` or ``env.name``, with placeholders for earlier steps' outputs
(errors that depend on a plain output's value, known only at run time, are not reported).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from parityprobe.config.environments import Environment
from parityprobe.config.load import LoadedEnvironments, LoadedScenario
from parityprobe.config.paramtypes import secret_only, secret_places, takes_secret, types_at
from parityprobe.config.scenario import Step
from parityprobe.config.template import OutputRef, Ref, Scope, Template, TemplateError, VarRef, render, scan
from parityprobe.config.yamlsource import Locator, PathPart, format_path
from parityprobe.errors import InputError, PluginError, Problem
from parityprobe.model import Effect, OutputValue
from parityprobe.probe import Probe
from parityprobe.registry import ProbeRegistry
from parityprobe.secret import Secret

_TAKES_SECRET = "takes a secret: pass a step's secret output, e.g. ${{ steps.login.outputs.token }}"
_EFFECT_RANK = {Effect.READ: 0, Effect.WRITE: 1, Effect.PRIVILEGED: 2}
_PLACEHOLDER = "placeholder"

Loc = tuple[PathPart, ...]


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


def least_effect(probe: type[Probe], with_: Mapping[str, Any]) -> Effect:
    """The least effect of a step: the probe's own, raised by what its parameters ask for when the probe
    says so (``effect_for``: a ``vault.request`` POST writes; ``vault.kv_write`` with ``dry: false``)."""
    effect = probe.effect
    effect_for = getattr(probe, "effect_for", None)
    if callable(effect_for):
        needed = effect_for(with_)
        if isinstance(needed, Effect) and _EFFECT_RANK[needed] > _EFFECT_RANK[effect]:
            effect = needed
    return effect


def _names(kind: str, names: list[str]) -> str:
    """``environment staging`` or ``environments staging, production``."""
    return f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}"


@dataclass
class _Parameter:
    """One parameter that passed the template, reference and secret checks, ready for type validation."""

    value: Any
    runtime: list[Loc]  # paths (inside ``with``) whose value depends on a plain output: known at run time
    per_environment: bool  # uses vars or env.name


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
        scenario = loaded.scenario
        self.where: dict[str, Loc] = {}  # each id's first occurrence
        for section, steps in (("steps", scenario.steps), ("cleanup", scenario.cleanup)):
            for i, step in enumerate(steps):
                self.where.setdefault(step.id, (section, i))
        self.done: dict[str, type[Probe] | None] = {}  # checked steps; None when the probe is unknown

    def add(self, path: Loc, message: str) -> None:
        problem = self.locator.problem(path, message)
        if problem not in self.problems:
            self.problems.append(problem)

    def check(self) -> PlannedScenario:
        scenario = self.loaded.scenario
        steps = tuple(self._step(s, ("steps", i)) for i, s in enumerate(scenario.steps))
        cleanup = tuple(self._step(s, ("cleanup", i)) for i, s in enumerate(scenario.cleanup))
        return PlannedScenario(self.loaded, tuple(p for p in steps if p), tuple(p for p in cleanup if p))

    def _step(self, step: Step, path: Loc) -> PlannedStep | None:
        first = self.where[step.id]
        if first != path:
            self.add((*path, "id"), f"step id {step.id!r} is already used by {format_path(first)}")
        try:
            probe = self.registry.probe_class(step.probe)
        except PluginError as exc:  # its message lists the known probes
            self.add((*path, "probe"), str(exc))
            self.done.setdefault(step.id, None)
            return None
        self._bind(step, probe, path)
        effect = self._effect(step, probe, path)
        if step.expect.within is not None and effect is not Effect.READ:
            # Waiting repeats the step: only what observes may be repeated, never what changes something.
            self.add(
                (*path, "expect", "within"),
                f"within repeats the step until its outcome holds; a step with effect {effect.value} "
                "must not be repeated (wait with a read step after it)",
            )
        if step.repeat is not None and effect is not Effect.READ:
            self.add(
                (*path, "repeat"),
                f"repeat runs the action {step.repeat} times; a step with effect {effect.value} must not be "
                "repeated (measure the latency of a read step instead)",
            )
        if step.crosscheck is not None:
            self._crosscheck(step, probe, path)
        for index, expectation in enumerate(step.siem):
            self._siem_connector(expectation.connector, (*path, "siem", index))
        self._plane(step, probe, path)
        # Registered after binding: a step may only reference the steps before it.
        self.done.setdefault(step.id, probe)
        return PlannedStep(step, probe, effect)

    def _crosscheck(self, step: Step, probe: type[Probe], path: Loc) -> None:
        """The probe must answer the step's kind of cross-check (its ``declares``, see ``Declaring``)."""
        declares = getattr(probe, "declares", None)
        if not callable(getattr(probe, "declared", None)) or declares is None:
            why = "it does not say what the target declares for its action"
        elif declares != step.crosscheck:
            why = f"it answers crosscheck: {declares}"
        else:
            return
        self.add((*path, "crosscheck"), f"probe {step.probe} cannot crosscheck {step.crosscheck}: {why}")

    def _bind(self, step: Step, probe: type[Probe], path: Loc) -> None:
        fields = probe.Params.model_fields
        with_path = (*path, "with")
        for key in step.with_:
            if key not in fields:
                accepts = ", ".join(fields) or "no parameters"
                self.add((*with_path, key), f"unknown parameter for probe {step.probe} (accepts: {accepts})")
        checked: dict[str, _Parameter] = {}
        for name, info in fields.items():
            if name not in step.with_:
                if info.is_required():
                    self.add(with_path, f"probe {step.probe} needs parameter {name!r}")
                continue
            parameter = self._parameter(step, probe, name, info, with_path)
            if parameter is not None:
                checked[name] = parameter
        self._validate(probe, checked, with_path)

    def _parameter(
        self, step: Step, probe: type[Probe], name: str, info: FieldInfo, with_path: Loc
    ) -> _Parameter | None:
        """Templates, references and secrets of one parameter; None when it has a problem."""
        value = step.with_[name]
        sound = True
        found = _Parameter(value, [], False)
        if not isinstance(value, str | list | dict | type(None)) and secret_only(
            types_at(info.annotation, ())
        ):
            self.add((*with_path, name), _TAKES_SECRET)
            return None
        for sub, template in scan(value, (name,)):
            at = (*with_path, *sub)
            if isinstance(template, TemplateError):
                self.add(at, str(template))
                sound = False
                continue
            # Every reference is checked (all problems at once); secrets only once the references resolve.
            refs_ok = all([self._reference(ref, step, at) for ref in template.refs])
            accepted = types_at(info.annotation, sub[1:])
            sound = refs_ok and self._secrets(template, probe, accepted, sub, at) and sound
            for ref in template.refs:
                if isinstance(ref, OutputRef) and not self._is_secret(ref):
                    found.runtime.append(sub)
                elif not isinstance(ref, OutputRef):
                    found.per_environment = True
        return found if sound else None

    def _is_secret(self, ref: OutputRef) -> bool:
        probe = self.done.get(ref.step)
        return probe is not None and ref.output in probe.secret_outputs

    def _secrets(
        self, template: Template, probe: type[Probe], accepted: list[Any], sub: Loc, at: Loc
    ) -> bool:
        """A secret output goes whole into a place that takes a Secret; such a place takes nothing else."""
        whole = template.whole
        if secret_only(accepted):
            if isinstance(whole, OutputRef) and self._is_secret(whole):
                return True
            not_one = f" ({whole} is not one)" if isinstance(whole, OutputRef) else ""
            self.add(at, _TAKES_SECRET + not_one)
            return False
        for ref in template.refs:
            if not (isinstance(ref, OutputRef) and self._is_secret(ref)):
                continue
            places = secret_places(probe.Params)
            where = (
                f"secrets go whole into {probe.name}'s secret parameters: {', '.join(places)}"
                if places
                else f"{probe.name} takes no secret parameter"
            )
            if whole is None:
                self.add(at, f"{ref} is a secret output and cannot be part of a longer text; {where}")
                return False
            if not takes_secret(accepted):
                self.add(
                    at, f"{ref} is a secret output and {format_path(sub)} does not take a secret; {where}"
                )
                return False
        return True

    def _reference(self, ref: Ref, step: Step, at: Loc) -> bool:
        """Whether ``ref`` resolves for this step in every environment; a located problem otherwise."""
        if isinstance(ref, VarRef):
            missing = [env.name for env in self.environments if ref.name not in env.vars]
            if missing:
                self.add(at, f"{ref} is not defined for {_names('environment', missing)}")
            return not missing
        if not isinstance(ref, OutputRef):
            return True  # env.name
        if ref.step in self.done:
            probe = self.done[ref.step]
            if probe is not None and ref.output not in probe.outputs:
                have = ", ".join(sorted(probe.outputs)) or "none"
                self.add(at, f"step {ref.step!r} has no output {ref.output!r} (outputs: {have})")
            return probe is not None and ref.output in probe.outputs
        if ref.step == step.id:
            self.add(at, f"steps.{ref.step} is this step: a step can only use earlier steps' outputs")
        elif ref.step not in self.where:
            self.add(at, f"there is no step {ref.step!r} in this scenario")
        elif self.where[ref.step][0] == "cleanup" and at[0] == "steps":
            self.add(
                at,
                f"steps.{ref.step} is a cleanup step, which runs after every step: "
                "only a later cleanup step can use its outputs",
            )
        else:
            self.add(at, f"steps.{ref.step} is not a step before this one")
        return False

    def _validate(self, probe: type[Probe], checked: dict[str, _Parameter], with_path: Loc) -> None:
        """The parameters as the runner will render them, bound to the probe's model in every environment."""
        outputs: dict[str, dict[str, OutputValue]] = {
            step: {o: Secret(_PLACEHOLDER, o) if o in p.secret_outputs else _PLACEHOLDER for o in p.outputs}
            for step, p in self.done.items()
            if p is not None
        }
        values = {name: parameter.value for name, parameter in checked.items()}
        runtime = [r for parameter in checked.values() for r in parameter.runtime]
        scopes: list[tuple[str | None, Scope]] = [(None, Scope("", {}, outputs))]
        if any(parameter.per_environment for parameter in checked.values()):
            scopes = [(env.name, Scope(env.name, env.vars, outputs)) for env in self.environments]
        failed: dict[tuple[Loc, str], list[str]] = {}
        for env_name, scope in scopes:
            try:
                probe.Params.model_validate(render(values, scope))
            except TemplateError as exc:  # unreachable after the checks above, but never silent
                failed.setdefault((with_path, str(exc)), [])
            except (TypeError, AttributeError, KeyError, IndexError) as exc:
                # A probe's own validator that breaks is the probe's bug: reported here, not a traceback.
                failed.setdefault((with_path, f"{probe.name}'s parameter model failed: {exc!r}"), [])
            except ValidationError as exc:
                reported: set[PathPart] = set()
                for err in exc.errors(include_url=False):
                    at = self.locator.data_path((*with_path, *err["loc"]))
                    while len(at) > len(with_path) and at not in self.locator.lines:
                        at = at[:-1]  # a union member's tag pydantic adds after the value
                    inside = at[len(with_path) :]
                    key = inside[0] if inside else ""  # "": the model's own validators
                    if err["type"] == "missing" or key in reported:
                        continue  # a missing parameter is reported by name; one error per parameter
                    if any(inside[: len(r)] == r or r[: len(inside)] == inside for r in runtime):
                        continue  # depends on an output's value: only the run can tell
                    reported.add(key)
                    message = err["msg"].removeprefix("Value error, ")
                    names = failed.setdefault((at, message), [])
                    if env_name is not None and (key not in checked or checked[str(key)].per_environment):
                        names.append(env_name)
        for (at, message), env_names in failed.items():
            suffix = f" (with the vars of {_names('environment', env_names)})" if env_names else ""
            self.add(at, message + suffix)

    def _effect(self, step: Step, probe: type[Probe], path: Loc) -> Effect:
        effect = least_effect(probe, step.with_)
        if step.effect is not None:
            if _EFFECT_RANK[step.effect] < _EFFECT_RANK[effect]:
                self.add(
                    (*path, "effect"),
                    f"probe {step.probe} has effect {effect.value} here; a step cannot lower it",
                )
            else:
                effect = step.effect
        refused = [env for env in self.environments if not env.safety.allows(effect)]
        if refused and effect is not Effect.PRIVILEGED:  # a privileged step is skipped there, not refused
            allowed = [f"[{', '.join(e.value for e in env.safety.allow_effects)}]" for env in refused]
            if len(refused) == 1:
                why = f"its safety.allow_effects: {allowed[0]}"
            else:
                pairs = zip(refused, allowed, strict=True)
                why = "safety.allow_effects: " + ", ".join(f"{e.name} {a}" for e, a in pairs)
            self.add(
                (*path, "effect") if step.effect else (*path, "probe"),
                f"effect {effect.value} is not allowed in {_names('environment', [e.name for e in refused])} "
                f"({why})",
            )
        return effect

    def _siem_connector(self, name: str | None, path: tuple[PathPart, ...]) -> None:
        """Every environment must have the SIEM connector a step's expectation names (or a default one)."""
        lacking = []
        for env in self.environments:
            section = env.sections().get("siem")
            settings_of = getattr(section, "settings_of", None)
            if settings_of is None or settings_of(name) is None:
                lacking.append(env.name)
        if lacking:
            what = f"SIEM connector {name!r}" if name else "default SIEM connector"
            where = (*path, "connector") if name else path
            self.add(
                where, f"{_names('environment', lacking)} {'has' if len(lacking) == 1 else 'have'} no {what}"
            )

    def _plane(self, step: Step, probe: type[Probe], path: tuple[PathPart, ...]) -> None:
        section = probe.section
        if section is None:
            return
        missing = [env.name for env in self.environments if section not in env.sections()]
        if missing:
            self.add(
                (*path, "probe"),
                f"{_names('environment', missing)} {'has' if len(missing) == 1 else 'have'} "
                f"no '{section}' section, needed by {step.probe}",
            )
