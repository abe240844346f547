"""The ``elasticsearch`` connector: an Elasticsearch or OpenSearch index (pattern) searched with ``_search``.

```yaml
audit:
  type: elasticsearch
  base_url: https://es.example.com:9200
  index: vault-audit-*
  api_key: {env: ES_API_KEY}            # the encoded key (base64 of id:key): Authorization: ApiKey
  # or: username: parityprobe
  #     password: {file: /etc/parityprobe/es-password}
  time_field: "@timestamp"
  correlation_field: request.headers.x-correlation-id.keyword   # optional, see below
  page_size: 500
```

One search answers for every pending correlation id: ``POST /<index>/_search`` with a ``bool`` filter of
a ``range`` on ``time_field`` (the query window) and the ids — a ``terms`` query on ``correlation_field``
when it is given (a keyword field: with dynamic mapping, the ``.keyword`` sub-field of a string), else a
``query_string`` of the quoted ids over every field (slower, but it needs no mapping knowledge). Each hit's
text is then checked for whole ids (:func:`~parityprobe.siem.connector.correlation_ids_in`).

Pages are followed with ``search_after``: hits are sorted by ``time_field`` then ``tiebreaker``, and the
next page starts after the last hit's ``sort`` values, until a page is shorter than ``page_size``. Without a
point in time, the default tiebreaker ``_doc`` (index order within a shard) can tie across shards for two
events of the same millisecond, so one of them may be skipped at a page boundary: give ``tiebreaker`` a
keyword field unique per event where the index has one. A reply with shard failures or ``timed_out`` is
partial: it is no answer, never "nothing found".

Each hit's ``_source`` is flattened; ``time`` is its ``time_field`` (the hit's sort value when ``_source``
lacks it) and ``ingested_at`` its ``event.ingested`` (set by Elastic's ingest pipelines) when present.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

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
    from parityprobe.siem._http import HttpSiem

INGESTED_FIELD = "event.ingested"
# Characters an index name or pattern never holds (Elasticsearch's rules, plus what would break the path).
_INDEX_PATTERN = r'^[^\s/\\?#"<>|]{1,255}$'
_FIELD_PATTERN = r"^[^\s]{1,255}$"
# A lookup by correlation id that needs more pages than this is not one: stop rather than run on.
MAX_PAGES = 200


class ElasticsearchSettings(HttpConnectorSettings):
    """An Elasticsearch or OpenSearch cluster: ``base_url``, the ``index`` (or pattern, or comma-separated
    list) holding the events, and credentials by reference — ``api_key`` (sent as ``Authorization:
    ApiKey``) or ``username`` with ``password`` (HTTP Basic), or neither. ``time_field`` (a date field)
    orders and bounds the search; ``correlation_field`` (a keyword field) makes the ids a ``terms`` query;
    ``tiebreaker`` is the second sort key; ``page_size`` hits per page (at most 10,000, the default
    ``index.max_result_window``). ``verify_tls`` and ``ca_cert`` say how the server's certificate is
    checked."""

    name: ClassVar[str] = "elasticsearch"
    type: Literal["elasticsearch"]
    index: str = Field(pattern=_INDEX_PATTERN)
    api_key: SecretRef | None = None
    username: str | None = Field(default=None, min_length=1)
    password: SecretRef | None = None
    time_field: str = Field(default="@timestamp", pattern=_FIELD_PATTERN)
    correlation_field: str | None = Field(default=None, pattern=_FIELD_PATTERN)
    tiebreaker: str = Field(default="_doc", pattern=_FIELD_PATTERN)
    page_size: int = Field(default=500, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_credential(self) -> ElasticsearchSettings:
        one_credential(self.username, self.password, self.api_key, "api_key")
        return self

    def connect(self) -> ElasticsearchConnector:
        client = self.http_client(authorization("ApiKey", self.api_key, self.username, self.password))
        return ElasticsearchConnector(client, self)


def ids_query(settings: ElasticsearchSettings, ids: Sequence[str]) -> dict[str, Any]:
    """The query clause matching any of ``ids``: ``terms`` on the correlation field, else the quoted ids
    as a ``query_string`` over every field."""
    ordered = sorted(ids)
    if settings.correlation_field is not None:
        return {"terms": {settings.correlation_field: ordered}}
    quoted = " OR ".join('"' + cid.replace("\\", "\\\\").replace('"', '\\"') + '"' for cid in ordered)
    return {"query_string": {"query": quoted, "default_field": "*", "lenient": True}}


def search_body(settings: ElasticsearchSettings, query: SiemQuery, after: list[Any] | None) -> dict[str, Any]:
    """One page's request body; ``after``: the previous page's last ``sort`` values."""
    window = {
        "gte": query.since.isoformat(),
        "lte": query.until.isoformat(),
        "format": "strict_date_optional_time",
    }
    body: dict[str, Any] = {
        "size": settings.page_size,
        "track_total_hits": False,
        "sort": [{settings.time_field: "asc"}, {settings.tiebreaker: "asc"}],
        "query": {
            "bool": {
                "filter": [
                    {"range": {settings.time_field: window}},
                    ids_query(settings, list(query.correlation_ids)),
                ]
            }
        },
    }
    if after is not None:
        body["search_after"] = after
    return body


class ElasticsearchConnector(HttpConnector[ElasticsearchSettings]):
    """Searches one index pattern, page after page; holds its HTTP client between polls."""

    def __init__(self, client: HttpSiem, settings: ElasticsearchSettings) -> None:
        super().__init__(client, settings)
        self._path = f"/{quote(settings.index, safe=',*:+-_.')}/_search"

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if not query.correlation_ids:
            return []
        events: list[SiemEvent] = []
        seen: set[tuple[str, str]] = set()
        after: list[Any] | None = None
        for _ in range(MAX_PAGES):
            reply = self._client.send_json(
                "POST", self._path, json_body=search_body(self._settings, query, after)
            )
            hits = self._hits(reply)
            for hit in hits:
                key = (str(hit.get("_index")), str(hit.get("_id")))
                if key not in seen:  # a hit seen on an earlier page (an index refreshed between pages)
                    seen.add(key)
                    events.extend(self._events(hit, query.correlation_ids))
            if len(hits) < self._settings.page_size:
                return events
            last = hits[-1].get("sort")
            if not isinstance(last, list) or not last or last == after:
                raise self._malformed("a full page whose last hit has no new sort values")
            after = last
        raise SiemUnavailable(
            f"{self._client.label}: more than {MAX_PAGES} pages of events for these ids",
            ErrorKind.TARGET_ERROR,
        )

    def _hits(self, reply: Any) -> list[Mapping[str, Any]]:
        if not isinstance(reply, dict):
            raise self._malformed("not a json object")
        shards = reply.get("_shards")
        failed = shards.get("failed", 0) if isinstance(shards, dict) else 0
        if reply.get("timed_out") is True or (isinstance(failed, int) and failed > 0):
            raise SiemUnavailable(f"{self._client.label}: partial results (timed out or shards failed)")
        outer = reply.get("hits")
        hits = outer.get("hits") if isinstance(outer, dict) else None
        if not isinstance(hits, list) or not all(isinstance(hit, dict) for hit in hits):
            raise self._malformed("no hits.hits list")
        return hits

    def _events(self, hit: Mapping[str, Any], ids: frozenset[str]) -> list[SiemEvent]:
        from parityprobe.siem._http import parse_when

        source = hit.get("_source")
        if not isinstance(source, dict):
            raise self._malformed("a hit without _source")
        found = correlation_ids_in(json.dumps(source, ensure_ascii=False), ids)
        if not found:
            return []
        fields = MappingProxyType(flatten(source))
        moment = parse_when(fields.get(self._settings.time_field))
        if moment is None:
            sort = hit.get("sort")
            moment = parse_when(sort[0]) if isinstance(sort, list) and sort else None
        ingested = parse_when(fields.get(INGESTED_FIELD))
        return [SiemEvent(cid, moment, fields, ingested) for cid in found]

    def _malformed(self, what: str) -> SiemUnavailable:
        from parityprobe.siem._http import malformed

        return malformed(self._client.label, what)
