"""Many scenarios in one invocation: does the harness cost grow with the number of scenarios run?

Copies of the built-in scenarios (``scenarios/*.yaml``: AppRole logins, reads, denied reads, a denied
break-glass assume-role), each copy with a distinct scenario id, are written to a temporary directory and
run in both environments of the default lab, on real OpenBao and moto servers, through the pipeline API
(``plan`` then ``execute``), at 5, 20 and 50 copies. Every repetition is a fresh invocation: a new
redactor, a new plan; only ``execute`` is timed.

For each size it prints the wall time and the lower bound: per environment, the sum of the latency of its
observations (the time its probes spent in network calls), the slowest environment's sum; then
wall / lower bound, and the marginal cost per extra step execution between successive sizes. A harness
whose own cost is constant per step keeps the marginal cost flat as the invocation grows; a cost that grows
with what the invocation has seen (secrets registered, runs kept) shows as a rising marginal cost.
Targets: wall / lower bound <= 1.2 at the largest size, marginal cost flat (last / first <= 1.2).

    python bench/many_scenarios.py [--sizes 5,20,50] [--repetitions N] [--concurrency N] [--regex-redactor]

``--concurrency`` is passed to ``execute`` when it accepts a ``concurrency`` keyword; otherwise the script
says so and runs without it. ``--regex-redactor`` runs with the former redactor (bench/redact.py's
baseline) instead of parityprobe's, to compare the two on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import inspect
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from parityprobe.lab.lab import running_lab
from parityprobe.model import Report
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
RATIO_TARGET = 1.2
FLAT_TARGET = 1.2
_ID_LINE = re.compile(r"^id:\s*(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Measure:
    """One size: medians over the repetitions, and what the last repetition did."""

    copies: int
    steps: int
    wall: float
    lower_bound: float
    outcomes: Counter[str]

    @property
    def ratio(self) -> float:
        return self.wall / self.lower_bound if self.lower_bound else float("inf")


def write_copies(directory: Path, copies: int) -> list[Path]:
    """``copies`` copies of every built-in scenario in ``directory``, each with its own scenario id."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = sorted(SCENARIOS.glob("*.yaml"))
    if not sources:
        raise SystemExit(f"no scenarios in {SCENARIOS}")
    for source in sources:
        text = source.read_text(encoding="utf-8")
        if not _ID_LINE.search(text):
            raise SystemExit(f"{source}: no top-level 'id:' line to rename")
        for i in range(copies):
            renamed = _ID_LINE.sub(rf"id: \g<1>-copy{i:03d}", text, count=1)
            (directory / f"{source.stem}-copy{i:03d}.yaml").write_text(renamed, encoding="utf-8")
    return [directory]


def lower_bound(report: Report) -> float:
    """Seconds: per environment the sum of its observations' latency, the slowest environment's sum."""
    per_env: dict[str, float] = {}
    for comparison in report.comparisons:
        for run in comparison.runs:
            for obs in (*run.observations, *run.cleanup):
                seconds = (obs.latency_ms or 0.0) / 1000
                per_env[run.environment] = per_env.get(run.environment, 0.0) + seconds
    return max(per_env.values(), default=0.0)


def step_count(report: Report) -> int:
    """Step executions over all environments (cleanup included)."""
    return sum(len(run.observations) + len(run.cleanup) for c in report.comparisons for run in c.runs)


def outcomes(report: Report) -> Counter[str]:
    """How many observations had each outcome, to show the logins and denied steps really ran."""
    return Counter(
        obs.outcome.value for c in report.comparisons for run in c.runs for obs in run.observations
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,20,50", help="numbers of copies, comma-separated")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--step-timeout", type=float, default=30.0)
    parser.add_argument("--regex-redactor", action="store_true", help="the former redactor, as a baseline")
    args = parser.parse_args()
    make_redactor: Callable[[], Redactor] = Redactor
    if args.regex_redactor:
        from redact import RegexRedactor  # bench/redact.py, next to this script

        make_redactor = cast(Callable[[], Redactor], RegexRedactor)
        print("redactor: the former regex one (baseline)")
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    extra: dict[str, Any] = {}
    accepted = inspect.signature(execute).parameters.get("concurrency")
    if accepted is None:
        concurrency = 1
        if args.concurrency is not None:
            print(
                f"--concurrency {args.concurrency}: unsupported (execute() takes no 'concurrency'); ignored"
            )
    elif args.concurrency is not None:
        concurrency = extra["concurrency"] = args.concurrency
    else:
        concurrency = accepted.default
    print(f"concurrency: {concurrency} scenario(s) at a time per environment")

    measures: list[Measure] = []
    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp) / "lab") as lab:

        def invocation(paths: list[Path]) -> tuple[float, Report]:
            redactor, registry = make_redactor(), ProbeRegistry()
            the_plan = plan(lab.environments_file, paths, redactor, registry)
            start = time.perf_counter()
            report = execute(the_plan, redactor, registry, args.step_timeout, **extra)
            return time.perf_counter() - start, report

        invocation(write_copies(Path(tmp) / "warm", 1))  # imports, connections, server caches
        for copies in sizes:
            paths = write_copies(Path(tmp) / f"copies-{copies}", copies)
            walls: list[float] = []
            bounds: list[float] = []
            report: Report | None = None
            for _ in range(args.repetitions):
                wall, report = invocation(paths)
                walls.append(wall)
                bounds.append(lower_bound(report))
            assert report is not None
            measures.append(
                Measure(
                    copies,
                    step_count(report),
                    statistics.median(walls),
                    statistics.median(bounds),
                    outcomes(report),
                )
            )

    scenarios = len(list(SCENARIOS.glob("*.yaml")))
    print(f"{scenarios} built-in scenarios x N copies, 2 lab environments, median of {args.repetitions}")
    print(
        f"{'copies':>6} {'steps':>6} {'wall s':>8} {'bound s':>8} {'wall/bound':>10} {'marginal ms/step':>17}"
    )
    marginals: list[float] = []
    previous: Measure | None = None
    for m in measures:
        marginal = ""
        if previous is not None and m.steps > previous.steps:
            cost = (m.wall - previous.wall) / (m.steps - previous.steps)
            marginals.append(cost)
            marginal = f"{cost * 1000:.2f}"
        print(f"{m.copies:6d} {m.steps:6d} {m.wall:8.3f} {m.lower_bound:8.3f} {m.ratio:10.3f} {marginal:>17}")
        previous = m
    print(
        "outcomes at the largest size: "
        + ", ".join(f"{k} {v}" for k, v in sorted(measures[-1].outcomes.items()))
    )
    if concurrency != 1:
        print("note: with scenarios running side by side the latency sums overlap, so the 'bound' is not one")
    last = measures[-1]
    verdict = "within" if last.ratio <= RATIO_TARGET else "OVER"
    print(f"wall / lower bound at {last.copies} copies: {last.ratio:.3f}  [{verdict} target {RATIO_TARGET}]")
    if len(marginals) >= 2 and marginals[0] > 0:
        growth = marginals[-1] / marginals[0]
        verdict = "within" if growth <= FLAT_TARGET else "OVER"
        print(
            f"marginal cost, {sizes[-2]}->{sizes[-1]} copies / {sizes[0]}->{sizes[1]} copies: {growth:.3f}  "
            f"[{verdict} target {FLAT_TARGET}: flat]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
