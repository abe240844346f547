"""The limits of every input file, checked before anything is built: size, encoding, depth, aliases, expanded
size, tags and keys. Each refusal is an InputError naming the file, the line and, where known, the field.

Depth and expanded size are measured by one iterative pass over the parser's events, memoised per anchor:
nothing is expanded to measure it, and no recursion meets a deep file. See
:mod:`parityprobe.config.yamlsource` for the limits' reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from yaml.reader import Reader

from parityprobe.errors import InputError, Problem

PathPart = str | int

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 500
MAX_NODES = 100_000

TAG_PREFIX = "tag:yaml.org,2002:"
_Y = TAG_PREFIX
_DATA_TAGS = frozenset(_Y + name for name in ("str", "int", "float", "bool", "null", "seq", "map"))
_KEY_TAGS = (_Y + "str", _Y + "merge")
_KINDS = {_Y + "int": "a number", _Y + "float": "a number", _Y + "bool": "a boolean", _Y + "null": "null"}
_PLAIN = "input files hold plain data (text, numbers, booleans, null, lists, mappings)"


class EventSource(Protocol):
    """A PyYAML parser, pure-Python or libyaml's: what the event pass needs of it."""

    def get_event(self) -> Any: ...

    def dispose(self) -> None: ...


def format_path(path: Sequence[PathPart]) -> str:
    """``steps[2].with.path`` for ``("steps", 2, "with", "path")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_text(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # never more, whatever the file is
    except OSError as exc:
        raise InputError([Problem(path, None, None, f"cannot read file: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        line = raw.count(b"\n", 0, MAX_FILE_BYTES) + 1
        message = f"file is larger than {MAX_FILE_BYTES >> 20} MiB (the limit for input files)"
        raise InputError([Problem(path, line, None, message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[start : exc.start].decode("utf-8", "replace")) + 1
        message = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} cannot be decoded"
        raise InputError([Problem(path, raw.count(b"\n", 0, exc.start) + 1, None, message)]) from None
    # The parsers refuse these too, but without a line; PyYAML's own set of allowed characters, libyaml's too.
    bad = Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        column = bad.start() - text.rfind("\n", 0, bad.start())
        message = f"control character U+{ord(bad.group()):04X} at column {column} is not allowed in YAML"
        raise InputError([Problem(path, text.count("\n", 0, bad.start()) + 1, None, message)])
    return text


@dataclass(slots=True)
class _Open:
    """A list or mapping whose end event has not come yet."""

    anchor: str | None
    mapping: bool
    nodes_before: int
    children: int = 0  # keys, values or items finished inside it
    key: str | None = None  # a mapping's last key, when it is a scalar
    height: int = 0  # levels of nesting among its children


def check_events(parser: EventSource, path: Path) -> None:
    """Depth, alias count and expanded size, measured without recursion and without expanding any alias."""
    sizes: dict[str, tuple[int, int]] = {}  # anchor → nodes and height of its node, once finished
    stack: list[_Open] = []
    nodes = aliases = 0
    try:
        while (event := parser.get_event()) is not None:
            # Scalars first: they are most of the events.
            if isinstance(event, yaml.ScalarEvent):
                nodes, height = nodes + 1, 0
                if event.anchor is not None:
                    sizes[event.anchor] = (1, 0)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise _limit(path, event, stack, f"nested more than {MAX_DEPTH} levels deep")
                stack.append(_Open(event.anchor, isinstance(event, yaml.MappingStartEvent), nodes))
                nodes += 1
                continue
            elif isinstance(event, yaml.CollectionEndEvent):
                done = stack.pop()
                size, height = nodes - done.nodes_before, done.height + 1
                if done.anchor is not None:
                    sizes[done.anchor] = (size, height)
            elif isinstance(event, yaml.AliasEvent) and event.anchor is not None:
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _limit(path, event, stack, f"more than {MAX_ALIASES} aliases")
                if any(o.anchor == event.anchor for o in stack):
                    raise _limit(
                        path, event, stack, f"alias *{event.anchor} refers to a node that contains it"
                    )
                size, height = sizes.get(event.anchor, (1, 0))  # an undefined one: the composer says so
                nodes += size
                if len(stack) + height > MAX_DEPTH:
                    message = f"nested more than {MAX_DEPTH} levels deep once aliases are expanded"
                    raise _limit(path, event, stack, message)
            else:
                continue  # stream and document events
            if nodes > MAX_NODES:
                raise _limit(path, event, stack, f"more than {MAX_NODES} nodes with aliases expanded")
            if stack:
                parent = stack[-1]
                if parent.mapping and not parent.children % 2:
                    parent.key = event.value if isinstance(event, yaml.ScalarEvent) else None
                parent.children += 1
                if height > parent.height:
                    parent.height = height
    finally:
        parser.dispose()


def _limit(path: Path, event: yaml.Event, stack: list[_Open], message: str) -> InputError:
    where: list[PathPart] = []
    for o in stack:
        if o.mapping and (o.children % 2 == 0 or o.key is None):
            break  # inside a key: the mapping is as precise as a path can be
        where.append(o.key if o.mapping and o.key is not None else o.children)
    line = event.start_mark.line + 1 if event.start_mark is not None else None
    return InputError([Problem(path, line, format_path(where) or None, message)])


def check_nodes(root: yaml.Node, path: Path) -> None:
    """Known tags, text keys, no duplicate keys; each node checked once, however many aliases name it."""
    problems: list[Problem] = []
    seen: set[int] = set()
    todo: list[tuple[yaml.Node, tuple[PathPart, ...]]] = [(root, ())]
    while todo:
        node, where = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _DATA_TAGS:
            message = f"YAML tag {short_tag(node.tag)} is not supported: {_PLAIN}"
            problems.append(Problem(path, line_of(node), format_path(where) or None, message))
        elif isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _KEY_TAGS:
                    problems.append(_key_problem(path, key_node, where))
                    continue
                key = key_node.value
                if key in keys:
                    problems.append(
                        Problem(path, line_of(key_node), format_path((*where, key)), "duplicate key")
                    )
                keys.add(key)
                # Merged content (``<<: *base``) belongs to this very mapping.
                todo.append((value_node, where if key_node.tag == _Y + "merge" else (*where, key)))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((item, (*where, i)) for i, item in enumerate(node.value))
    if problems:
        raise InputError(sorted(problems, key=lambda p: p.line or 0))


def _key_problem(path: Path, key_node: yaml.Node, where: tuple[PathPart, ...]) -> Problem:
    if not isinstance(key_node, yaml.ScalarNode):
        kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
        return Problem(
            path, line_of(key_node), format_path(where) or None, f"mapping key must be text, not {kind}"
        )
    if key_node.tag in _KINDS:
        message = f"mapping key must be text, not {_KINDS[key_node.tag]}: quote it"
    else:
        message = f"mapping key must be text, not {short_tag(key_node.tag)}"
    return Problem(path, line_of(key_node), format_path((*where, key_node.value)), message)


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_Y) if tag.startswith(_Y) else tag
