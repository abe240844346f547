"""What a SIEM connector is: its settings (one entry of an environment's ``siem.connectors``), the query it
answers, the events it returns, and the two ways it says it has no answer.

A connector type is a plugin: the ``parityprobe.siem`` entry point named for the type points at its
settings model (a :class:`ConnectorSettings` with ``type: Literal["<name>"]``), which imports pydantic only;
:meth:`ConnectorSettings.connect` imports whatever SDK the connector needs, when a run first queries it.

One :meth:`SiemConnector.search` answers for every pending correlation id of a run at once: the wait phase
never asks per id. Each event returned names the correlation id it carries (:func:`correlation_ids_in`
finds them in a raw record) and its fields flattened to dotted names (:func:`flatten`), which a step's
``match`` is checked against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from parityprobe.model import ErrorKind

SIEM_GROUP = "parityprobe.siem"
_NO_FIELDS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SiemQuery:
    """Every pending correlation id of a run, and the time window to search (action times to now, widened
    by the connector's clock skew allowance)."""

    correlation_ids: frozenset[str]
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class SiemEvent:
    """One event the SIEM holds for one of the query's correlation ids.

    ``time``: when the event happened, by the SIEM's record (an audit entry's ``time``, a log event's
    timestamp); ``ingested_at``: when the SIEM received it, where its API says (None otherwise).
    ``fields``: the record flattened to dotted names (:func:`flatten`), values as text.
    """

    correlation_id: str
    time: datetime | None
    fields: Mapping[str, str] = field(default_factory=lambda: _NO_FIELDS)
    ingested_at: datetime | None = None


class SiemUnavailable(Exception):
    """The SIEM gave no answer this time (unreachable, timed out, refused our credentials, answered
    something unreadable): the reason is for people and never holds a secret."""

    def __init__(self, reason: str, kind: ErrorKind = ErrorKind.TARGET_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class SiemThrottled(SiemUnavailable):
    """The SIEM asked us to slow down (HTTP 429, a throttling error); ``retry_after`` seconds if it said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason, ErrorKind.THROTTLED)
        self.retry_after = retry_after


class SiemConnector(Protocol):
    """A connection to one SIEM, made when a run with SIEM expectations starts and closed after its wait
    phase."""

    def begin(self) -> None:
        """Called once, before the run's first step: a connector that follows a stream notes where it
        stands (most query a time window and do nothing here). Raises nothing: a SIEM unreachable now is
        asked again at the wait."""
        ...

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        """Every event in the window carrying one of the query's correlation ids (all pages).

        Raises :class:`SiemThrottled` or :class:`SiemUnavailable` when it has no answer; the wait phase
        treats any other exception as a connector fault (no verdict, never an absence).
        """
        ...

    def close(self) -> None: ...


class ConnectorSettings(BaseModel):
    """Base of a connector type's settings: ``type`` (its entry-point name) and what every connector has.

    Secret fields are :class:`~parityprobe.config.secretref.SecretRef` (resolved when the environments file
    loads, like every section's); relative file paths are made relative to the environments file by
    :meth:`resolve_paths`.
    """

    model_config = ConfigDict(extra="forbid")

    type: str
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # How far the SIEM's clock (or its event times) may be behind ours: the window starts that much earlier.
    clock_skew_seconds: float = Field(default=60.0, ge=0, le=3600)

    name: ClassVar[str]

    def connect(self) -> SiemConnector:
        """A connector for these settings (imports its SDK now, not when the file loads)."""
        raise NotImplementedError

    def resolve_paths(self, base_dir: Path) -> None:
        """Make relative file paths relative to the environments file's directory."""


def flatten(record: Any, prefix: str = "") -> dict[str, str]:
    """A JSON record as dotted names to text: ``{"request": {"path": "a"}}`` → ``{"request.path": "a"}``.
    A list of scalars becomes its items joined by ``,`` (audited headers are lists of one); a list of
    objects is indexed (``a.0.b``); None is left out."""
    out: dict[str, str] = {}
    if isinstance(record, Mapping):
        for key, value in record.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(record, list):
        if all(not isinstance(v, Mapping | list) for v in record):
            items = [_text(v) for v in record if v is not None]
            if prefix:
                out[prefix[:-1]] = ",".join(items)
        else:
            for index, value in enumerate(record):
                out.update(flatten(value, f"{prefix}{index}."))
    elif record is not None and prefix:
        out[prefix[:-1]] = _text(record)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def correlation_ids_in(text: str, ids: Iterable[str]) -> list[str]:
    """The ids that occur in ``text`` as whole tokens (``pp-abc-login`` is not found in
    ``pp-abc-login-2``), in the order given.

    Linear in the text, whatever the number of ids: the text's tokens are collected once and the ids looked
    up among them (a correlation id is made of token characters only; an id that is not is searched for).
    """
    wanted = list(ids)
    if not wanted:
        return []
    tokens = set(_TOKEN.findall(text))
    return [cid for cid in wanted if (cid in tokens if _TOKEN.fullmatch(cid) else _occurs(text, cid))]


_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


def _occurs(text: str, cid: str) -> bool:
    start = text.find(cid)
    while start != -1:
        end = start + len(cid)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not _TOKEN.fullmatch(before) and not _TOKEN.fullmatch(after):
            return True
        start = text.find(cid, start + 1)
    return False


def parse_time(value: Any) -> datetime | None:
    """An event time as an aware UTC datetime: RFC 3339 text (nanoseconds cut to micro), or epoch
    seconds or milliseconds; None when it is neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):  # out of range, or NaN: not a time
            return None
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_from_json(line: str, ids: Iterable[str], time_field: str = "time") -> list[SiemEvent]:
    """The events one JSON record is for: one per correlation id it carries (usually one); none when it
    carries none or is not a JSON object. Its time is ``time_field`` (dotted) of the record."""
    found = correlation_ids_in(line, ids)
    if not found:
        return []
    try:
        record = json.loads(line)
    except ValueError:
        return []
    if not isinstance(record, dict):
        return []
    fields = flatten(record)
    moment = parse_time(_dotted(record, time_field))
    frozen = MappingProxyType(fields)
    return [SiemEvent(cid, moment, frozen) for cid in found]


def _dotted(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
