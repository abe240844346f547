"""Durations in input files: ``90``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"`` → whole seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: Any) -> int:
    """Seconds in ``value``; ValueError with a message fit for the user otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 5m, 1h")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
            return days * 86400 + hours * 3600 + minutes * 60 + seconds
    raise ValueError(f"expected a duration such as 90s, 5m, 1h, not {value!r}")


def humanise(seconds: int) -> str:
    """A duration as people say it: ``86400`` → ``24h``, ``3598`` → ``59m 58s``, ``0`` → ``0s``."""
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return " ".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


_JSON_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"},
    ],
    "description": "seconds, or a duration such as 90s, 5m, 1h30m, 2d",
}

Duration = Annotated[int, BeforeValidator(parse_duration), WithJsonSchema(_JSON_SCHEMA)]
