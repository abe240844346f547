"""The wait phase against each real SIEM connector: queries per poll cycle for 200 pending correlation ids
(target exactly 1), time from the last event's arrival to the verdict (target: within one poll interval),
and one batched search against 200 single-id searches.

Stores: ``file`` a JSON-lines file in a temp dir; ``cloudwatch_logs`` a log group in a moto server (key
``testing``, IAM enforcement off); ``sql`` a PostgreSQL table (jsonb body, correlation id indexed). One
EvidenceWait (poll 0.5 s, x1.5 up to 2 s) waits for 200 ``present`` expectations (within 30 s) of ids
``pp-<run>-step-<n>`` while a writer thread stores their events over ~2 s in 40 batches of 5 (appended lines,
put_log_events, INSERTs). The wait phase is unchanged: its settings' ``connect()`` wraps the real connector
to count ``search`` calls, a counting ``sleep`` counts poll cycles. Last event to verdict: from the writer's
last batch being stored to ``wait()`` returning; the interval in effect is the pause before the final poll.
Baseline, all events there: 200 one-id searches (file: 200 scans from its start; 200 FilterLogEvents; 200
SELECTs) against one search of all 200 (a poll's query), alternating repetitions, medians compared.

    python bench/siem_wait.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import boto3
import psycopg
from alternating import measure
from psycopg.types.json import Jsonb
from pydantic import ConfigDict, Field

from parityprobe.lab.postgres import PostgresServer, start_postgres
from parityprobe.lab.servers import start_moto
from parityprobe.model import EvidenceStatus
from parityprobe.probes.aws.settings import AwsStaticCredentials
from parityprobe.redact import Redactor
from parityprobe.siem.cloudwatch_logs import CloudWatchLogsSettings
from parityprobe.siem.connector import ConnectorSettings, SiemConnector, SiemEvent, SiemQuery
from parityprobe.siem.file import FileSettings
from parityprobe.siem.sql import SqlSettings
from parityprobe.siem.wait import EvidenceWait, Pending

IDS, TICKS, SPREAD = 200, 40, 2.0
POLL, MAX_POLL, WITHIN = 0.5, 2.0, 30.0
ACCOUNT, REGION, GROUP, STREAM = "123456789012", "us-east-1", "/bench/audit", "vault"
MATCH = MappingProxyType({"type": "response"})


def record(cid: str) -> dict[str, Any]:
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    headers = {"x-correlation-id": [cid]}
    return {"time": moment, "type": "response", "request": {"path": "secret/data/bench", "headers": headers}}


class Store:
    settings: ConnectorSettings
    connector: SiemConnector | None = None

    def write(self, cids: Sequence[str]) -> None:
        raise NotImplementedError

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        if self.connector is None:
            self.connector = self.settings.connect()
        return self.connector.search(query)


class FileStore(Store):
    def __init__(self, folder: Path) -> None:
        self.path = folder / "audit.log"
        self.path.touch()
        self.settings = FileSettings.model_validate({"type": "file", "path": str(self.path)})

    def write(self, cids: Sequence[str]) -> None:
        with self.path.open("a") as handle:
            handle.write("".join(json.dumps(record(cid)) + "\n" for cid in cids))

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        self.connector = self.settings.connect()  # a new one, not begun: reads the file from its start
        return super().search(query)


class CloudWatchStore(Store):
    def __init__(self, folder: Path, url: str) -> None:
        key = "testing"  # moto's bootstrap key; IAM enforcement stays off
        self.logs = boto3.client(
            "logs", endpoint_url=url, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=key
        )
        self.logs.create_log_group(logGroupName=GROUP)
        self.logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        (folder / "key").write_text(key)
        ref = {"file": "key"}
        data = {"type": "cloudwatch_logs", "log_group": GROUP, "region": REGION, "endpoint_url": url}
        credentials = {"method": "static", "access_key_id": ref, "secret_access_key": ref}
        self.settings = settings = CloudWatchLogsSettings.model_validate({**data, "credentials": credentials})
        assert isinstance(settings.credentials, AwsStaticCredentials)
        settings.credentials.access_key_id.resolve(folder, "aws access key id")
        settings.credentials.secret_access_key.resolve(folder, "aws secret access key")

    def write(self, cids: Sequence[str]) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": json.dumps(record(cid))} for cid in cids]
        self.logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=events)


class SqlStore(Store):
    def __init__(self, folder: Path, server: PostgresServer) -> None:
        url = f"postgresql://{server.admin_user}:{server.admin_password.reveal()}@{server.host}:{server.port}"
        self.conn = psycopg.connect(f"{url}/{server.dbname}", autocommit=True)
        self.conn.execute("CREATE TABLE events (cid text, at timestamptz, body jsonb)")
        self.conn.execute("CREATE INDEX ON events (cid)")
        (folder / "siem-url").write_text(f"{url}/{server.dbname}\n")
        columns = {"correlation_id": "cid", "time": "at", "body": "body"}
        data = {"type": "sql", "url": {"file": "siem-url"}, "table": "events", "columns": columns}
        self.settings = SqlSettings.model_validate(data)
        self.settings.url.resolve(folder, "SIEM database URL")

    def write(self, cids: Sequence[str]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cursor:
            rows = [(cid, Jsonb(record(cid))) for cid in cids]
            cursor.executemany("INSERT INTO events VALUES (%s, now(), %s)", rows)


class Counting:
    """The real connector; each ``search`` passed on, noted (how many ids it asked for) and timed."""

    def __init__(self, inner: SiemConnector, asked: list[int], took: list[float]) -> None:
        self.inner, self.asked, self.took = inner, asked, took

    def begin(self) -> None:
        self.inner.begin()

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        self.asked.append(len(query.correlation_ids))
        start = time.perf_counter()
        try:
            return self.inner.search(query)
        finally:
            self.took.append(time.perf_counter() - start)

    def close(self) -> None:
        self.inner.close()


class Counted(ConnectorSettings):
    """Settings whose ``connect()`` gives the wait phase the real connector wrapped in :class:`Counting`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    type: str = "counted"
    inner: ConnectorSettings
    asked: list[int] = Field(default_factory=list)  # by each search, in order: how many ids it asked for
    took: list[float] = Field(default_factory=list)  # and how long it took (seconds)

    def connect(self) -> SiemConnector:
        return Counting(self.inner.connect(), self.asked, self.took)


def wait_phase(name: str, store: Store, ids: list[str]) -> tuple[datetime, list[str]]:
    """One wait for ``ids`` while a writer thread stores their events; its action time and figures."""
    counted = Counted(inner=store.settings, clock_skew_seconds=store.settings.clock_skew_seconds)
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    waiter = EvidenceWait({name: counted}, Redactor(), POLL, MAX_POLL, sleep=sleep)
    waiter.begin([name])
    action_at, acted = datetime.now(UTC), time.monotonic()
    for n, cid in enumerate(ids):
        waiter.add(Pending(f"step-{n}", 0, name, cid, "present", MATCH, WITHIN, action_at, acted))
    written: list[float] = []

    def writer() -> None:
        size = len(ids) // TICKS
        for tick in range(TICKS):
            time.sleep(max(0.0, acted + (tick + 1) * SPREAD / TICKS - time.monotonic()))
            store.write(ids[tick * size : (tick + 1) * size])
            written.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    evidence = waiter.wait()
    verdict = time.monotonic()
    thread.join()
    received = sum(e.status is EvidenceStatus.RECEIVED for e in evidence)
    asked, cycles = counted.asked, len(pauses) + 1
    latency, interval = verdict - written[-1], pauses[-1] if pauses else 0.0
    within = "within" if latency <= interval else "NOT within"
    return action_at, [
        row("received", f"{received}/{len(ids)}"),
        row("writer", f"{len(ids)} events, {TICKS} batches, over {written[-1] - acted:.2f} s"),
        row("searches / poll cycles", f"{len(asked)} / {cycles}"),
        row("queries per poll cycle", f"{len(asked) / cycles:.2f}   (target 1)"),
        row("ids asked per search", ", ".join(map(str, asked))),
        row("each search's time (ms)", ", ".join(f"{t * 1000:.1f}" for t in counted.took)),
        row("pauses between polls (s)", ", ".join(f"{p:.3f}" for p in pauses)),
        row("poll interval in effect", f"{interval:.3f} s   (the pause before the final poll)"),
        row("last event to verdict", f"{latency:.3f} s   ({within} one poll interval)"),
    ]


def row(label: str, value: str) -> str:
    return f"  {label:34}{value}"


def baseline(store: Store, ids: list[str], since: datetime, repetitions: int) -> list[str]:
    until = datetime.now(UTC) + timedelta(minutes=1)
    singles = [SiemQuery(frozenset({cid}), since, until) for cid in ids]
    every = SiemQuery(frozenset(ids), since, until)

    def naive() -> None:
        assert sum(len(store.search(query)) for query in singles) == len(ids)

    def batched() -> None:
        assert len(store.search(every)) == len(ids)

    timings = measure([("naive", naive), ("batched", batched)], repetitions)
    one, many = statistics.median(timings["batched"]), statistics.median(timings["naive"])
    return [
        row(f"{len(ids)} single-id searches", f"median {many * 1000:8.1f} ms"),
        row(f"one search of all {len(ids)} ids", f"median {one * 1000:8.1f} ms"),
        row(f"ratio (one batched / {len(ids)} single)", f"{one / many:.4f}   ({many / one:.0f}x less time)"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    print(f"SIEM wait phase: {IDS} pending ids in one EvidenceWait, poll {POLL} s growing to {MAX_POLL} s;")
    print(f"baseline after arrival: medians of {args.repetitions} alternating repetitions")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        moto = start_moto(folder / "moto", ACCOUNT)
        stack.callback(moto.stop)
        postgres = start_postgres(folder / "postgres")
        stack.callback(postgres.stop)
        stores: list[tuple[str, str, Store]] = [
            ("file", "a JSON-lines file in a temp dir", FileStore(folder)),
            ("cloudwatch_logs", "moto, key testing, IAM enforcement off", CloudWatchStore(folder, moto.url)),
            ("sql", "PostgreSQL, jsonb body, index on correlation_id", SqlStore(folder, postgres)),
        ]
        for name, what, store in stores:
            run = secrets.token_hex(4)  # a run per connector: ids pp-<run>-step-<n>
            ids = [f"pp-{run}-step-{n}" for n in range(IDS)]
            since, lines = wait_phase(name, store, ids)
            lines += baseline(store, ids, since - timedelta(minutes=1), args.repetitions)
            print(f"\n{name} ({what})")
            print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
