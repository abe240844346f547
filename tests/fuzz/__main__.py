"""``make fuzz``: many cases, the summary, exit 1 when any case is not clean.

    python -m tests.fuzz [--cases N] [--seed S] [--workers W] [--timeout S] [--memory-gib G] [--root DIR]
    python -m tests.fuzz --seed S --case N      # replay one case, with its stderr and traceback

``PP_FUZZ_CASES`` and ``PP_FUZZ_SEED`` give the defaults (10,000 cases, seed 1); ``PP_FUZZ_SEED=random``
picks a new seed and prints it. Inputs of failing cases stay under ``--root``: ``.parityprobe/fuzz``, or
``.parityprobe/fuzz-replay`` for a replay.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from tests.fuzz.corpus import REPO
from tests.fuzz.pool import GIB, Settings, run, seed_from_environment
from tests.fuzz.report import describe, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=int(os.environ.get("PP_FUZZ_CASES", "10000")))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--case", type=int, default=None, help="replay this one case, in full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case (a hang beyond)")
    parser.add_argument("--memory-gib", type=float, default=2.0, help="address-space limit per worker")
    parser.add_argument("--root", type=Path, default=None, help="default: .parityprobe/fuzz (-replay)")
    parser.add_argument("--examples", type=int, default=2, help="examples shown per failure class")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else seed_from_environment()
    cases = [args.case] if args.case is not None else range(args.cases)
    # A replay keeps its own folder, so that the inputs of the run it replays stay where the report says.
    root: Path = args.root or REPO / ".parityprobe" / ("fuzz-replay" if args.case is not None else "fuzz")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    last = [time.monotonic()]

    def progress(done: int) -> None:
        if time.monotonic() - last[0] > 15:
            last[0] = time.monotonic()
            print(f"  {done} cases done", file=sys.stderr, flush=True)

    settings = Settings(
        seed=seed,
        cases=cases,
        root=root,
        workers=1 if args.case is not None else args.workers,
        timeout=args.timeout,
        memory=int(args.memory_gib * GIB),
        progress=progress,
    )
    print(f"fuzz: seed {seed}, {len(cases)} case(s), inputs under {root}", file=sys.stderr, flush=True)
    outcome = run(settings)
    if args.case is not None:
        (result,) = outcome.results
        if result["failure"] is None:
            code, seconds = result.get("code"), result["seconds"]
            print(f"case {args.case} (seed {seed}) is clean: exit {code}, {seconds:.2f} s")
            return 0
        print(describe(result, seed, full=True))
        return 1
    (root / "results.json").write_text(json.dumps(outcome.results, indent=1))
    print(summary(outcome, examples=args.examples))
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
