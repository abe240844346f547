"""What a probe's parameter model accepts at each place inside a value.

``list[Secret]`` takes a Secret at ``[0]``, ``dict[str, str]`` a string at ``.key``, a nested model its
fields at ``.name``; unions and ``Annotated`` are looked through. The plan uses this to decide where a
secret output may go, at any depth of a ``with`` value.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel

from parityprobe.config.yamlsource import PathPart
from parityprobe.secret import Secret

_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_MAPPINGS = (dict, collections.abc.Mapping)
_DEPTH = 4  # how deep secret_places looks: a recursive model would not end


def _options(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [option for arg in typing.get_args(annotation) for option in _options(arg)]
    return [annotation]


def _items(option: Any) -> list[tuple[str, Any]]:
    """What a container type holds, by place: ``[]`` any item, ``[i]``, ``.*`` any value, ``.name``."""
    origin = typing.get_origin(option) or option
    args = typing.get_args(option)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return [(f"[{i}]", arg) for i, arg in enumerate(args)]
    if isinstance(origin, type) and issubclass(origin, _SEQUENCES) and not issubclass(origin, str | bytes):
        return [("[]", args[0] if args else Any)]
    if isinstance(origin, type) and issubclass(origin, _MAPPINGS):
        return [(".*", args[1] if len(args) == 2 else Any)]
    if isinstance(option, type) and issubclass(option, BaseModel):
        return [(f".{f.alias or n}", f.annotation) for n, f in option.model_fields.items()]
    return []


def types_at(annotation: Any, sub: tuple[PathPart, ...]) -> list[Any]:
    """The types accepted at ``sub`` inside a value of ``annotation`` (empty: nothing fits there)."""
    options = _options(annotation)
    if not sub:
        return options
    part, rest = sub[0], sub[1:]
    wanted = ("[]", f"[{part}]") if isinstance(part, int) else (".*", f".{part}")
    found: list[Any] = []
    for option in options:
        if option is Any:
            found.append(Any)
        for place, child in _items(option):
            if place in wanted:
                found.extend(types_at(child, rest))
    return found


def takes_secret(accepted: list[Any]) -> bool:
    """Whether a Secret fits (an ``Any`` place does not count: the probe would not keep it whole)."""
    return Secret in accepted


def secret_only(accepted: list[Any]) -> bool:
    """A place that takes a Secret and no text: only a secret output fits."""
    return Secret in accepted and str not in accepted and Any not in accepted


def secret_places(model: type[BaseModel]) -> list[str]:
    """Where a parameter model takes a Secret: ``token``, ``tokens[]``, ``headers.*``."""

    def walk(annotation: Any, name: str, depth: int) -> list[str]:
        places: list[str] = []
        for option in _options(annotation):
            if option is Secret:
                places.append(name)
            elif depth < _DEPTH:
                for place, child in _items(option):
                    places.extend(walk(child, name + place, depth + 1))
        return places

    fields = model.model_fields
    return list(dict.fromkeys(p for n, info in fields.items() for p in walk(info.annotation, n, 0)))
