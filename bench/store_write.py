"""The result store's write cost per observation: :meth:`ResultStore.write` of runs of 20 steps, one run per
call as a daemon writes them (one transaction each: the run's record and a row per step), on SQLite (a
file in write-ahead-log mode, default synchronous setting) and on PostgreSQL (the lab's throw-away cluster,
which runs with fsync off: its figure leaves out the disk flush a production server pays at each commit).

Baseline, in the same process and alternating with the writes: the codec alone for the same number of
runs (``to_record`` and ``json.dumps``, what every write does before it reaches the database). Each
repetition writes runs not written before, into a store already holding ``--preload`` runs.

    python bench/store_write.py [--runs N] [--repetitions N] [--preload N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from alternating import measure
from store_fixture import Shape, bulk_load, make_runs, postgres_database

from parityprobe.codec import to_record
from parityprobe.model import Run
from parityprobe.store import ResultStore

STEPS = 20


def batches(count: int, size: int) -> list[list[Run]]:
    """``count`` lists of ``size`` fresh runs (ids never stored), 20 steps each."""
    shape = Shape(
        scenarios=10, steps=STEPS, per_pair=-(-count * size // 20), now=Shape.for_observations(1).now
    )
    made = list(make_runs(shape, seed=11))
    return [made[i * size : (i + 1) * size] for i in range(count)]


def writer(store: ResultStore, runs: list[list[Run]]) -> Callable[[], None]:
    def write() -> None:
        for run in runs.pop():
            assert store.write(run)

    return write


def encoder(runs: list[list[Run]]) -> Callable[[], None]:
    def encode() -> None:
        for run in runs.pop():
            json.dumps(to_record(run), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    return encode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="runs written per repetition and database")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--preload", type=int, default=5_000, help="runs already in each store")
    args = parser.parse_args()
    rounds = args.repetitions + 1  # measure() warms each up once
    with tempfile.TemporaryDirectory(prefix="store-write-") as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'store.db'}"
        with postgres_database(Path(tmp) / "pg") as (_, pg_url):
            earlier = Shape.for_observations(args.preload * STEPS)
            bulk_load([sqlite_url, pg_url], replace(earlier, now=earlier.now - timedelta(days=2)))
            stores = {"sqlite": ResultStore(sqlite_url), "postgresql": ResultStore(pg_url)}
            try:
                funcs: list[tuple[str, Callable[[], None]]] = [
                    (name, writer(store, batches(rounds, args.runs))) for name, store in stores.items()
                ]
                funcs.append(("codec", encoder(batches(rounds, args.runs))))
                timings = measure(funcs, args.repetitions)
            finally:
                for store in stores.values():
                    store.close()
    per_observation = {
        name: statistics.median(times) / (args.runs * STEPS) * 1e6 for name, times in timings.items()
    }
    codec = per_observation["codec"]
    print(f"store write, {args.runs} runs of {STEPS} steps per repetition, median of {args.repetitions}:")
    print(f"  codec alone (to_record + json.dumps): {codec:.1f} us per observation")
    for name in ("sqlite", "postgresql"):
        cost = per_observation[name]
        per_run = cost * STEPS / 1000
        print(
            f"  {name}: {cost:.1f} us per observation ({per_run:.2f} ms per run); "
            f"ratio to codec {cost / codec:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
