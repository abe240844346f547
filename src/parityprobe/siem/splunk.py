"""The ``splunk`` connector: Splunk's REST search export (management port), JSON output.

```yaml
audit:
  type: splunk
  base_url: https://splunk.example.com:8089     # the management port, not Splunk Web
  token: {env: SPLUNK_TOKEN}                    # an authentication token: Authorization: Bearer
  index: vault
  sourcetype: hashicorp_vault_audit_log         # optional
  ca_cert: /etc/ssl/splunk-ca.pem               # optional; or verify_tls: false
```

One search answers for every pending correlation id: ``POST /services/search/v2/jobs/export`` with
``search=search index=<index> [sourcetype="<st>"] ("<id1>" OR "<id2>" …)``, ``earliest_time`` and
``latest_time`` (epoch seconds: the query window), ``output_mode=json``. Quoted terms match the ids
whatever the event's shape (hyphens are minor breakers, so a quoted id is a phrase of its parts); each
result's ``_raw`` is then checked for whole ids (:func:`~parityprobe.siem.connector.correlation_ids_in`).

The export endpoint streams every result of the search, as newline-delimited JSON objects, and ends when
the search is done: there are no pages to follow. ``preview`` rows are skipped (the final rows follow);
an ``ERROR`` or ``FATAL`` message in the stream (a failed search, results missing from a peer) means no
answer, never "nothing found".

Each result's ``_raw`` is parsed as JSON when it is one (a Vault audit line) and flattened; otherwise the
result's own fields are. ``time`` is the result's ``_time`` (the event time Splunk extracted, normally the
audit entry's ``time``); ``ingested_at`` is ``_indextime``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from parityprobe.config.secretref import SecretRef
from parityprobe.siem.connector import (
    SiemEvent,
    SiemQuery,
    SiemUnavailable,
    correlation_ids_in,
    flatten,
)
from parityprobe.siem.http_settings import HttpConnector, HttpConnectorSettings, authorization

if TYPE_CHECKING:
    pass

EXPORT_PATH = "/services/search/v2/jobs/export"
# Splunk index names: letters, digits, underscores and hyphens (``*`` for a wildcard).
_INDEX_PATTERN = r"^[A-Za-z0-9_*][A-Za-z0-9_\-*]{0,79}$"
_FAILED_MESSAGES = frozenset({"ERROR", "FATAL"})


class SplunkSettings(HttpConnectorSettings):
    """A Splunk search head's REST API: ``base_url`` (the management port, 8089 by default), ``token`` (a
    Splunk authentication token, by reference, sent as ``Authorization: Bearer``), the ``index`` to search
    and, optionally, the ``sourcetype``. ``verify_tls`` and ``ca_cert`` (a PEM bundle, relative to the
    environments file) say how the server's certificate is checked."""

    name: ClassVar[str] = "splunk"
    type: Literal["splunk"]
    token: SecretRef
    index: str = Field(pattern=_INDEX_PATTERN)
    sourcetype: str | None = Field(default=None, min_length=1)

    def connect(self) -> SplunkConnector:
        client = self.http_client(authorization("Bearer", self.token))
        return SplunkConnector(client, self)


def spl_quote(text: str) -> str:
    """``text`` as an SPL quoted term: backslashes and double quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def export_search(settings: SplunkSettings, ids: Sequence[str]) -> str:
    """The SPL of one search for every id: ``search index=… [sourcetype=…] ("a" OR "b" …)``."""
    terms = " OR ".join(spl_quote(cid) for cid in sorted(ids))
    sourcetype = f" sourcetype={spl_quote(settings.sourcetype)}" if settings.sourcetype else ""
    return f"search index={settings.index}{sourcetype} ({terms})"


class SplunkConnector(HttpConnector[SplunkSettings]):
    """Searches one index through the export endpoint; holds its HTTP client between polls."""

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if not query.correlation_ids:
            return []
        # The window is already widened by the clock skew allowance. latest_time is exclusive: a
        # millisecond more keeps an event at exactly ``until``.
        until = query.until + timedelta(milliseconds=1)
        form = {
            "search": export_search(self._settings, list(query.correlation_ids)),
            "earliest_time": f"{query.since.timestamp():.3f}",
            "latest_time": f"{until.timestamp():.3f}",
            "output_mode": "json",
        }
        body = self._client.send("POST", EXPORT_PATH, data=form)
        return self._events(body, query.correlation_ids)

    def _events(self, body: bytes, ids: frozenset[str]) -> list[SiemEvent]:
        from parityprobe.siem._http import malformed, parse_when

        events: list[SiemEvent] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise malformed(self._client.label, "a line that is not json") from None
            if not isinstance(row, dict):
                raise malformed(self._client.label, "a line that is not a json object")
            _check_messages(row, self._client.label)
            result = row.get("result")
            if row.get("preview") is True or result is None:
                continue
            if not isinstance(result, dict):
                raise malformed(self._client.label, "a result that is not an object")
            raw = result.get("_raw")
            text = raw if isinstance(raw, str) else json.dumps(result, ensure_ascii=False)
            found = correlation_ids_in(text, ids)
            if not found:
                continue
            fields = MappingProxyType(_fields(result, raw))
            moment = parse_when(_single(result.get("_time")))
            ingested = parse_when(_single(result.get("_indextime")))
            events.extend(SiemEvent(cid, moment, fields, ingested) for cid in found)
        return events


def _check_messages(row: Mapping[str, Any], label: str) -> None:
    messages = row.get("messages")
    if not isinstance(messages, list):
        return
    for message in messages:
        kind = message.get("type") if isinstance(message, dict) else None
        if isinstance(kind, str) and kind.upper() in _FAILED_MESSAGES:
            # The message text can quote the search: say only that it failed.
            raise SiemUnavailable(f"{label}: search failed ({kind.upper()} message)")


def _fields(result: Mapping[str, Any], raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return flatten(record)
    return flatten(result)


def _single(value: Any) -> Any:
    """A multivalue field's first value (Splunk gives lists for them)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value
