"""A small block-style YAML writer for mutated trees.

PyYAML's own emitter cannot write what the fuzzer needs: duplicate keys, raw tags and aliases, text that
is not a value at all. This one writes mappings and lists in block style (so errors have lines to name),
every string double-quoted (JSON escapes are valid YAML double-quoted escapes, which is how lone
surrogates and control characters reach the loader), and :class:`Raw` fragments as they are.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tests.fuzz.fragments import Raw

_SURROGATE = re.compile("[\ud800-\udfff]")


class DupMap(list[tuple[Any, Any]]):
    """A mapping written as its pairs, in order, so a key can appear twice."""


def emit(value: Any) -> str:
    """``value`` as a YAML document."""
    lines: list[str] = []
    _block(value, 0, lines)
    return "\n".join(lines) + "\n"


def _pairs(value: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(value, DupMap):
        return list(value)
    if isinstance(value, dict):
        return list(value.items())
    return None


def _inline(value: Any) -> bool:
    if isinstance(value, Raw):
        return not value.block
    if isinstance(value, dict | list):
        return not value
    return True


def _block(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, Raw) and value.block:
        lines.extend(pad + line for line in value.text.split("\n"))
        return
    pairs = _pairs(value)
    if pairs:
        for key, item in pairs:
            if _inline(item):
                lines.append(f"{pad}{_key(key)}: {_scalar(item)}")
            else:
                lines.append(f"{pad}{_key(key)}:")
                _block(item, indent + 2, lines)
    elif isinstance(value, list) and value:
        for item in value:
            if _inline(item):
                lines.append(f"{pad}- {_scalar(item)}")
            else:
                lines.append(f"{pad}-")
                _block(item, indent + 2, lines)
    else:
        lines.append(pad + _scalar(value))


def _key(key: Any) -> str:
    if isinstance(key, Raw):
        return key.text
    return _scalar(key)


def _scalar(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict | DupMap):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    text = str(value)
    # A lone surrogate cannot be written as UTF-8: the \u escape gets it to the loader anyway.
    surrogate = _SURROGATE.search(text) is not None
    return json.dumps(text, ensure_ascii=surrogate)
