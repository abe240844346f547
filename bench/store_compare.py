"""``compare --store`` over a large store: 1,000,000 stored observations (50,000 runs of 20 steps: 10
scenarios in 2 environments, over the last 23 hours), on SQLite and on PostgreSQL. Target: < 2 s each.

Measured, per database, in one process, alternating (``alternating.measure``), medians:

- ``compare``: :func:`parityprobe.pipeline.compare_stored` over a 24-hour window holding every run, as the
  command does it (a fresh store object, heads read and paired, the chosen runs read whole, compared);
- ``heads``: reading the run heads alone (``ResultStore.run_heads``): the floor a pairing in Python has;
- ``old slice``: the way before, reading every run of the window whole (``ResultStore.runs``) and pairing
  them, over the newest ``--slice`` of the window; scaled to the whole window by its share of the runs
  (reading and decoding records is linear in their number).

Then each database's plan for the heads query (the statement the store sends, captured as it is sent):
SQLite's ``EXPLAIN QUERY PLAN``, PostgreSQL's ``EXPLAIN (ANALYZE, BUFFERS)``.

The fixture is loaded first (not measured): runs built from the model's types, records by the codec,
SQLite by executemany, PostgreSQL by COPY then VACUUM ANALYZE.

    python bench/store_compare.py [--observations N] [--repetitions N] [--slice FRACTION]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from alternating import measure
from sqlalchemy import event
from store_fixture import Shape, bulk_load, postgres_database

from parityprobe.pipeline import compare_stored
from parityprobe.runner import utc_now
from parityprobe.store import ResultStore, pair_runs

TARGET = 2.0
WINDOW = timedelta(hours=24)


def old_way(url: str, window: timedelta) -> int:
    """What compare_stored did before: every run of the window read whole, then paired. How many runs."""
    store = ResultStore(url)
    try:
        stored = store.runs(utc_now() - window)
    finally:
        store.close()
    pair_runs(stored)
    return len(stored)


def heads(url: str) -> int:
    store = ResultStore(url)
    try:
        return len(store.run_heads(utc_now() - WINDOW))
    finally:
        store.close()


def plans(url: str, scenario: str) -> list[str]:
    """The database's plan for the heads query, whole window and one scenario, as the store sends them."""
    store = ResultStore(url)
    sent: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if "FROM runs" in statement:
            sent.append((statement, parameters))

    try:
        store.ping()
        event.listen(store.engine, "before_cursor_execute", capture)
        store.run_heads(utc_now() - WINDOW)
        store.run_heads(utc_now() - WINDOW, scenario)
        event.remove(store.engine, "before_cursor_execute", capture)
        explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
        lines: list[str] = []
        with store.engine.connect() as connection:
            for statement, parameters in sent:
                lines.append("  " + " ".join(statement.split()))
                for row in connection.exec_driver_sql(explain + statement, parameters):
                    lines.append("    " + " | ".join(str(v) for v in row))
        return lines
    finally:
        store.close()


def report(name: str, url: str, shape: Shape, repetitions: int, share: float) -> float:
    since_slice = shape.span * share
    found = heads(url)
    sliced = old_way(url, since_slice)
    comparisons = compare_stored(url, WINDOW).comparisons
    assert found == shape.runs, (found, shape.runs)
    assert len(comparisons) == shape.scenarios and all(len(c.runs) == 2 for c in comparisons)
    timings = measure(
        [
            ("compare", lambda: compare_stored(url, WINDOW) and None),
            ("heads", lambda: heads(url) and None),
            ("old slice", lambda: old_way(url, since_slice) and None),
        ],
        repetitions,
    )
    compare_s = statistics.median(timings["compare"])
    heads_s = statistics.median(timings["heads"])
    old_s = statistics.median(timings["old slice"]) * shape.runs / sliced
    verdict = "meets" if compare_s < TARGET else "MISSES"
    print(
        f"{name}: compare over {shape.observations:,} observations ({shape.runs:,} runs): {compare_s:.3f} s"
    )
    print(f"  heads alone ({found:,} rows): {heads_s:.3f} s; compare / heads = {compare_s / heads_s:.2f}")
    print(
        f"  old way, every run read whole: {old_s:.2f} s (measured on the newest {sliced:,} runs, scaled by "
        f"{shape.runs / sliced:.1f}); old / new = {old_s / compare_s:.1f}x"
    )
    print(f"  target < {TARGET:.0f} s: {verdict}")
    for line in plans(url, "bench-03"):
        print(line)
    return compare_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--slice", type=float, default=0.03, help="share of the window the old way reads")
    args = parser.parse_args()
    shape = Shape.for_observations(args.observations)
    with tempfile.TemporaryDirectory(prefix="store-compare-") as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'store.db'}"
        with postgres_database(Path(tmp) / "pg") as (_, pg_url):
            start = time.perf_counter()
            bulk_load([sqlite_url, pg_url], shape)
            print(f"fixture: {shape.runs:,} runs, {shape.observations:,} observations, "
                  f"loaded in {time.perf_counter() - start:.0f} s (not measured)")  # fmt: skip
            worst = max(
                report("sqlite", sqlite_url, shape, args.repetitions, args.slice),
                report("postgresql", pg_url, shape, args.repetitions, args.slice),
            )
    return 0 if worst < TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
