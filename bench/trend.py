"""The cost of ``parityprobe report``'s trend over a store's history, against one ``compare --store``.

A SQLite store holds 90 days of hourly runs (3 scenarios of 6 steps, staging and production: 12,960 runs),
loaded by bench/store_fixture.py. The trend pairs and compares the stored runs at the end of each of the
90 days; it reads each run it pairs once, however many days pair it. Printed: both times, their ratio, and
how many runs the trend read whole against how many it compared over all its points. ``compare --store``
also reads the latency judge's history (every step's latency of the last 7 days), which the trend does not.

    python bench/trend.py [--days 90] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event
from store_fixture import Shape, bulk_load

from parityprobe.pipeline import compare_stored
from parityprobe.report.trend import trend
from parityprobe.store import ResultStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    shape = Shape(3, 6, args.days * 24, now, span=timedelta(days=args.days))
    window = shape.span + timedelta(hours=1)
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'trend.db'}"
        bulk_load([url], shape)
        store = ResultStore(url)
        reads: list[int] = []

        def count(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
            if "runs.record" in statement and isinstance(parameters, tuple | list):
                reads.append(len(parameters))

        event.listen(store.engine, "before_cursor_execute", count)
        compare_times, trend_times = [], []
        points = ()
        for _ in range(args.repetitions):
            start = time.perf_counter()
            compare_stored(url, window)
            compare_times.append(time.perf_counter() - start)
            reads.clear()
            start = time.perf_counter()
            points = trend(store, shape.now - window, shape.now)
            trend_times.append(time.perf_counter() - start)
        store.close()
    one, whole = statistics.median(compare_times), statistics.median(trend_times)
    paired = sum(p.runs for p in points)
    print(f"{shape.runs} stored runs over {args.days} days; {len(points)} trend points")
    print(f"compare --store (now):        {one * 1e3:8.1f} ms")
    print(f"trend over {len(points)} points:        {whole * 1e3:8.1f} ms")
    print(f"trend / one compare:          {whole / one:8.2f}")
    read = sum(reads)
    print(f"runs read whole by the trend: {read}, for {paired} runs compared across its points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
