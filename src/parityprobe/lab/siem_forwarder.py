"""The lab's SIEM forwarder: follows one environment's OpenBao file audit log and ships every entry to that
environment's SIEM stores, as a log shipper (Fluent Bit, Vector) would in a real deployment.

``python -m parityprobe.lab.siem_forwarder --port P --config FILE`` (see :func:`serve`). ``FILE`` is JSON,
written 0600 by the lab because it holds the admin key and the database password::

    {"audit_log": "/…/audit.log", "only_successes": false, "poll_seconds": 0.2,
     "cloudwatch": {"endpoint_url", "region", "access_key_id", "secret_access_key", "log_group",
                    "log_stream"} | null,
     "postgres": {"host", "port", "dbname", "user", "password", "table"} | null}

This module holds the process: its config, the parsing of audit lines into entries, the outboxes and the
cycle that feeds them, and ``GET /health``. The log is followed by :mod:`.audit_follower` (appends,
rotation, truncation; only complete lines), and the stores (CloudWatch Logs, a PostgreSQL table) are in
:mod:`.siem_stores`.

- Each entry's correlation id is ``request.headers["x-correlation-id"][0]``.
- ``only_successes`` ships only entries without an ``error`` (a planted gap: denied calls never arrive).

A store that is down is retried every cycle; each store keeps at most :data:`MAX_PENDING` entries pending,
dropping the oldest (counted). ``GET /health`` answers what was shipped, filtered, dropped and failed;
SIGTERM stops the forwarder after a last read and flush. No key or password is ever logged or answered:
messages are scrubbed of them, and config errors do not echo their input.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import Field

from parityprobe.lab.audit_follower import LogFollower
from parityprobe.lab.siem_stores import (
    CloudWatchConfig,
    CloudWatchStore,
    ConfigModel,
    Entry,
    PostgresConfig,
    PostgresStore,
    Store,
    StoreDown,
)

MAX_PENDING = 10_000
_CHUNK = 2_000  # entries added to the outboxes between flushes: a backlog never overflows a live store
log = logging.getLogger("parityprobe.siem_forwarder")


class ForwarderConfig(ConfigModel):
    """The forwarder's config file (see the module's docstring)."""

    audit_log: Path
    only_successes: bool = False
    poll_seconds: float = Field(default=0.2, gt=0, le=60)
    cloudwatch: CloudWatchConfig | None = None
    postgres: PostgresConfig | None = None

    def secrets(self) -> list[str]:
        """Every secret value, for scrubbing messages."""
        found = [self.cloudwatch.access_key_id, self.cloudwatch.secret_access_key] if self.cloudwatch else []
        found += [self.postgres.password] if self.postgres else []
        return [s.reveal() for s in found if s.reveal()]


def parse_entry(line: bytes, now: datetime) -> Entry | None:
    """The entry on ``line``; None when it is not a JSON object. Without a readable ``time`` it is ``now``.
    An ``error`` that is absent, null or empty is no error (OpenBao omits it when empty)."""
    text = line.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    try:
        when = datetime.fromisoformat(body["time"]).astimezone(UTC)  # RFC 3339, nanoseconds cut to micro
    except (KeyError, TypeError, ValueError):
        when = now
    request = body.get("request")
    headers = request.get("headers") if isinstance(request, dict) else None
    values = headers.get("x-correlation-id") if isinstance(headers, dict) else None
    correlation_id = values if isinstance(values, str) else None
    if isinstance(values, list) and values and isinstance(values[0], str):
        correlation_id = values[0]
    error = body.get("error")
    error_text = None if error is None or error == "" else str(error)
    return Entry(text, len(text.encode()), body, when, correlation_id, error_text)


@dataclass
class Outbox:
    """One store's pending entries (at most :data:`MAX_PENDING`, the oldest dropped) and its counts."""

    store: Store
    report: Callable[[str, str | None], None]
    pending: deque[Entry] = field(default_factory=deque)
    shipped: int = 0
    refused: int = 0
    dropped: int = 0
    failures: int = 0
    up: bool | None = None

    def add(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if len(self.pending) >= MAX_PENDING:
                self.pending.popleft()
                self.dropped += 1
            self.pending.append(entry)

    def flush(self) -> bool:
        """Ship everything pending, batch by batch; False when the store is down (the rest stays)."""
        while True:
            batch = list(islice(self.pending, self.store.take(self.pending))) if self.pending else []
            try:
                refused = self.store.ship(batch)
            except StoreDown as exc:
                self.failures += 1
                if self.up is not False:
                    self.report(self.store.name, f"{self.store.name} is down: {exc}")
                self.up = False
                return False
            if self.up is False:
                self.report(self.store.name, None)
            self.up = True
            for _ in batch:
                self.pending.popleft()
            self.shipped += len(batch) - refused
            self.refused += refused
            if refused:
                self.report(self.store.name, f"{self.store.name} refused {refused} entries for their data")
            if not self.pending:
                return True


class Forwarder:
    """Reads new entries and hands them to every store's outbox; :meth:`health` says how it goes.

    Only the thread calling :meth:`cycle` changes the counts; :meth:`health` may read them from another."""

    def __init__(
        self, config: ForwarderConfig, stores: Sequence[Store], clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.follower = LogFollower(config.audit_log)
        self.outboxes = [Outbox(store, self._report) for store in stores]
        self.clock = clock
        self.filtered = 0
        self.unreadable = 0
        self.read_failures = 0
        self.last_error: str | None = None
        self._secrets = config.secrets()

    def cycle(self) -> bool:
        """One read and flush; True when more of the log is already waiting."""
        try:
            lines, more = self.follower.read()
        except OSError as exc:
            self.read_failures += 1
            self._report("audit log", f"{self.config.audit_log}: {exc.strerror or exc}")
            lines, more = [], False
        entries = []
        for line in lines:
            entry = parse_entry(line, self.clock())
            if entry is None:
                self.unreadable += 1
            elif self.config.only_successes and entry.error is not None:
                self.filtered += 1
            else:
                entries.append(entry)
        down: set[int] = set()
        for start in range(0, max(len(entries), 1), _CHUNK):
            for index, outbox in enumerate(self.outboxes):
                outbox.add(entries[start : start + _CHUNK])
                if index not in down and not outbox.flush():
                    down.add(index)
        return more

    def run(self, stop: threading.Event) -> None:
        """Cycle every ``poll_seconds`` until ``stop``; then a last read of what was written, and a last
        flush."""
        while not stop.is_set():
            if not self.cycle():
                stop.wait(self.config.poll_seconds)
        while self.cycle():
            pass
        for outbox in self.outboxes:
            outbox.store.close()
        self.follower.close()
        log.info("stopped: %s", json.dumps(self.health()))

    def health(self) -> dict[str, Any]:
        """``shipped`` (to every store: the least any store took), ``filtered``, ``errors`` (unreadable
        or overlong lines, entries refused or dropped, failed attempts), ``last_error``, and each store's
        counts."""
        boxes = self.outboxes
        errors = self.unreadable + self.follower.skipped + self.read_failures
        errors += sum(box.refused + box.dropped + box.failures for box in boxes)
        stores = {
            box.store.name: {
                "shipped": box.shipped,
                "pending": len(box.pending),
                "dropped": box.dropped,
                "refused": box.refused,
                "up": box.up,
            }
            for box in boxes
        }
        shipped = min((box.shipped for box in boxes), default=0)
        return {
            "shipped": shipped,
            "filtered": self.filtered,
            "errors": errors,
            "last_error": self.last_error,
            "stores": stores,
        }

    def _report(self, source: str, message: str | None) -> None:
        if message is None:
            log.info("%s is up again", source)
            return
        for secret in self._secrets:
            message = message.replace(secret, "***")
        self.last_error = message
        log.warning("%s", message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, forwarder: Forwarder) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.forwarder = forwarder


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it so
        """Quiet: the lab polls /health."""

    def do_GET(self) -> None:
        found = self.path.split("?")[0] == "/health"
        data = json.dumps(self.server.forwarder.health() if found else {"error": "not_found"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def build_stores(config: ForwarderConfig) -> list[Store]:
    """A store for each configured section (clients and connections are made on first use)."""
    stores: list[Store] = []
    if config.cloudwatch is not None:
        stores.append(CloudWatchStore(config.cloudwatch))
    if config.postgres is not None:
        stores.append(PostgresStore(config.postgres))
    return stores


def serve(argv: list[str] | None = None) -> None:
    """Forward as ``--config`` says and answer ``GET /health`` on ``--port`` until SIGTERM."""
    import argparse
    import signal
    import sys

    from pydantic import ValidationError

    parser = argparse.ArgumentParser(prog="python -m parityprobe.lab.siem_forwarder")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        config = ForwarderConfig.model_validate_json(args.config.read_bytes())
    except (OSError, ValidationError) as exc:
        sys.exit(f"siem_forwarder: bad config {args.config}: {exc}")
    forwarder = Forwarder(config, build_stores(config), lambda: datetime.now(UTC))
    server = _Server(args.port, forwarder)  # before the first cycle: readiness is /health answering
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    log.info("following %s, health on port %d", config.audit_log, args.port)
    try:
        forwarder.run(stop)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    serve()
