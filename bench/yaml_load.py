"""Loading scenario files: libyaml's parser against the pure-Python one, through parityprobe's own loader.

150 files, copies of the built-in scenarios (``scenarios/*.yaml``), are loaded with ``load_yaml`` and
each parser in turn, in one process; the pure-Python parser is the baseline. Both paths do the same work
besides parsing (limit checks, plain-data checks, the line index). Repetitions alternate so that both
share the machine's noise; the medians are compared.

    python bench/yaml_load.py [--files N] [--repetitions N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from parityprobe.config import yamlsource

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def load_all(paths: list[Path], libyaml: bool) -> float:
    start = time.perf_counter()
    for path in paths:
        yamlsource.load_yaml(path, libyaml=libyaml)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=150)
    parser.add_argument("--repetitions", type=int, default=15)
    args = parser.parse_args()
    if not yamlsource.LIBYAML:
        print("PyYAML is built without libyaml here: only the pure-Python parser is available")
        return 1
    originals = sorted(SCENARIOS.glob("*.yaml"))
    with tempfile.TemporaryDirectory(prefix="pp-yaml-bench-") as directory:
        paths = []
        for i in range(args.files):
            source = originals[i % len(originals)]
            paths.append(Path(directory) / f"{i:04d}-{source.name}")
            shutil.copyfile(source, paths[-1])
        python: list[float] = []
        libyaml: list[float] = []
        load_all(paths, libyaml=True)  # warm the file cache and the imports for both
        for _ in range(args.repetitions):
            python.append(load_all(paths, libyaml=False))
            libyaml.append(load_all(paths, libyaml=True))
    slow, fast = statistics.median(python), statistics.median(libyaml)
    print(f"{args.files} scenario files, median of {args.repetitions} repetitions each")
    print(f"pure-Python parser (baseline): {slow * 1000:7.1f} ms")
    print(f"libyaml parser:                {fast * 1000:7.1f} ms")
    print(f"ratio libyaml / Python: {fast / slow:.2f} ({slow / fast:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
