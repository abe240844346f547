"""The AWS plane's cost: a 50-step read scenario through parityprobe against the same boto3 calls made
directly, and what ``aws.call`` adds per step.

Both run against one moto server (started here, IAM enforcement on) as a workload user that may read one
secret and one object. The read scenario cycles through ``aws.caller_identity``, ``aws.secret_read`` and
``aws.s3_get_object``; the direct script makes the same requests with one boto3 session and its clients
(built once; one attempt each, as parityprobe makes). The ``aws.call`` scenario is 50
``sts GetCallerIdentity`` steps through the generic probe, against 50 direct calls: the difference divided
by 50 is what the harness and the generic probe (binding the operation against botocore's model, the
effect rule, the reply filtering) add to each step. Repetitions alternate; medians are compared.

    python bench/aws_reads.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
from alternating import measure
from botocore.config import Config

from parityprobe.lab.servers import start_moto
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

ACCOUNT = "123456789012"
REGION = "us-east-1"
STEPS = 50
USER, BUCKET, KEY, SECRET = "bench-app", "bench-data", "reports/q1.csv", "bench/api-key"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
    ],
}
READS = [
    "{{id: s{i}, probe: aws.caller_identity}}",
    "{{id: s{i}, probe: aws.secret_read, with: {{secret_id: " + SECRET + "}}}}",
    "{{id: s{i}, probe: aws.s3_get_object, with: {{bucket: " + BUCKET + ", key: " + KEY + "}}}}",
]
CALL = "{{id: s{i}, probe: aws.call, with: {{service: sts, operation: GetCallerIdentity}}}}"


def scenario(name: str, steps: list[str]) -> str:
    body = "\n".join(f"  - {step.format(i=i)}" for i, step in enumerate(steps))
    return f"id: {name}\nsteps:\n{body}\n"


def seed(url: str) -> dict[str, str]:
    """The workload user and its key, a secret and an object; then IAM enforcement on."""
    bootstrap: dict[str, Any] = {
        "endpoint_url": url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    iam = boto3.client("iam", **bootstrap)
    iam.create_user(UserName=USER)
    iam.put_user_policy(UserName=USER, PolicyName="reads", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    s3 = boto3.client("s3", **bootstrap, config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"quarter,total\nq1,10\n")
    boto3.client("secretsmanager", **bootstrap).create_secret(Name=SECRET, SecretString="bench-value")
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0", timeout=10.0).raise_for_status()
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def environments(folder: Path, url: str, key: dict[str, str]) -> Path:
    (folder / "key-id").write_text(key["id"])
    (folder / "key-secret").write_text(key["secret"])
    path = folder / "environments.yaml"
    path.write_text(
        "environments:\n  bench:\n    tier: staging\n"
        f"    aws:\n      region: {REGION}\n      endpoint_url: {url}\n"
        "      credentials: {method: static, access_key_id: {file: key-id}, "
        "secret_access_key: {file: key-secret}}\n"
    )
    return path


class Direct:
    """The steps' requests made with boto3: one session and one client per service, built once (so the
    baseline pays no client set-up, which parityprobe pays on every run), one attempt per call."""

    def __init__(self, url: str, key: dict[str, str]) -> None:
        session = boto3.Session(
            aws_access_key_id=key["id"], aws_secret_access_key=key["secret"], region_name=REGION
        )
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=10)
        self.sts = session.client("sts", endpoint_url=url, config=config)
        self.sm = session.client("secretsmanager", endpoint_url=url, config=config)
        self.s3 = session.client("s3", endpoint_url=url, config=config)

    def run(self, calls: list[int]) -> None:
        for kind in calls:
            if kind == 0:
                self.sts.get_caller_identity()
            elif kind == 1:
                self.sm.get_secret_value(SecretId=SECRET, VersionStage="AWSCURRENT")
            else:
                self.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = start_moto(folder / "moto", ACCOUNT)
        try:
            key = seed(server.url)
            envs = environments(folder, server.url, key)
            redactor, registry = Redactor(), ProbeRegistry()
            (folder / "reads.yaml").write_text(scenario("bench-reads", [READS[i % 3] for i in range(STEPS)]))
            (folder / "call.yaml").write_text(scenario("bench-call", [CALL] * STEPS))
            reads_plan = plan(envs, [folder / "reads.yaml"], redactor, registry)
            call_plan = plan(envs, [folder / "call.yaml"], redactor, registry)

            def tool(the_plan: Any) -> Callable[[], None]:
                def go() -> None:
                    report = execute(the_plan, redactor, registry)
                    (comparison,) = report.comparisons
                    (run,) = comparison.runs
                    bad = [o.describe() for o in run.observations if o.outcome.value != "allowed"]
                    assert not bad, bad

                return go

            boto = Direct(server.url, key)
            reads = measure(
                [
                    ("parityprobe", tool(reads_plan)),
                    ("direct boto3", lambda: boto.run([i % 3 for i in range(STEPS)])),
                ],
                args.repetitions,
            )
            calls = measure(
                [
                    ("parityprobe", tool(call_plan)),
                    ("direct boto3", lambda: boto.run([0] * STEPS)),
                ],
                args.repetitions,
            )
        finally:
            server.stop()
    print(f"AWS read scenario ({STEPS} steps), {args.repetitions} repetitions, one moto server")
    for name, values in reads.items():
        print(
            f"  {name:13} median {statistics.median(values) * 1000:8.1f} ms  (min {min(values) * 1000:.1f})"
        )
    ratio = statistics.median(reads["parityprobe"]) / statistics.median(reads["direct boto3"])
    print(f"read scenario ratio (parityprobe / direct boto3): {ratio:.3f}")
    tool_ms = statistics.median(calls["parityprobe"]) * 1000
    base_ms = statistics.median(calls["direct boto3"]) * 1000
    print(f"{STEPS}-step aws.call scenario: parityprobe {tool_ms:.1f} ms, direct boto3 {base_ms:.1f} ms")
    print(f"aws.call cost per step: {(tool_ms - base_ms) / STEPS:.3f} ms  (ratio {tool_ms / base_ms:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
