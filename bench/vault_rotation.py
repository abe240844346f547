"""The Vault plane's cost: a rotation scenario through parityprobe against the same hvac calls made directly,
and the harness cost per step over a long scenario.

Both run against one real OpenBao dev server (started here) with an AppRole workload that may rotate its own
secret ids. The rotation scenario: generate a new secret id, log in with it (waiting for it to work), destroy
the old one (generated just before), a login with it is refused (waiting for the refusal), and cleanup:
the tokens of the logins revoked, the new secret id destroyed; the direct script makes exactly those
requests with hvac. The long scenario is 200 ``vault.token_lookup`` steps, against 200 direct lookups; its
difference divided by 200 is what the harness adds to each step (rendering, binding, the worker thread,
the observation, the comparison). Repetitions alternate; medians are compared.

    python bench/vault_rotation.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import hvac
from alternating import measure
from openbao_bench import approle_bench

from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry

ROLE = "bench-app"
LONG_STEPS = 200
POLICY = f"""
path "auth/approle/role/{ROLE}/secret-id" {{ capabilities = ["update"] }}
path "auth/approle/role/{ROLE}/secret-id-accessor/destroy" {{ capabilities = ["update"] }}
"""
ROTATION = f"""\
id: bench-rotation
steps:
  - {{id: old, probe: vault.approle_secret_id, with: {{role: {ROLE}}}}}
  - {{id: new, probe: vault.approle_secret_id, with: {{role: {ROLE}}}}}
  - id: login-new
    probe: vault.approle_login
    with: {{secret_id: '${{{{ steps.new.outputs.secret_id }}}}'}}
    expect: {{outcome: allowed, within: 5s}}
  - id: destroy-old
    probe: vault.approle_secret_id_destroy
    with: {{role: {ROLE}, accessor: '${{{{ steps.old.outputs.accessor }}}}'}}
  - id: login-old
    probe: vault.approle_login
    with: {{secret_id: '${{{{ steps.old.outputs.secret_id }}}}'}}
    expect: {{outcome: denied, within: 5s}}
"""


def long_scenario() -> str:
    steps = "\n".join(f"  - {{id: look-{i}, probe: vault.token_lookup}}" for i in range(LONG_STEPS))
    return f"id: bench-long\nsteps:\n{steps}\n"


def direct_rotation(url: str, role_id: str, secret_id: str) -> None:
    """The rotation scenario's requests, made with hvac: the environment's login, then each step's."""
    client = hvac.Client(url=url)
    approle = client.auth.approle
    client.token = approle.login(role_id=role_id, secret_id=secret_id, use_token=False)["auth"][
        "client_token"
    ]
    old = approle.generate_secret_id(role_name=ROLE)["data"]
    new = approle.generate_secret_id(role_name=ROLE)["data"]
    tokens = [
        approle.login(role_id=role_id, secret_id=new["secret_id"], use_token=False)["auth"]["client_token"]
    ]
    approle.destroy_secret_id_accessor(role_name=ROLE, secret_id_accessor=old["secret_id_accessor"])
    try:
        approle.login(role_id=role_id, secret_id=old["secret_id"], use_token=False)
        raise AssertionError("the destroyed secret id still logs in")
    except hvac.exceptions.InvalidRequest:
        pass
    # The undos parityprobe runs: the tokens revoked by themselves, the new secret id destroyed.
    for token in tokens:
        hvac.Client(url=url, token=token).auth.token.revoke_self()
    approle.destroy_secret_id_accessor(role_name=ROLE, secret_id_accessor=new["secret_id_accessor"])
    client.adapter.close()


def direct_long(url: str, role_id: str, secret_id: str) -> None:
    client = hvac.Client(url=url)
    client.token = client.auth.approle.login(role_id=role_id, secret_id=secret_id, use_token=False)["auth"][
        "client_token"
    ]
    for _ in range(LONG_STEPS):
        client.auth.token.lookup_self()
    client.adapter.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    with approle_bench(ROLE, POLICY) as bench:
        folder, admin, url = bench.folder, bench.admin, bench.url
        role_id, secret_id, envs = bench.role_id, bench.secret_id, bench.environments
        redactor, registry = Redactor(), ProbeRegistry()
        (folder / "rotation.yaml").write_text(ROTATION)
        (folder / "long.yaml").write_text(long_scenario())
        rotation_plan = plan(envs, [folder / "rotation.yaml"], redactor, registry)
        long_plan = plan(envs, [folder / "long.yaml"], redactor, registry)

        def tool(the_plan: Any) -> Callable[[], None]:
            def go() -> None:
                report = execute(the_plan, redactor, registry)
                (comparison,) = report.comparisons
                (run,) = comparison.runs
                bad = [o.describe() for o in (*run.observations, *run.cleanup) if o.outcome.value == "error"]
                assert not bad and not report.findings, (bad, [f.message for f in report.findings])

            return go

        rotation = measure(
            [
                ("parityprobe", tool(rotation_plan)),
                ("direct hvac", lambda: direct_rotation(url, role_id, secret_id)),
            ],
            args.repetitions,
        )
        long = measure(
            [
                ("parityprobe", tool(long_plan)),
                ("direct hvac", lambda: direct_long(url, role_id, secret_id)),
            ],
            args.repetitions,
        )
        left = admin.list(f"auth/approle/role/{ROLE}/secret-id")
        accessors = (left or {}).get("data", {}).get("keys", [])
    print(f"Vault rotation scenario (5 steps + undos), {args.repetitions} repetitions, one OpenBao")
    for name, values in rotation.items():
        print(
            f"  {name:12} median {statistics.median(values) * 1000:8.1f} ms  (min {min(values) * 1000:.1f})"
        )
    ratio = statistics.median(rotation["parityprobe"]) / statistics.median(rotation["direct hvac"])
    print(f"rotation ratio (parityprobe / direct hvac): {ratio:.3f}")
    print(f"secret ids left on the role after every run: {len(accessors)} (the environment's own: 1)")
    tool_ms = statistics.median(long["parityprobe"]) * 1000
    base_ms = statistics.median(long["direct hvac"]) * 1000
    print(
        f"{LONG_STEPS}-step token_lookup scenario: parityprobe {tool_ms:.1f} ms, direct hvac {base_ms:.1f} ms"
    )
    print(
        f"harness cost per step: {(tool_ms - base_ms) / LONG_STEPS:.3f} ms  (ratio {tool_ms / base_ms:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
