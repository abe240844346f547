"""YAML with positions: every key and list item is mapped to its line, so any problem can name it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from parityprobe.errors import InputError, Problem

PathPart = str | int


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


def format_path(path: Sequence[PathPart]) -> str:
    """``steps[2].with.path`` for ``("steps", 2, "with", "path")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml(path: Path) -> tuple[Any, Locator]:
    """Parse one YAML document; syntax errors and duplicate keys become an InputError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(path, None, None, f"cannot read file: {exc.strerror}")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise InputError([Problem(path, line, None, f"invalid YAML: {message}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(path, None, None, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    locator = Locator(path, data)
    problems: list[Problem] = []
    if node is not None:
        _index(node, (), locator, problems)
    if problems:
        raise InputError(problems)
    return data, locator


def _index(node: yaml.Node, path: tuple[PathPart, ...], loc: Locator, problems: list[Problem]) -> None:
    loc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                problems.append(
                    Problem(
                        loc.file, key_node.start_mark.line + 1, format_path((*path, key)), "duplicate key"
                    )
                )
            seen.add(key)
            loc.lines[(*path, key)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key), loc, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), loc, problems)


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
        path = locator.data_path((*prefix, *err["loc"]))
        message = _MESSAGES.get(err["type"], err["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(locator.problem(path, message))
    return problems
