"""Start-up time of ``parityprobe --help``: the SDKs and the OpenTelemetry SDK must load lazily.

Each repetition starts a fresh interpreter; a bare ``python -c pass`` is timed alongside, in the same
loop, as the baseline for the machine's noise. Target: median < 0.3 s.

    python bench/startup.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.3


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=15)
    args = parser.parse_args()
    entry = shutil.which("parityprobe", path=str(Path(sys.executable).parent)) or "parityprobe"
    tool: list[float] = []
    bare: list[float] = []
    for _ in range(args.repetitions):
        tool.append(timed([entry, "--help"]))
        bare.append(timed([sys.executable, "-c", "pass"]))
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, parityprobe.cli; print(sorted(m for m in ('boto3', 'hvac', "
            "'botocore', 'opentelemetry.sdk', 'pydantic') if m in sys.modules))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    median, baseline = statistics.median(tool), statistics.median(bare)
    verdict = "within" if median < TARGET_SECONDS else "OVER"
    print(
        f"parityprobe --help: median {median * 1000:.0f} ms over {args.repetitions} runs  "
        f"[{verdict} target {TARGET_SECONDS * 1000:.0f} ms]"
    )
    print(f"bare interpreter:   median {baseline * 1000:.0f} ms; ratio {median / baseline:.2f}")
    print(f"heavy modules imported by the CLI module: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
