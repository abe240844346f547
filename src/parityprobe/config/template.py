"""Templating of step parameters: ``${{ vars.NAME }}``, ``${{ steps.ID.outputs.NAME }}``, ``${{ env.name }}``.

A value that is exactly one expression takes the referenced object as it is, so a secret output passed to
a later step stays a :class:`Secret`. A secret is never rendered into a longer string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from parityprobe.model import OutputValue
from parityprobe.secret import Secret

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_VAR = re.compile(r"^vars\.([A-Za-z_][A-Za-z0-9_]*)$")
_OUTPUT = re.compile(r"^steps\.([a-z0-9][a-z0-9-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)$")


class TemplateError(ValueError):
    """An expression that cannot be parsed or resolved."""


@dataclass(frozen=True)
class VarRef:
    name: str


@dataclass(frozen=True)
class OutputRef:
    step: str
    output: str


@dataclass(frozen=True)
class EnvNameRef:
    pass


Ref = VarRef | OutputRef | EnvNameRef


def parse(expression: str) -> Ref:
    """The reference one ``${{ … }}`` expression names."""
    if m := _VAR.match(expression):
        return VarRef(m.group(1))
    if m := _OUTPUT.match(expression):
        return OutputRef(m.group(1), m.group(2))
    if expression == "env.name":
        return EnvNameRef()
    raise TemplateError(
        f"unknown expression {expression!r}; use vars.NAME, steps.STEP.outputs.NAME or env.name"
    )


def references(value: Any) -> Iterator[tuple[Ref, bool]]:
    """Every reference in a parameter value, with whether it stands alone (the whole string)."""
    if isinstance(value, str):
        matches = list(_EXPR.finditer(value))
        whole = len(matches) == 1 and matches[0].group(0) == value
        for m in matches:
            yield parse(m.group(1)), whole
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def is_templated(value: Any) -> bool:
    return any(True for _ in references(value))


@dataclass(frozen=True)
class Scope:
    """What expressions resolve against in one environment's run."""

    environment: str
    vars: Mapping[str, str]
    outputs: Mapping[str, Mapping[str, OutputValue]]

    def resolve(self, ref: Ref) -> OutputValue:
        if isinstance(ref, VarRef):
            if ref.name not in self.vars:
                raise TemplateError(f"vars.{ref.name} is not defined for environment {self.environment}")
            return self.vars[ref.name]
        if isinstance(ref, EnvNameRef):
            return self.environment
        step_outputs = self.outputs.get(ref.step)
        if step_outputs is None or ref.output not in step_outputs:
            raise MissingOutput(ref)
        return step_outputs[ref.output]


class MissingOutput(TemplateError):
    """A referenced step did not produce the output (it was denied, failed or skipped)."""

    def __init__(self, ref: OutputRef) -> None:
        self.ref = ref
        super().__init__(f"steps.{ref.step}.outputs.{ref.output} was not produced")


def render(value: Any, scope: Scope) -> Any:
    """``value`` with every expression resolved; raises TemplateError or MissingOutput."""
    if isinstance(value, str):
        matches = list(_EXPR.finditer(value))
        if not matches:
            return value
        if len(matches) == 1 and matches[0].group(0) == value:
            return scope.resolve(parse(matches[0].group(1)))

        def substitute(m: re.Match[str]) -> str:
            resolved = scope.resolve(parse(m.group(1)))
            if isinstance(resolved, Secret):
                raise TemplateError(f"{m.group(0)} is a secret and cannot be part of a longer text")
            return resolved

        return _EXPR.sub(substitute, value)
    if isinstance(value, Mapping):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value
