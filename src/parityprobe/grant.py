"""The access a probe received, and the one table that says how each of its fields is shown, recorded and
compared.

Every place that handles grant fields — the codec, the reports, the comparison rules — walks
:data:`GRANT_FIELDS` instead of naming fields, so a field added here is recorded, rendered and compared
everywhere at once. Plane-specific values that still compare (an OAuth scope string, a certificate issuer)
go into ``attributes``: each key is compared for equality and rendered as ``key value``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from parityprobe.config.durations import humanise

_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Grant:
    """The access actually received, normalised so environments can be compared.

    Every field is optional: a probe fills what its action reveals. ``identity`` is the principal the
    target saw (an ARN, a Vault role), with per-call parts such as the correlation id already replaced;
    ``version`` is a version number (KV), ``stages`` the labels a version carries (``AWSCURRENT``).
    """

    ttl_seconds: int | None = None
    max_ttl_seconds: int | None = None
    policies: frozenset[str] | None = None
    identity: str | None = None
    renewable: bool | None = None
    version: int | None = None
    stages: frozenset[str] | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: _NO_ATTRIBUTES)

    def filled(self) -> list[tuple[GrantField, Any]]:
        """The table's fields this grant has a value for, in table order (attributes not included)."""
        return [(f, value) for f in GRANT_FIELDS if (value := getattr(self, f.name)) is not None]

    def lines(self) -> list[str]:
        """The grant as short lines for people: ``ttl 1h``, ``policies a, b``, then ``key value`` pairs."""
        out = [f.line(value) for f, value in self.filled()]
        out.extend(f"{key} {value}" for key, value in sorted(self.attributes.items()))
        return out


class Kind(enum.Enum):
    """How a field's value is written in text and in records."""

    DURATION = "duration"  # whole seconds
    NUMBER = "number"
    TEXT = "text"
    FLAG = "flag"
    NAMES = "names"  # a set of names, recorded sorted
    MOMENT = "moment"  # a timezone-aware UTC timestamp


class Rule(enum.Enum):
    """How environments' values of a field are compared."""

    TOLERANCE = "tolerance"  # durations: equal within the step's tolerance (or the default)
    EQUAL = "equal"
    IDENTITY = "identity"  # equal once each environment's vars are replaced by their names
    NONE = "none"  # differs legitimately between environments (a version number, a timestamp)


# Environments legitimately differ by a few seconds of clock and request time; relative tolerance covers
# the rest of the noise in long TTLs.
DEFAULT_TOLERANCE_SECONDS = 60
DEFAULT_TOLERANCE_RATIO = 0.10


@dataclass(frozen=True)
class GrantField:
    """One grant field: its label for people, its kind, how it compares, and what a difference means."""

    name: str
    label: str
    kind: Kind
    rule: Rule
    differs: str = ""  # "granted TTLs differ": the finding's message when environments differ
    why: str = ""  # the finding's explanation

    def show(self, value: Any) -> str:
        """The value as text: ``24h``, ``a, b`` (``(none)`` for an empty set), ``true``."""
        return _SHOW[self.kind](value)

    def line(self, value: Any) -> str:
        if self.kind is Kind.FLAG:
            return self.label if value else f"not {self.label}"
        return f"{self.label} {self.show(value)}"

    def record(self, value: Any) -> Any:
        """The value as JSON (sets sorted, moments in ISO-8601 UTC)."""
        return _RECORD[self.kind](value)

    def read(self, value: Any) -> Any:
        """The value back from JSON; ValueError for a value of the wrong type."""
        return _READ[self.kind](value)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC; a naive timestamp (which the model should never hold) is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _moment(value: datetime) -> str:
    # People read seconds; the record keeps the full precision.
    return iso_utc(value.replace(microsecond=0)).replace("+00:00", "Z")


def _names(value: frozenset[str]) -> str:
    return ", ".join(sorted(value)) or "(none)"


def _read_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, not {value!r}")
    return value


def _read_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, not {value!r}")
    return value


def _read_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, not {value!r}")
    return value


def _read_names(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of names, not {value!r}")
    return frozenset(_read_str(v) for v in value)


def _read_moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(_read_str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_SHOW: dict[Kind, Callable[[Any], str]] = {
    Kind.DURATION: humanise,
    Kind.NUMBER: str,
    Kind.TEXT: str,
    Kind.FLAG: lambda v: str(v).lower(),
    Kind.NAMES: _names,
    Kind.MOMENT: _moment,
}
_RECORD: dict[Kind, Callable[[Any], Any]] = {
    Kind.DURATION: int,
    Kind.NUMBER: int,
    Kind.TEXT: str,
    Kind.FLAG: bool,
    Kind.NAMES: sorted,
    Kind.MOMENT: iso_utc,
}
_READ: dict[Kind, Callable[[Any], Any]] = {
    Kind.DURATION: _read_int,
    Kind.NUMBER: _read_int,
    Kind.TEXT: _read_str,
    Kind.FLAG: _read_bool,
    Kind.NAMES: _read_names,
    Kind.MOMENT: _read_moment,
}

GRANT_FIELDS: tuple[GrantField, ...] = (
    GrantField(
        "ttl_seconds",
        "ttl",
        Kind.DURATION,
        Rule.TOLERANCE,
        "granted TTLs differ",
        "Expiry and renewal behave differently.",
    ),
    GrantField(
        "max_ttl_seconds",
        "max ttl",
        Kind.DURATION,
        Rule.TOLERANCE,
        "maximum TTLs differ",
        "A credential renewable for longer in one environment hides expiry failures in the other.",
    ),
    GrantField(
        "policies",
        "policies",
        Kind.NAMES,
        Rule.EQUAL,
        "attached policies differ",
        "The credentials reach different paths.",
    ),
    GrantField(
        "identity",
        "identity",
        Kind.TEXT,
        Rule.IDENTITY,
        "the identity received differs (after substituting each environment's vars)",
        "The workload acts as a different principal; policies for one will not match the other.",
    ),
    GrantField("version", "version", Kind.NUMBER, Rule.NONE),
    GrantField(
        "stages",
        "stages",
        Kind.NAMES,
        Rule.EQUAL,
        "version stages differ",
        "The environments serve a different stage of the secret; rotation is not in the same state.",
    ),
    GrantField(
        "renewable",
        "renewable",
        Kind.FLAG,
        Rule.EQUAL,
        "renewability differs",
        "A token renewable in one environment only hides renewal failures.",
    ),
    GrantField("issued_at", "issued", Kind.MOMENT, Rule.NONE),
    GrantField("expires_at", "expires", Kind.MOMENT, Rule.NONE),
)
FIELDS_BY_NAME: Mapping[str, GrantField] = MappingProxyType({f.name: f for f in GRANT_FIELDS})


def attribute_field(key: str) -> GrantField:
    """The descriptor of a plane-specific attribute: text, compared for equality."""
    return GrantField(
        f"attributes.{key}",
        key,
        Kind.TEXT,
        Rule.EQUAL,
        f"{key} differs",
        "A plane-specific property of the access received differs between environments.",
    )
