"""The ``datadog`` connector: Datadog Log Management, searched with the Logs Search API v2
(``POST /api/v2/logs/events/search``), paged by cursor.

```yaml
datadog:
  type: datadog
  site: https://api.datadoghq.eu          # the API host of the organisation's Datadog site
  api_key: {env: DD_API_KEY}              # sent as DD-API-KEY
  application_key: {env: DD_APP_KEY}      # sent as DD-APPLICATION-KEY; needs the logs_read_data permission
  indexes: [main]                         # optional: the log indexes to search (default: all)
  full_text: true                         # search every attribute, not only the message (JSON logs)
  page_size: 1000
```

One request asks for every correlation id of the query at once: ``"id1" OR "id2" …`` (free text, which
Datadog matches against the log message only), or ``*:"id1" OR *:"id2" …`` with ``full_text`` (every
attribute, the message included: what a JSON log such as a Vault audit entry needs, its correlation id
being in ``request.headers.x-correlation-id``), between the window's bounds (RFC 3339), oldest first. Each
reply's ``meta.page.after`` is sent back as ``page.cursor`` until a reply has none.

Each log becomes one event per correlation id it carries (found anywhere in it): its nested ``attributes``
flattened to dotted names, with ``service``, ``host``, ``status`` and ``tags``; a ``message`` that is a JSON
object is flattened too (attributes win over it), any other message is the ``message`` field. The event's
time is the log's ``timestamp``; the search API gives no ingestion time.

Datadog limits requests per organisation; a 429 is :class:`~parityprobe.siem.connector.SiemThrottled`,
waiting for ``Retry-After`` where the reply has one. A search that timed out on Datadog's side
(``meta.status: timeout``) answers only in part, so it is no answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from parityprobe.config.environments import http_address
from parityprobe.config.secretref import SecretRef
from parityprobe.model import ErrorKind
from parityprobe.siem.connector import (
    ConnectorSettings,
    SiemEvent,
    SiemQuery,
    SiemUnavailable,
    correlation_ids_in,
    flatten,
    parse_time,
)

if TYPE_CHECKING:
    from parityprobe.siem._http import HttpSiem

SEARCH_PATH = "/api/v2/logs/events/search"
# A lookup by correlation id matching more than this many pages is not one: no answer beats a partial one.
MAX_PAGES = 100
# Reserved attributes of a log, kept beside its own attributes.
_RESERVED = ("service", "host", "status", "tags")


class DatadogSettings(ConnectorSettings):
    """A Datadog organisation's logs: ``site``, the API address of its Datadog site
    (``https://api.datadoghq.com``, ``https://api.datadoghq.eu``, ``https://api.us5.datadoghq.com``…);
    ``api_key`` and ``application_key``, by reference; the ``indexes`` to search (all when not given);
    ``full_text``, to find the correlation ids in every attribute rather than in the message only;
    ``page_size``, logs per reply (at most 1000, Datadog's limit)."""

    name: ClassVar[str] = "datadog"
    type: Literal["datadog"]
    site: str = "https://api.datadoghq.com"
    api_key: SecretRef
    application_key: SecretRef
    indexes: list[str] | None = Field(default=None, min_length=1)
    full_text: bool = False
    page_size: int = Field(default=1000, ge=1, le=1000)

    @field_validator("site")
    @classmethod
    def _site(cls, v: str) -> str:
        return http_address(v)

    @field_validator("indexes")
    @classmethod
    def _indexes(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(not name.strip() for name in v):
            raise ValueError("an index name cannot be empty")
        return v

    def connect(self) -> DatadogConnector:
        from parityprobe.siem._http import HttpSiem

        headers = {
            "DD-API-KEY": self.api_key.secret().reveal(),
            "DD-APPLICATION-KEY": self.application_key.secret().reveal(),
        }
        http = HttpSiem(self.site, label=self.name, timeout=self.timeout_seconds, headers=headers)
        return DatadogConnector(http, self.indexes, self.page_size, full_text=self.full_text)


class DatadogConnector:
    """Searches one Datadog organisation's logs, one query for all ids, following every page."""

    def __init__(self, http: HttpSiem, indexes: list[str] | None, page_size: int, *, full_text: bool) -> None:
        self._http = http
        self.indexes = indexes
        self.page_size = page_size
        self.full_text = full_text

    def __repr__(self) -> str:
        return f"DatadogConnector({self._http.label!r})"

    def begin(self) -> None:
        """Nothing to note: every search asks for a time window."""

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if not query.correlation_ids:
            return []
        ids = sorted(query.correlation_ids)
        search_filter: dict[str, Any] = {
            "query": search_query(ids, full_text=self.full_text),
            "from": rfc3339(query.since),
            "to": rfc3339(query.until),
        }
        if self.indexes is not None:
            search_filter["indexes"] = list(self.indexes)
        page: dict[str, Any] = {"limit": self.page_size}
        body = {"filter": search_filter, "sort": "timestamp", "page": page}
        events: list[SiemEvent] = []
        cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            logs, after = self._page(self._http.send_json("POST", SEARCH_PATH, json_body=body))
            for log in logs:
                events.extend(log_events(log, ids, self._http.label))
            if after is None:
                return events
            if after in cursors:
                raise self._malformed("a page cursor repeats")
            cursors.add(after)
            page["cursor"] = after
        raise SiemUnavailable(
            f"{self._http.label}: more than {MAX_PAGES} pages of logs for {len(ids)} correlation ids",
            ErrorKind.TARGET_ERROR,
        )

    def close(self) -> None:
        self._http.close()

    def _page(self, reply: Any) -> tuple[list[Any], str | None]:
        """The logs of one reply and the cursor of the next page (None on the last)."""
        if not isinstance(reply, Mapping):
            raise self._malformed("not an object")
        logs = reply.get("data")
        if not isinstance(logs, list):
            raise self._malformed("no data list")
        meta = reply.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise self._malformed("meta is not an object")
        if meta.get("status") == "timeout":
            raise SiemUnavailable(
                f"{self._http.label}: the search timed out on Datadog's side", ErrorKind.TIMEOUT
            )
        page = meta.get("page") or {}
        after = page.get("after") if isinstance(page, Mapping) else None
        if after is not None and (not isinstance(after, str) or not after):
            raise self._malformed("meta.page.after is not a cursor")
        return logs, after

    def _malformed(self, what: str) -> SiemUnavailable:
        return SiemUnavailable(f"{self._http.label}: malformed reply ({what})", ErrorKind.TARGET_ERROR)


def search_query(ids: Sequence[str], *, full_text: bool) -> str:
    """The search for any of ``ids``, each a quoted sequence (``\\`` and ``"`` escaped)."""
    prefix = "*:" if full_text else ""
    return " OR ".join(prefix + '"' + cid.replace("\\", "\\\\").replace('"', '\\"') + '"' for cid in ids)


def rfc3339(moment: datetime) -> str:
    """``2026-11-22T09:00:00.123Z``: UTC, milliseconds (Datadog's resolution)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def log_events(log: Any, ids: Sequence[str], label: str = "datadog") -> list[SiemEvent]:
    """The events one log of a reply is for: one per correlation id it carries."""
    attributes = log.get("attributes") if isinstance(log, Mapping) else None
    if not isinstance(attributes, Mapping):
        raise SiemUnavailable(f"{label}: malformed reply (a log without attributes)", ErrorKind.TARGET_ERROR)
    # Each value as it is (a JSON dump would escape quotes and backslashes an id may hold).
    found = correlation_ids_in("\n".join(flatten(attributes).values()), ids)
    if not found:
        return []
    fields: dict[str, str] = flatten({key: attributes.get(key) for key in _RESERVED})
    message = attributes.get("message")
    parsed = _json_object(message)
    if parsed is not None:
        fields.update(flatten(parsed))
    elif message is not None:
        fields["message"] = str(message)
    nested = attributes.get("attributes")
    if isinstance(nested, Mapping):
        fields.update(flatten(nested))
    frozen = MappingProxyType(fields)
    moment = parse_time(attributes.get("timestamp"))
    return [SiemEvent(cid, moment, frozen) for cid in found]


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
