"""The ``loki`` connector: Grafana Loki's ``query_range`` over the streams a LogQL selector names.

```yaml
audit:
  type: loki
  base_url: https://loki.example.com:3100
  selector: '{job="vault-audit"}'
  tenant: platform                      # optional: X-Scope-OrgID, for a multi-tenant Loki
  token: {env: LOKI_TOKEN}              # optional: Authorization: Bearer
  # or: username: "123456"              #   Grafana Cloud: the stack's user and an access policy token
  #     password: {env: LOKI_PASSWORD}
  limit: 1000
```

One query answers for every pending correlation id: ``GET /loki/api/v1/query_range`` with
``query=<selector> |~ "<id1>|<id2>|…"`` (the ids regex-escaped), ``start`` and ``end`` in nanoseconds (the
query window; ``end`` is exclusive, so one nanosecond is added), ``direction=forward`` and ``limit``. The
line filter is a substring match: each line is then checked for whole ids
(:func:`~parityprobe.siem.connector.correlation_ids_in`).

Loki has no cursor. A page holding ``limit`` entries (across all streams) may not be the last: the next
query starts at the last page's latest timestamp — inclusive, so entries sharing that nanosecond are not
lost — and entries already seen (same stream, timestamp and line) are dropped. If more than ``limit``
entries share one nanosecond, a page brings nothing new; the query then moves one nanosecond on, and those
beyond ``limit`` at that instant are not seen (raise ``limit`` if your streams are that dense).

Each line that is a JSON object is flattened (a Vault audit line); any other line is the field ``line``.
The stream's labels are added as ``labels.<name>``. ``time`` is the line's own ``time_field`` (dotted)
when it has one, else the entry's timestamp; Loki exposes no ingestion time, so ``ingested_at`` is None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from parityprobe.config.secretref import SecretRef
from parityprobe.model import ErrorKind
from parityprobe.siem.connector import (
    SiemEvent,
    SiemQuery,
    SiemUnavailable,
    correlation_ids_in,
    flatten,
)
from parityprobe.siem.http_settings import HttpConnector, HttpConnectorSettings, authorization, one_credential

if TYPE_CHECKING:
    pass

QUERY_RANGE_PATH = "/loki/api/v1/query_range"
TENANT_HEADER = "X-Scope-OrgID"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A lookup by correlation id that needs more pages than this is not one: stop rather than run on.
MAX_PAGES = 200

# (labels, timestamp in ns, line): what makes an entry the same entry on two pages.
_Entry = tuple[tuple[tuple[str, str], ...], int, str]


class LokiSettings(HttpConnectorSettings):
    """A Loki (or Grafana Cloud Logs) endpoint: ``base_url``, the ``selector`` (a LogQL stream selector,
    ``{job="vault-audit"}``) of the streams holding the events, the ``tenant`` for a multi-tenant Loki,
    credentials by reference (a bearer ``token``, or ``username`` with ``password`` for HTTP Basic), and
    ``limit`` entries per page (Loki's ``max_entries_limit_per_query`` is 5,000 by default). ``time_field``
    (dotted) is the event time in a JSON line. ``verify_tls`` and ``ca_cert`` say how the server's
    certificate is checked."""

    name: ClassVar[str] = "loki"
    type: Literal["loki"]
    selector: str = Field(pattern=r"^\{.*\}$", max_length=4096)
    tenant: str | None = Field(default=None, pattern=r"^[A-Za-z0-9!\-_.*'()|]{1,150}$")
    token: SecretRef | None = None
    username: str | None = Field(default=None, min_length=1)
    password: SecretRef | None = None
    limit: int = Field(default=1000, ge=1, le=5000)
    time_field: str = Field(default="time", min_length=1)

    @model_validator(mode="after")
    def _one_credential(self) -> LokiSettings:
        one_credential(self.username, self.password, self.token, "token")
        return self

    def connect(self) -> LokiConnector:
        headers = authorization("Bearer", self.token, self.username, self.password)
        if self.tenant is not None:
            headers[TENANT_HEADER] = self.tenant
        client = self.http_client(headers)
        return LokiConnector(client, self)


def logql(selector: str, ids: Sequence[str]) -> str:
    """``<selector> |~ "<id1>|<id2>…"``: the ids regex-escaped (Go's regexp takes any escaped punctuation
    as itself), then written as a LogQL double-quoted string."""
    pattern = "|".join(re.escape(cid) for cid in sorted(ids))
    literal = pattern.replace("\\", "\\\\").replace('"', '\\"')
    return f'{selector} |~ "{literal}"'


def to_ns(moment: datetime) -> int:
    """A datetime as integer nanoseconds since the epoch (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


class LokiConnector(HttpConnector[LokiSettings]):
    """Queries one selector's streams, page after page; holds its HTTP client between polls."""

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if not query.correlation_ids:
            return []
        params = {
            "query": logql(self._settings.selector, list(query.correlation_ids)),
            "end": str(to_ns(query.until) + 1),
            "direction": "forward",
            "limit": str(self._settings.limit),
        }
        start = to_ns(query.since)
        seen: set[_Entry] = set()
        events: list[SiemEvent] = []
        for _ in range(MAX_PAGES):
            reply = self._client.send_json("GET", QUERY_RANGE_PATH, params={**params, "start": str(start)})
            page = self._entries(reply)
            new = [entry for entry in page if entry not in seen]
            seen.update(new)
            for labels, ts, line in new:
                events.extend(self._events(labels, ts, line, query.correlation_ids))
            if len(page) < self._settings.limit:
                return events
            latest = max(ts for _, ts, _ in page)
            # Inclusive: entries at ``latest`` beyond this page come next; none new means none can.
            start = latest if new else latest + 1
        raise SiemUnavailable(
            f"{self._client.label}: more than {MAX_PAGES} pages of events for these ids",
            ErrorKind.TARGET_ERROR,
        )

    def _entries(self, reply: Any) -> list[_Entry]:
        if not isinstance(reply, dict) or reply.get("status") != "success":
            raise self._malformed("status is not success")
        data = reply.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "streams":
            raise self._malformed("result type is not streams")
        streams = data.get("result")
        if not isinstance(streams, list):
            raise self._malformed("no data.result list")
        entries: list[_Entry] = []
        for stream in streams:
            if not isinstance(stream, dict):
                raise self._malformed("a stream that is not an object")
            labels = stream.get("stream") or {}
            values = stream.get("values")
            if not isinstance(labels, dict) or not isinstance(values, list):
                raise self._malformed("a stream without labels and values")
            key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
            for value in values:
                # [ts, line] or [ts, line, structured metadata] (newer Loki, on request)
                if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
                    raise self._malformed("an entry that is not [timestamp, line]")
                try:
                    ts = int(value[0])
                except (TypeError, ValueError):
                    raise self._malformed("a timestamp that is not nanoseconds") from None
                entries.append((key, ts, value[1]))
        return entries

    def _events(
        self, labels: tuple[tuple[str, str], ...], ts: int, line: str, ids: frozenset[str]
    ) -> list[SiemEvent]:
        from parityprobe.siem._http import parse_when

        found = correlation_ids_in(line, ids)
        if not found:
            return []
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        fields = flatten(record) if isinstance(record, dict) else {"line": line}
        for name, value in labels:
            fields.setdefault(f"labels.{name}", value)
        moment = parse_when(fields.get(self._settings.time_field)) if isinstance(record, dict) else None
        if moment is None:
            try:
                moment = _EPOCH + timedelta(microseconds=ts // 1000)
            except OverflowError:
                moment = None
        frozen = MappingProxyType(fields)
        return [SiemEvent(cid, moment, frozen) for cid in found]

    def _malformed(self, what: str) -> SiemUnavailable:
        from parityprobe.siem._http import malformed

        return malformed(self._client.label, what)
