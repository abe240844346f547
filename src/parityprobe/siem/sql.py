"""The ``sql`` connector: a table of events in any database SQLAlchemy has a dialect for (PostgreSQL, and the
warehouses with their own dialects), searched with one SELECT.

```yaml
warehouse:
  type: sql
  url: {file: /etc/parityprobe/siem-url}   # postgresql+psycopg://reader:PASSWORD@db.example.com/siem
  table: audit.events                     # a table, or schema.table
  columns:
    correlation_id: correlation_id
    time: event_time                      # a timestamp column (compared with the query window)
    body: body                            # optional: JSON (jsonb, json or text) flattened into fields
    ingested_at: received_at              # optional: when the SIEM stored the row
    fields: [request_path, outcome]       # optional: more columns, each a field named for it
```

The URL holds a password, so it is given by reference only; every reason the connector gives shows it with the
password masked. ``postgresql://`` means psycopg 3 (the ``sql`` extra installs it); another database needs its
dialect's driver.

One search is one statement: ``SELECT ... FROM <table> WHERE <correlation_id> IN (<every pending id>) AND
<time> BETWEEN <since> AND <until> ORDER BY <time>``, the ids and bounds bound as parameters (the IN list
expanded by SQLAlchemy), the table and column names checked as plain identifiers here and quoted by the
dialect. Each row is one event, for the id in its correlation id column; its fields are the body's (flattened,
dotted names) and the named ``fields`` columns.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parityprobe.config.secretref import SecretRef
from parityprobe.siem.connector import ConnectorSettings, SiemConnector

# A plain SQL identifier: no quoting needed in any dialect's rules we rely on, nothing to inject.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
IDENTIFIER_RULE = "a name of 1-63 letters, digits or '_', not starting with a digit"


def identifier(value: str) -> str:
    """A plain SQL identifier; ValueError otherwise."""
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"{value!r} is not {IDENTIFIER_RULE}")
    return value


class SqlColumns(BaseModel):
    """Which column holds what: the event's ``correlation_id`` and ``time`` (required), its JSON ``body``,
    when the SIEM stored it (``ingested_at``), and other ``fields`` to include, each under its own name."""

    model_config = ConfigDict(extra="forbid")

    correlation_id: str
    time: str
    body: str | None = None
    ingested_at: str | None = None
    fields: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("correlation_id", "time", "body", "ingested_at")
    @classmethod
    def _column(cls, v: str | None) -> str | None:
        return None if v is None else identifier(v)

    @field_validator("fields")
    @classmethod
    def _columns(cls, v: list[str]) -> list[str]:
        return [identifier(name) for name in v]


class SqlSettings(ConnectorSettings):
    """A SQLAlchemy ``url`` (by reference: it holds a password), the ``table`` (``name`` or
    ``schema.name``) and its ``columns``."""

    name: ClassVar[str] = "sql"
    type: Literal["sql"]
    url: SecretRef
    table: str
    columns: SqlColumns

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        parts = v.split(".")
        if len(parts) > 2:
            raise ValueError("give a table as name or schema.name")
        for part in parts:
            identifier(part)
        return v

    def connect(self) -> SiemConnector:
        from parityprobe.siem._sql import SqlConnector

        return SqlConnector(self)
