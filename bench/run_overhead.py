"""Overhead of parityprobe over the bare SDK calls it makes.

A 50-step read scenario (one AppRole login, then Vault KV reads, AWS caller-identity and Secrets Manager
reads) runs in both lab environments, in parallel, through parityprobe's runner and comparator; a plain
script makes the same calls with hvac and boto3 directly, also one thread per environment. Both build their
clients afresh each repetition, as an invocation does, over one process-wide botocore data loader, as
parityprobe's AWS plane does. Repetitions alternate to share the machine's noise;
the medians are compared. Target: ratio <= 1.15.

    python bench/run_overhead.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import hvac
from botocore.config import Config

from parityprobe.config.environments import Environment
from parityprobe.lab.lab import running_lab
from parityprobe.pipeline import execute, plan
from parityprobe.probes.aws.settings import AwsSettings, AwsStaticCredentials
from parityprobe.probes.vault.settings import VaultApprole, VaultSettings
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

STEPS = 50
LOADER = botocore.loaders.create_loader()
TARGET = 1.15


def scenario_text() -> str:
    lines = ["id: bench-reads", "steps:", "  - {id: login, probe: vault.approle_login, tolerance: {ttl: 2d}}"]
    for i in range(1, STEPS):
        kind = i % 4
        if kind in (0, 1):
            lines.append(
                f"  - {{id: kv-{i}, probe: vault.kv_read, "
                "with: {token: '${{ steps.login.outputs.token }}', path: '${{ vars.team }}/db'}}"
            )
        elif kind == 2:
            lines.append(f"  - {{id: whoami-{i}, probe: aws.caller_identity}}")
        else:
            secret_id = "'${{ vars.team }}/api-key'"
            lines.append(f"  - {{id: secret-{i}, probe: aws.secret_read, with: {{secret_id: {secret_id}}}}}")
    return "\n".join(lines) + "\n"


def direct(env: Environment) -> None:
    """The same calls, made directly with the SDKs."""
    vault_settings, aws_settings = env.section("vault", VaultSettings), env.section("aws", AwsSettings)
    assert vault_settings is not None and aws_settings is not None
    auth = vault_settings.auth
    creds = aws_settings.credentials
    assert isinstance(auth, VaultApprole) and isinstance(creds, AwsStaticCredentials)
    vault = hvac.Client(url=vault_settings.address)
    login = vault.auth.approle.login(
        role_id=auth.role_id.secret().reveal(), secret_id=auth.secret_id.secret().reveal(), use_token=False
    )
    vault.token = login["auth"]["client_token"]
    core = botocore.session.Session()
    # As parityprobe does: botocore's parsed service models are shared by every session of the process.
    core.register_component("data_loader", LOADER)
    session = boto3.Session(
        botocore_session=core,
        aws_access_key_id=creds.access_key_id.secret().reveal(),
        aws_secret_access_key=creds.secret_access_key.secret().reveal(),
        region_name=aws_settings.region,
    )
    config = Config(retries={"total_max_attempts": 1})
    sts = session.client("sts", endpoint_url=aws_settings.endpoint_url, config=config)
    secrets = session.client("secretsmanager", endpoint_url=aws_settings.endpoint_url, config=config)
    team = env.vars["team"]
    for i in range(1, STEPS):
        kind = i % 4
        if kind in (0, 1):
            vault.secrets.kv.v2.read_secret_version(path=f"{team}/db", raise_on_deleted_version=True)
        elif kind == 2:
            sts.get_caller_identity()
        else:
            secrets.get_secret_value(SecretId=f"{team}/api-key", VersionStage="AWSCURRENT")
    vault.auth.token.revoke_self()  # parityprobe revokes the login's token after the scenario (its undo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp) / "lab") as lab:
        scenario = Path(tmp) / "bench.yaml"
        scenario.write_text(scenario_text())
        redactor, registry = Redactor(), ProbeRegistry()
        the_plan = plan(lab.environments_file, [scenario], redactor, registry)
        environments = list(the_plan.environments)

        def tool() -> None:
            report = execute(the_plan, redactor, registry)
            assert not report.findings, [f.message for f in report.findings]

        def baseline() -> None:
            with ThreadPoolExecutor(len(environments)) as pool:
                list(pool.map(direct, environments))

        tool(), baseline()  # warm both paths: imports, connection set-up, server caches
        timings: dict[str, list[float]] = {"parityprobe": [], "direct SDK": []}
        for i in range(args.repetitions):
            order = [("parityprobe", tool), ("direct SDK", baseline)]
            for name, func in order if i % 2 == 0 else reversed(order):
                start = time.perf_counter()
                func()
                timings[name].append(time.perf_counter() - start)
    tool_median = statistics.median(timings["parityprobe"])
    base_median = statistics.median(timings["direct SDK"])
    ratio = tool_median / base_median
    print(f"{STEPS}-step read scenario x {len(environments)} environments, {args.repetitions} repetitions")
    for name, values in timings.items():
        print(
            f"  {name:12} median {statistics.median(values) * 1000:8.1f} ms  "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"run overhead ratio (parityprobe / direct SDK): {ratio:.3f}  [{verdict} target {TARGET}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
