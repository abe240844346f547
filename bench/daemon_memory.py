"""The daemon's memory over many runs: resident set size (RSS) after 1,000 due runs, and its growth between
run 500 and run 1,000 (targets: < 120 MB, < 5 %).

One real OpenBao dev server (started here) with an AppRole workload. The daemon is built as the command
builds it (store and journal in SQLite files, telemetry with a Prometheus reader, the store listener, the
undo journal) and its due-run function is called back to back, as the schedule would call it: each run logs
in, looks its token up, generates a secret id (an undo journalled and run), reads an allowed and a forbidden
path, and is stored. The baseline, measured in the same process, is the RSS after the first run (everything
imported, every client built); the ratios are against it.

    python bench/daemon_memory.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openbao_bench import approle_bench

from parityprobe.daemon.daemon import Daemon, DaemonSettings
from parityprobe.daemon.records import ScheduleEvent
from parityprobe.pipeline import plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.store import ResultStore
from parityprobe.telemetry.listener import TelemetryListener
from parityprobe.telemetry.providers import make_telemetry

ROLE = "bench-daemon"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
POLICY = f"""
path "auth/approle/role/{ROLE}/secret-id" {{ capabilities = ["update"] }}
path "auth/approle/role/{ROLE}/secret-id-accessor/destroy" {{ capabilities = ["update"] }}
path "secret/data/bench/*" {{ capabilities = ["read"] }}
"""
SCENARIO = f"""\
id: bench-daemon
steps:
  - {{id: login, probe: vault.approle_login}}
  - {{id: lookup, probe: vault.token_lookup, with: {{token: '${{{{ steps.login.outputs.token }}}}'}}}}
  - {{id: new-id, probe: vault.approle_secret_id, with: {{role: {ROLE}}}}}
  - {{id: own, probe: vault.kv_read, with: {{path: bench/db}}, expect: {{outcome: allowed}}}}
  - {{id: other, probe: vault.kv_read, with: {{path: billing/db}}, expect: {{outcome: denied}}}}
"""


def rss_mb() -> float:
    """This process's resident set size, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    with approle_bench(ROLE, POLICY) as bench:
        bench.admin.secrets.kv.v2.create_or_update_secret("bench/db", secret={"password": "p"})
        (bench.folder / "scenarios").mkdir()
        (bench.folder / "scenarios" / "bench.yaml").write_text(SCENARIO)
        figures = measure(bench.folder, bench.environments, args.runs)
        left = bench.admin.list(f"auth/approle/role/{ROLE}/secret-id")
        accessors = len((left or {}).get("data", {}).get("keys", []))
    base, middle, end, stored = figures
    print(f"daemon memory: {args.runs} due runs of a 5-step Vault scenario against one OpenBao")
    print(f"  RSS after run 1 (baseline):       {base:7.1f} MB")
    print(
        f"  RSS after run {args.runs // 2:<5}              {middle:7.1f} MB  ({middle / base:.3f} x baseline)"
    )
    print(f"  RSS after run {args.runs:<5}              {end:7.1f} MB  ({end / base:.3f} x baseline)")
    print(
        f"  growth between run {args.runs // 2} and run {args.runs}: {(end - middle) / middle * 100:+.2f} %"
    )
    print(
        f"  runs in the store: {stored}; secret ids left on the role: {accessors} (the environment's own: 1)"
    )
    return 0


def measure(folder: Path, envs: Path, runs: int) -> tuple[float, float, float, int]:
    redactor, registry = Redactor(), ProbeRegistry()
    settings = DaemonSettings(
        environments_file=envs, environment="bench", paths=(folder / "scenarios",), state_dir=folder / "state"
    )

    def load() -> Any:
        return plan(envs, settings.paths, redactor, registry, ["bench"])

    telemetry = make_telemetry(prometheus=True)
    traced = TelemetryListener(telemetry, redactor)

    def count(event: ScheduleEvent) -> None:
        traced.record_schedule_event(event.environment, event.scenario, event.outcome)

    daemon = Daemon(
        settings, load(), load, redactor, registry, environ=os.environ, listeners=(traced,), on_event=count
    )
    samples: dict[int, float] = {}
    for index in range(1, runs + 1):
        run = daemon.due("bench-daemon")
        assert run is not None and not [o for o in run.observations if o.outcome.value == "error"]
        if index in (1, runs // 2, runs):
            samples[index] = rss_mb()
    telemetry.prometheus_text()  # the endpoint's work, once: its registry holds every series
    traced.close()
    telemetry.shutdown()
    stored = len(ResultStore(f"sqlite:///{folder / 'state' / 'results.db'}").runs(EPOCH))
    return samples[1], samples[runs // 2], samples[runs], stored


if __name__ == "__main__":
    raise SystemExit(main())
