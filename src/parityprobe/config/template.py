"""Templating of step parameters: ``${{ vars.NAME }}``, ``${{ steps.ID.outputs.NAME }}``, ``${{ env.name }}``.

One grammar, used both by validation (:func:`scan`) and at run time (:func:`render`), so a value is never
checked one way and rendered another:

- every ``${{`` starts a reference, which ends at the first ``}}`` after it; whitespace around the
  expression is allowed. There is no escape: text cannot hold a literal ``${{``. (``$${{ vars.x }}`` is a
  literal ``$`` followed by a reference.)
- an unterminated ``${{``, an empty ``${{ }}``, an unknown expression, a ``}`` right after a reference's
  closing ``}}`` (``${{ vars.x }}}}``: which braces close it?), and a reference missing its ``$``
  (``{{ vars.x }}``) are errors;
- mapping keys never hold references; lists and mappings are walked to any depth.

A value that is exactly one reference takes the referenced object as it is, so a secret output passed to a
later step stays a :class:`Secret`. A secret is never rendered into a longer string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from parityprobe.model import OutputValue
from parityprobe.secret import Secret

OPEN = "${{"
CLOSE = "}}"
_VAR = re.compile(r"vars\.([A-Za-z_][A-Za-z0-9_]*)")
_OUTPUT = re.compile(r"steps\.([a-z0-9][a-z0-9-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)")
# ``{{ vars.x }}`` without its ``$`` would be sent to the target as it is, in every environment alike.
# Only its start is matched: the search stays linear however long the text.
_DOLLARLESS = re.compile(r"(?<!\$)\{\{\s*(?:vars|steps|env)\.")
_SNIPPET = 60

PathPart = str | int


class TemplateError(ValueError):
    """An expression that cannot be parsed or resolved."""


@dataclass(frozen=True)
class VarRef:
    """``vars.NAME``: a value of the environment's ``vars``."""

    name: str

    def __str__(self) -> str:
        return f"vars.{self.name}"


@dataclass(frozen=True)
class OutputRef:
    """``steps.ID.outputs.NAME``: an output of an earlier step in the same run."""

    step: str
    output: str

    def __str__(self) -> str:
        return f"steps.{self.step}.outputs.{self.output}"


@dataclass(frozen=True)
class EnvNameRef:
    """``env.name``: the name of the environment the step runs in."""

    def __str__(self) -> str:
        return "env.name"


Ref = VarRef | OutputRef | EnvNameRef


def parse(expression: str) -> Ref:
    """The reference one ``${{ … }}`` expression (without its braces and spaces) names."""
    if m := _VAR.fullmatch(expression):
        return VarRef(m.group(1))
    if m := _OUTPUT.fullmatch(expression):
        return OutputRef(m.group(1), m.group(2))
    if expression == "env.name":
        return EnvNameRef()
    raise TemplateError(
        f"unknown expression {expression!r}; use vars.NAME, steps.STEP.outputs.NAME or env.name"
    )


@dataclass(frozen=True)
class Template:
    """A string split into literal text and references, in order."""

    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(p for p in self.parts if not isinstance(p, str))

    @property
    def whole(self) -> Ref | None:
        """The reference when the string is exactly one reference (its value is passed as it is)."""
        if len(self.parts) == 1 and not isinstance(self.parts[0], str):
            return self.parts[0]
        return None


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def parse_template(text: str) -> Template:
    """``text`` as a :class:`Template`; TemplateError when any ``${{`` is not a well-formed reference."""
    parts: list[str | Ref] = []
    pos = 0
    while (start := text.find(OPEN, pos)) != -1:
        end = text.find(CLOSE, start + len(OPEN))
        if end == -1:
            raise TemplateError(
                f"unterminated reference {_snippet(text[start:])!r}: every {OPEN} needs a closing {CLOSE}"
            )
        body = text[start + len(OPEN) : end]
        if OPEN in body:
            unclosed = text[start : start + len(OPEN) + body.index(OPEN)]
            raise TemplateError(
                f"unterminated reference {_snippet(unclosed)!r}: a new {OPEN} starts before its {CLOSE}"
            )
        reference = text[start : end + len(CLOSE)]
        if not body.strip():
            raise TemplateError(f"empty reference {reference!r}")
        try:
            ref = parse(body.strip())
        except TemplateError as exc:
            raise TemplateError(f"{exc} (in {_snippet(reference)!r})") from None
        after = end + len(CLOSE)
        if text.startswith("}", after):
            stray = "}}" if text.startswith("}}", after) else "}"
            raise TemplateError(
                f"stray {stray!r} right after {reference!r}: a reference ends at its first {CLOSE}"
            )
        _literal(parts, text[pos:start])
        parts.append(ref)
        pos = after
    _literal(parts, text[pos:])
    return Template(tuple(parts))


def _literal(parts: list[str | Ref], text: str) -> None:
    if not text:
        return
    if m := _DOLLARLESS.search(text):
        end = text.find(CLOSE, m.start(), m.start() + _SNIPPET)
        found = text[m.start() : end + len(CLOSE)] if end != -1 else _snippet(text[m.start() :])
        raise TemplateError(f"{found!r} looks like a reference without its '$': write it ${found}")
    parts.append(text)


def key_error(key: object) -> str | None:
    """Why a mapping key is refused (it holds a reference, or something like one), or None."""
    if isinstance(key, str) and (OPEN in key or _DOLLARLESS.search(key)):
        return f"a mapping key cannot hold a reference: {_snippet(key)!r}"
    return None


Scanned = tuple[tuple[PathPart, ...], Template | TemplateError]


def scan(value: Any, path: tuple[PathPart, ...] = ()) -> Iterator[Scanned]:
    """Every string inside ``value`` with its path (list indexes, mapping keys): its Template, or the
    TemplateError that refuses it (a malformed string, or a mapping key holding a reference)."""
    if isinstance(value, str):
        try:
            yield path, parse_template(value)
        except TemplateError as exc:
            yield path, exc
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if (problem := key_error(key)) is not None:
                yield (*path, key), TemplateError(problem)
            else:
                yield from scan(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from scan(item, (*path, i))


def references(value: Any) -> Iterator[tuple[Ref, bool]]:
    """Every reference in a parameter value, with whether it stands alone (the whole string).

    Raises the first TemplateError found.
    """
    for _, found in scan(value):
        if isinstance(found, TemplateError):
            raise found
        whole = found.whole is not None
        for ref in found.refs:
            yield ref, whole


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
    """``value`` with every expression resolved; raises TemplateError or MissingOutput.

    Parses with the same grammar as validation: text that validation refused is never sent anywhere.
    """
    if isinstance(value, str):
        template = parse_template(value)
        if (ref := template.whole) is not None:
            return scope.resolve(ref)
        text: list[str] = []
        for part in template.parts:
            if isinstance(part, str):
                text.append(part)
                continue
            resolved = scope.resolve(part)
            if isinstance(resolved, Secret):
                raise TemplateError(f"{part} is a secret and cannot be part of a longer text")
            text.append(resolved)
        return "".join(text)
    if isinstance(value, Mapping):
        rendered = {}
        for key, item in value.items():
            if (problem := key_error(key)) is not None:
                raise TemplateError(problem)
            rendered[key] = render(item, scope)
        return rendered
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value
