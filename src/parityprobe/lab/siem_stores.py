"""The SIEM stores the lab's forwarder (:mod:`.siem_forwarder`) ships audit entries to, and what they share
with it: the :class:`Entry` they ship, the :class:`Store` protocol, :class:`StoreDown`, and each store's
config section.

- :class:`CloudWatchStore`: ``put_log_events`` into ``log_group``/``log_stream`` (created when missing), at
  most 10,000 events or 1 MiB per call, spanning at most 24 hours, sorted by time; each event's message is
  the entry's line as written, its timestamp the entry's ``time`` in milliseconds.
- :class:`PostgresStore`: ``table`` (created when missing, with an index on ``correlation_id``) gets one row
  per entry, one ``COPY`` per batch: ``correlation_id``, ``event_time``, ``type``, ``path``, ``operation``,
  ``error`` and the whole entry as ``body`` (jsonb). A batch PostgreSQL refuses for its data (a ``\\u0000``
  jsonb cannot hold) is inserted row by row, and only the bad rows are left out (counted).

boto3 and psycopg are imported on first use; clients and connections are made on first use too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from parityprobe.secret import Secret

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

_CW_MAX_EVENTS = 10_000
_CW_MAX_BYTES = 1_048_576
_CW_EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event besides its message
_CW_MAX_SPAN_MS = 24 * 3600 * 1000
_PG_MAX_ROWS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = ("correlation_id", "event_time", "type", "path", "operation", "error", "body")


def _secret(value: object) -> object:
    return Secret(value, "forwarder credential") if isinstance(value, str) else value


SecretField = Annotated[Secret, BeforeValidator(_secret)]


class ConfigModel(BaseModel):
    """The base of the forwarder's config models (the file and its sections): strict and frozen."""

    # Errors must not echo the input: it holds a key and a password.
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, hide_input_in_errors=True
    )


class CloudWatchConfig(ConfigModel):
    endpoint_url: str | None = None
    region: str
    access_key_id: SecretField
    secret_access_key: SecretField
    log_group: str = Field(min_length=1)
    log_stream: str = Field(min_length=1)


class PostgresConfig(ConfigModel):
    host: str
    port: int
    dbname: str
    user: str
    password: SecretField
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,50}(\.[A-Za-z_][A-Za-z0-9_]{0,50})?$")


@dataclass(frozen=True)
class Entry:
    """One audit entry: its line as written (``size`` bytes), and what the stores index it by."""

    line: str
    size: int
    body: dict[str, Any]
    time: datetime
    correlation_id: str | None
    error: str | None

    @property
    def time_ms(self) -> int:
        return (self.time - _EPOCH) // timedelta(milliseconds=1)

    def row(self) -> tuple[object, ...]:
        """The entry's row, in the order of the table's columns."""
        request = self.body.get("request")
        request = request if isinstance(request, dict) else {}
        texts = [v if isinstance(v, str) else None for v in (self.body.get("type"), *_get(request))]
        return (self.correlation_id, self.time, *texts, self.error, self.line)


def _get(request: dict[str, Any]) -> tuple[Any, Any]:
    return request.get("path"), request.get("operation")


class StoreDown(Exception):
    """The store could not take a batch now: keep it and try again next cycle."""


class Store(Protocol):
    name: str

    def take(self, pending: Sequence[Entry]) -> int:
        """How many entries from the head of ``pending`` (not empty) make the next batch (at least one)."""

    def ship(self, batch: list[Entry]) -> int:
        """Ship ``batch`` (after creating what is missing; also when it is empty); how many of its entries
        the store refused for good. Raises :class:`StoreDown`."""

    def close(self) -> None: ...


class CloudWatchStore:
    """CloudWatch Logs (here: the environment's moto server), through boto3 with the configured key."""

    name = "cloudwatch"

    def __init__(self, config: CloudWatchConfig) -> None:
        self.config = config
        self._client: Any = None
        self._ready = False

    def take(self, pending: Sequence[Entry]) -> int:
        count = size = 0
        low = high = pending[0].time_ms
        for entry in islice(pending, _CW_MAX_EVENTS):
            cost = entry.size + _CW_EVENT_OVERHEAD
            low, high = min(low, entry.time_ms), max(high, entry.time_ms)
            if count and (size + cost > _CW_MAX_BYTES or high - low > _CW_MAX_SPAN_MS):
                break
            count, size = count + 1, size + cost
        return count

    def ship(self, batch: list[Entry]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = self._connect()
            if not self._ready:
                self._ensure(client)
            if not batch:
                return 0
            events = sorted(({"timestamp": e.time_ms, "message": e.line} for e in batch), key=_timestamp)
            c = self.config
            reply = client.put_log_events(
                logGroupName=c.log_group, logStreamName=c.log_stream, logEvents=events
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            if code == "ResourceNotFoundException":
                self._ready = False  # deleted meanwhile: created again next cycle
            elif code == "InvalidParameterException" and self._ready and batch:
                return len(batch)  # this batch will never be taken (an event too large): refused
            raise StoreDown(f"{code}: {message}") from None
        except BotoCoreError as exc:
            raise StoreDown(str(exc)) from None
        return _rejected(reply.get("rejectedLogEventsInfo") or {}, len(events))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _connect(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            c = self.config
            session: Any = boto3.session.Session(
                aws_access_key_id=c.access_key_id.reveal(),
                aws_secret_access_key=c.secret_access_key.reveal(),
                region_name=c.region,
            )
            config = Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=10)
            self._client = session.client("logs", endpoint_url=c.endpoint_url, config=config)
        return self._client

    def _ensure(self, client: Any) -> None:
        from botocore.exceptions import ClientError

        group, stream = self.config.log_group, self.config.log_stream
        for create, names in (
            (client.create_log_group, {"logGroupName": group}),
            (client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            try:
                create(**names)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise
        self._ready = True


def _timestamp(event: dict[str, Any]) -> int:
    stamp: int = event["timestamp"]
    return stamp


def _rejected(info: dict[str, int], count: int) -> int:
    """How many events ``rejectedLogEventsInfo`` names: too new from a start index (inclusive), too old or
    expired up to an end index (exclusive)."""
    refused: set[int] = set()
    if "tooNewLogEventStartIndex" in info:
        refused |= set(range(info["tooNewLogEventStartIndex"], count))
    for key in ("tooOldLogEventEndIndex", "expiredLogEventEndIndex"):
        if key in info:
            refused |= set(range(min(info[key], count)))
    return len(refused)


class PostgresStore:
    """A PostgreSQL table, through psycopg 3: one ``COPY`` per batch, in one transaction."""

    name = "postgres"

    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self._conn: psycopg.Connection[Any] | None = None
        self._ready = False

    def take(self, pending: Sequence[Entry]) -> int:
        return min(len(pending), _PG_MAX_ROWS)

    def ship(self, batch: list[Entry]) -> int:
        import psycopg
        from psycopg import sql

        table = sql.Identifier(*self.config.table.split("."))
        columns = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
        try:
            conn = self._connect()
            if not self._ready:
                self._ensure(conn, table)
            if not batch:
                return 0
            try:
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)
                with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    for entry in batch:
                        copy.write_row(entry.row())
                return 0
            except (psycopg.DataError, psycopg.IntegrityError):
                return self._one_by_one(conn, table, columns, batch)
        except psycopg.Error as exc:
            self.close()
            raise StoreDown(str(exc).strip()) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._ready = False

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            c = self.config
            self._conn = psycopg.connect(
                host=c.host,
                port=c.port,
                dbname=c.dbname,
                user=c.user,
                password=c.password.reveal(),
                connect_timeout=3,
                autocommit=True,
                application_name="parityprobe-siem-forwarder",
            )
        return self._conn

    def _ensure(self, conn: psycopg.Connection[Any], table: sql.Identifier) -> None:
        from psycopg import sql

        columns = "correlation_id text, event_time timestamptz, type text, path text, operation text, "
        columns += "error text, body jsonb"
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (" + columns + ")").format(table))
        index = sql.Identifier(self.config.table.split(".")[-1] + "_cid_idx")
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (correlation_id)").format(index, table))
        self._ready = True

    def _one_by_one(
        self, conn: psycopg.Connection[Any], table: sql.Identifier, columns: sql.Composed, batch: list[Entry]
    ) -> int:
        """Insert ``batch`` row by row, each in a savepoint: the rows PostgreSQL refuses are left out. All in
        one transaction, so a connection lost midway inserts nothing twice."""
        import psycopg
        from psycopg import sql

        values = sql.SQL("%s, %s, %s, %s, %s, %s, %s::jsonb")
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(table, columns, values)
        refused = 0
        with conn.transaction():
            for entry in batch:
                try:
                    with conn.transaction():
                        conn.execute(query, entry.row())
                except (psycopg.DataError, psycopg.IntegrityError):
                    refused += 1
        return refused
