"""YAML with positions and limits: every key and list item is mapped to its line, so any problem can name it.

``load_yaml`` is the one loader for every user file (scenarios, environments, the lab profile). It takes
plain data only (text, numbers, booleans, null, lists, mappings with text keys) and, before building
anything, refuses with file and line what would exhaust memory or the stack:

- ``MAX_FILE_BYTES``, 1 MiB: our files are a few KiB.
- ``MAX_DEPTH``, 64 nested lists or mappings, aliases expanded: ours nest 5 deep; 64 keeps composing,
  constructing and validating far from Python's recursion limit.
- ``MAX_ALIASES``, 500: sharing an expectation between steps takes a handful.
- ``MAX_NODES``, 100,000 nodes counted as if every alias were expanded: what pydantic and the line index
  walk, so it bounds their time and memory (a "billion laughs" file expands to 10**9 from 342 bytes).

Depth and expanded size are measured by one iterative pass over the parser's events before composing,
memoised per anchor: nothing is expanded to measure it, no recursion meets a deep file. libyaml parses
when PyYAML has it (several times faster), else the pure-Python parser; both give the same data and lines.
Unquoted dates stay text, as in YAML 1.2, rather than becoming ``datetime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

from parityprobe.config.yamlchecks import (
    TAG_PREFIX as _Y,
)
from parityprobe.config.yamlchecks import (
    PathPart,
    check_events,
    check_nodes,
    format_path,
    line_of,
    read_text,
    short_tag,
)
from parityprobe.errors import InputError, Problem

__all__ = ["Locator", "PathPart", "format_path", "load_yaml", "validation_problems"]

LIBYAML: bool = yaml.__with_libyaml__


@dataclass(frozen=True)
class Locator:
    """Maps a path inside a loaded document (``("steps", 2, "with")``) to its line in the file."""

    file: Path
    data: Any
    lines: dict[tuple[PathPart, ...], int] = field(default_factory=dict)

    def line(self, path: Sequence[PathPart]) -> int | None:
        """The line of ``path``, or of its deepest ancestor present in the file."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get(())

    def problem(self, path: Sequence[PathPart], message: str) -> Problem:
        return Problem(self.file, self.line(path), format_path(path) or None, message)

    def data_path(self, loc: Sequence[PathPart]) -> tuple[PathPart, ...]:
        """A pydantic error location with the parts that are not in the document (union tags) dropped."""
        out: list[PathPart] = []
        node = self.data
        parts = list(loc)
        for i, part in enumerate(parts):
            following = parts[i + 1] if i + 1 < len(parts) else None
            if isinstance(node, dict) and part in node:
                child = node[part]
                if following is not None and not isinstance(child, dict | list) and following in node:
                    continue  # a union tag that happens to equal a key (``method: token`` beside ``token:``)
                out.append(part)
                node = child
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                out.append(part)
                node = node[part]
            elif following is not None and isinstance(node, dict | list):
                continue  # a discriminator tag or validator name pydantic adds to the location
            else:
                out.append(part)
                node = None
        return tuple(out)


class _Resolver(Resolver):
    # No implicit timestamps (a date would reach probes as ``datetime``) nor ``=`` (a "value" key type
    # nothing constructs): both stay text, as YAML 1.2 reads them. A copy: PyYAML's own table is untouched.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_Y + "timestamp", _Y + "value")]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


def _checked(construct: Any) -> Any:
    def checked(constructor: SafeConstructor, node: yaml.ScalarNode) -> Any:
        try:
            return construct(constructor, node)
        except (ValueError, KeyError, ArithmeticError) as exc:
            # ``!!int abc``, ``!!bool maybe`` or an integer too long for int() fail inside PyYAML.
            shown = node.value if len(node.value) <= 20 else node.value[:20] + "…"
            problem = f"cannot read {shown!r} as {short_tag(node.tag)}"
            raise ConstructorError(None, None, problem, node.start_mark) from exc

    return checked


class _Constructor(SafeConstructor):
    # A copy of PyYAML's table with the scalar readers that can raise wrapped into located errors.
    yaml_constructors = {
        **SafeConstructor.yaml_constructors,
        **{_Y + n: _checked(SafeConstructor.yaml_constructors[_Y + n]) for n in ("int", "float", "bool")},
    }


class _Loader(Protocol):
    def __init__(self, stream: str) -> None: ...
    def get_event(self) -> yaml.Event | None: ...
    def get_single_node(self) -> yaml.Node | None: ...
    def construct_document(self, node: yaml.Node) -> Any: ...
    def dispose(self) -> None: ...


# The constructor and resolver above come first; the stock loaders' own __init__ sets every part up.
class _PythonLoader(_Constructor, _Resolver, yaml.SafeLoader):
    pass


_LOADERS: dict[bool, type[_Loader]] = {False: _PythonLoader}
if LIBYAML:

    class _CLoader(_Constructor, _Resolver, yaml.CSafeLoader):
        pass

    _LOADERS[True] = _CLoader


def load_yaml(path: Path, *, libyaml: bool | None = None) -> tuple[Any, Locator]:
    """Parse one YAML document within the limits above; every problem is an InputError with file and line.

    ``libyaml`` chooses the parser: by default libyaml's where PyYAML has it; the pure-Python one otherwise,
    and also where libyaml is asked for but missing.
    """
    text = read_text(path)
    loader_class = _LOADERS[LIBYAML if libyaml is None else (libyaml and LIBYAML)]
    try:
        check_events(loader_class(text), path)
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                check_nodes(node, path)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise InputError([_syntax_problem(path, exc)]) from None
    except yaml.YAMLError as exc:  # none is known without a mark once the text is checked; still one line
        raise InputError([Problem(path, None, None, f"invalid YAML: {_one_line(str(exc))}")]) from None
    locator = Locator(path, data)
    if node is not None:
        _index(node, locator)
    return data, locator


def _index(root: yaml.Node, locator: Locator) -> None:
    """The line of every path in the data; aliased content is located at its anchor."""
    todo: list[tuple[yaml.Node, tuple[PathPart, ...]]] = [(root, ())]
    while todo:
        node, where = todo.pop()
        locator.lines.setdefault(where, line_of(node))
        if isinstance(node, yaml.MappingNode):
            # Merge keys are flattened by now: as in the data, a later pair overrides an earlier one.
            pairs = {key_node.value: (key_node, value_node) for key_node, value_node in node.value}
            for key, (key_node, value_node) in pairs.items():
                locator.lines[(*where, key)] = line_of(key_node)
                todo.append((value_node, (*where, key)))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((item, (*where, i)) for i, item in enumerate(node.value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _syntax_problem(path: Path, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    context = exc.context or ""
    if context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
        context += f" (line {exc.context_mark.line + 1})"
    message = ": ".join(part for part in (context, exc.problem) if part)
    return Problem(path, line, None, f"invalid YAML: {_one_line(message)}")


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def validation_problems(
    error: ValidationError, locator: Locator, prefix: Sequence[PathPart] = ()
) -> list[Problem]:
    """One Problem per pydantic error, located in the file."""
    problems = []
    for err in error.errors(include_url=False):
        # "[key]" is where pydantic says a mapping's key (not its value) was wrong: the key's own path.
        loc = [part for part in (*prefix, *err["loc"]) if part != "[key]"]
        path = locator.data_path(loc)
        message = _MESSAGES.get(err["type"], err["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(locator.problem(path, message))
    return problems
