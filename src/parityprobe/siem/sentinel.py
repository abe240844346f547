"""The ``sentinel`` connector: a Microsoft Sentinel (Azure Monitor Log Analytics) workspace, searched with
the Log Analytics query API (``POST /v1/workspaces/<id>/query``, KQL).

```yaml
sentinel:
  type: sentinel
  workspace_id: 00000000-0000-0000-0000-000000000000
  table: VaultAudit_CL                  # where the audit events land
  correlation_column: CorrelationId_s   # the column holding each event's correlation id
  time_column: TimeGenerated            # the event's time (the default)
  record_column: RawData                # optional: a column holding the JSON record, flattened at the top
  # either a bearer token for https://api.loganalytics.io that the operator keeps fresh …
  token: {file: /var/run/parityprobe/loganalytics-token}
  # … or an Entra ID application, whose client-credentials token the connector gets and renews:
  # tenant_id: contoso.onmicrosoft.com
  # client_id: 11111111-1111-1111-1111-111111111111
  # client_secret: {env: AZURE_CLIENT_SECRET}
```

One query asks for every correlation id at once::

    VaultAudit_CL
    | where TimeGenerated between (datetime(…) .. datetime(…))
    | where CorrelationId_s in ('pp-a-login', 'pp-a-read')
    | extend _ingested = ingestion_time()
    | order by TimeGenerated asc

with the same window as the request's ``timespan``. Table and column names must be plain KQL identifiers;
the ids are single-quoted KQL string literals, escaped. Each row becomes one event per correlation id its
correlation column holds: every column a field (``dynamic`` columns parsed and flattened under their name,
the ``record_column``'s JSON flattened at the top as well), its time the ``time_column``, its
``ingested_at`` the workspace's ingestion time (``ingestion_time: false`` leaves it out).

The API has no paging: one reply holds at most 500,000 rows, and a result cut short says so with a
``PartialError`` beside the rows it has. Any reply with an ``error`` (a partial answer, a truncated one) is no
answer, never fewer events. A bearer ``token`` is the operator's to acquire (from Entra ID, for the
resource ``https://api.loganalytics.io``) and to renew; with ``tenant_id``, ``client_id`` and
``client_secret`` the connector does it (OAuth 2.0 client credentials against ``authority_url``, scope
``scope``), a little before the token expires, and again after the workspace refuses it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from parityprobe.config.environments import http_address
from parityprobe.config.secretref import SecretRef
from parityprobe.model import ErrorKind
from parityprobe.siem.connector import (
    ConnectorSettings,
    SiemEvent,
    SiemQuery,
    SiemThrottled,
    SiemUnavailable,
    correlation_ids_in,
    flatten,
    parse_time,
)

if TYPE_CHECKING:
    from parityprobe.siem._http import HttpSiem

# A KQL identifier that needs no quoting: a table (``VaultAudit_CL``) or a column (``CorrelationId_s``).
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")]
INGESTED = "_ingested"
# A token is renewed this long before Entra ID says it expires.
_RENEW_EARLY = 60.0
_KQL_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class SentinelSettings(ConnectorSettings):
    """A Log Analytics workspace: ``workspace_id``; ``base_url`` of the query API; the ``table`` to search,
    its ``correlation_column`` and ``time_column``; ``record_column``, a column whose JSON is flattened at
    the top of each event's fields; ``ingestion_time``, whether to ask for each row's ingestion time.
    Credentials: a bearer ``token``, or ``tenant_id``, ``client_id`` and ``client_secret`` of an Entra ID
    application (token from ``authority_url``, for ``scope``)."""

    name: ClassVar[str] = "sentinel"
    type: Literal["sentinel"]
    workspace_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
    base_url: str = "https://api.loganalytics.io"
    table: Identifier
    correlation_column: Identifier
    time_column: Identifier = "TimeGenerated"
    record_column: Identifier | None = None
    ingestion_time: bool = True
    token: SecretRef | None = None
    tenant_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
    client_id: str | None = Field(default=None, min_length=1)
    client_secret: SecretRef | None = None
    authority_url: str = "https://login.microsoftonline.com"
    scope: str = Field(default="https://api.loganalytics.io/.default", min_length=1)

    @field_validator("base_url", "authority_url")
    @classmethod
    def _address(cls, v: str) -> str:
        return http_address(v)

    @model_validator(mode="after")
    def _one_credential(self) -> SentinelSettings:
        client = (self.tenant_id, self.client_id, self.client_secret)
        if self.token is not None and any(v is not None for v in client):
            raise ValueError("give either token or tenant_id, client_id and client_secret, not both")
        if self.token is None and any(v is None for v in client):
            raise ValueError("give token, or all of tenant_id, client_id and client_secret")
        return self

    def connect(self) -> SentinelConnector:
        from parityprobe.siem._http import HttpSiem

        http = HttpSiem(self.base_url, label=self.name, timeout=self.timeout_seconds)
        if self.token is not None:
            return SentinelConnector(self, http, StaticToken(self.token.secret().reveal()))
        login = HttpSiem(self.authority_url, label=f"{self.name} login", timeout=self.timeout_seconds)
        return SentinelConnector(self, http, ClientCredentials(self, login))


class StaticToken:
    """A bearer token the operator keeps fresh."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(***)"

    def bearer(self) -> str:
        return self._token

    def refused(self) -> None:
        """Nothing to renew: the operator's token is what it is."""

    def close(self) -> None:
        """Nothing to close."""


class ClientCredentials:
    """An Entra ID application's token (OAuth 2.0 client credentials), got when first needed and renewed a
    little before it expires or after the workspace refused it."""

    def __init__(self, settings: SentinelSettings, login: HttpSiem) -> None:
        assert settings.tenant_id is not None and settings.client_id is not None
        assert settings.client_secret is not None
        self._login = login
        self._path = f"/{settings.tenant_id}/oauth2/v2.0/token"
        self._client_id = settings.client_id
        self._secret = settings.client_secret.secret()
        self._scope = settings.scope
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"ClientCredentials({self._login.label!r}, client_id={self._client_id!r})"

    def bearer(self) -> str:
        now = time.monotonic()
        if self._token is None or now >= self._renew_at:
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._secret.reveal(),
                "scope": self._scope,
            }
            reply = self._login.send_json("POST", self._path, data=form)
            token = reply.get("access_token") if isinstance(reply, Mapping) else None
            lifetime = reply.get("expires_in") if isinstance(reply, Mapping) else None
            if not isinstance(token, str) or not token:
                raise SiemUnavailable(f"{self._login.label}: malformed reply (no access_token)")
            try:
                seconds = float(lifetime) if lifetime is not None else 0.0
            except (TypeError, ValueError):
                raise SiemUnavailable(f"{self._login.label}: malformed reply (expires_in)") from None
            self._token, self._renew_at = token, now + max(0.0, seconds - _RENEW_EARLY)
        return self._token

    def refused(self) -> None:
        self._token = None

    def close(self) -> None:
        self._login.close()


class SentinelConnector:
    """Queries one workspace's table: one KQL query for all ids, its whole result in one reply."""

    def __init__(
        self, settings: SentinelSettings, http: HttpSiem, auth: StaticToken | ClientCredentials
    ) -> None:
        self.settings = settings
        self._http = http
        self._auth = auth
        self._path = f"/v1/workspaces/{settings.workspace_id}/query"

    def __repr__(self) -> str:
        return f"SentinelConnector({self._http.label!r}, table={self.settings.table!r})"

    def begin(self) -> None:
        """Nothing to note: every search asks for a time window."""

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if not query.correlation_ids:
            return []
        ids = sorted(query.correlation_ids)
        since, until = kql_datetime(query.since), kql_datetime(query.until)
        body = {"query": kql_query(self.settings, ids, since, until), "timespan": f"{since}/{until}"}
        headers = {"Authorization": f"Bearer {self._auth.bearer()}"}
        try:
            reply = self._http.send_json("POST", self._path, json_body=body, headers=headers)
        except SiemThrottled:
            raise
        except SiemUnavailable:
            self._auth.refused()  # a token revoked or expired early is got again at the next search
            raise
        return self._events(reply, ids)

    def close(self) -> None:
        self._http.close()
        self._auth.close()

    def _events(self, reply: Any, ids: Sequence[str]) -> list[SiemEvent]:
        label = self._http.label
        if not isinstance(reply, Mapping):
            raise _malformed(label, "not an object")
        error = reply.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, Mapping) else None
            code = code if isinstance(code, str) and re.fullmatch(r"[A-Za-z_]{1,64}", code) else "error"
            raise SiemUnavailable(
                f"{label}: partial answer ({code}), rows may be missing", ErrorKind.TARGET_ERROR
            )
        tables = reply.get("tables")
        if not isinstance(tables, list) or not tables or not isinstance(tables[0], Mapping):
            raise _malformed(label, "no tables")
        columns, rows = tables[0].get("columns"), tables[0].get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            raise _malformed(label, "no columns or rows")
        names: list[str] = []
        for column in columns:
            name = column.get("name") if isinstance(column, Mapping) else None
            if not isinstance(name, str):
                raise _malformed(label, "a column without a name")
            names.append(name)
        types = [column.get("type") for column in columns]
        if self.settings.correlation_column not in names:
            raise _malformed(label, f"no column {self.settings.correlation_column}")
        events: list[SiemEvent] = []
        for row in rows:
            if not isinstance(row, list) or len(row) != len(names):
                raise _malformed(label, "a row that does not fit the columns")
            events.extend(self._row_events(names, types, row, ids))
        return events

    def _row_events(
        self, names: list[str], types: list[Any], values: list[Any], ids: Sequence[str]
    ) -> list[SiemEvent]:
        settings = self.settings
        row = dict(zip(names, values, strict=True))
        carried = flatten({"id": _json_value(row.get(settings.correlation_column))})
        found = correlation_ids_in("\n".join(carried.values()), ids)
        if not found:
            return []
        fields: dict[str, str] = {}
        if settings.record_column is not None:
            record = _json_value(row.get(settings.record_column))
            if isinstance(record, Mapping):
                fields.update(flatten(record))
        for name, kind, value in zip(names, types, values, strict=True):
            if name == INGESTED:
                continue
            fields.update(flatten({name: _json_value(value) if kind == "dynamic" else value}))
        ingested = parse_time(row.get(INGESTED)) if settings.ingestion_time else None
        frozen = MappingProxyType(fields)
        moment = parse_time(row.get(settings.time_column))
        return [SiemEvent(cid, moment, frozen, ingested) for cid in found]


def kql_query(settings: SentinelSettings, ids: Sequence[str], since: str, until: str) -> str:
    """The KQL for every id of ``ids`` in the window (names are validated identifiers, ids escaped)."""
    time_column, listed = settings.time_column, ", ".join(kql_string(cid) for cid in ids)
    parts = [
        settings.table,
        f"where {time_column} between (datetime({since}) .. datetime({until}))",
        f"where {settings.correlation_column} in ({listed})",
    ]
    if settings.ingestion_time:
        parts.append(f"extend {INGESTED} = ingestion_time()")
    parts.append(f"order by {time_column} asc")
    return " | ".join(parts)


def kql_string(value: str) -> str:
    """A single-quoted KQL string literal: backslash, quote, newline, return and tab escaped."""
    return "'" + "".join(_KQL_ESCAPES.get(char, char) for char in value) + "'"


def kql_datetime(moment: datetime) -> str:
    """``2026-11-22T09:00:00.123456Z``: UTC, for ``datetime(…)`` and the ISO 8601 ``timespan``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(value: Any) -> Any:
    """A ``dynamic`` value (sent as JSON text) or a JSON record column, parsed; any other value as is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _malformed(label: str, what: str) -> SiemUnavailable:
    return SiemUnavailable(f"{label}: malformed reply ({what})", ErrorKind.TARGET_ERROR)
