"""What the Vault benchmarks share: one OpenBao dev server (started here, stopped after) with an AppRole
workload under a policy, and an environments file whose ``bench`` environment logs in as that workload."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac

from parityprobe.lab.servers import start_openbao
from parityprobe.secret import Secret


@dataclass(frozen=True)
class AppRoleBench:
    folder: Path  # a temporary folder for the benchmark's files
    url: str
    admin: Any  # an hvac client with the root token
    role_id: str
    secret_id: str
    environments: Path  # the environments file: one environment, ``bench``


@contextmanager
def approle_bench(role: str, policy: str) -> Iterator[AppRoleBench]:
    root = Secret("root-" + secrets.token_hex(12), "root token")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = start_openbao(folder / "openbao", root)
        try:
            admin: Any = hvac.Client(url=server.url, token=root.reveal())
            admin.sys.create_or_update_policy(role, policy)
            admin.sys.enable_auth_method("approle")
            admin.auth.approle.create_or_update_approle(role, token_policies=[role], token_ttl="10m")
            role_id = admin.auth.approle.read_role_id(role)["data"]["role_id"]
            secret_id = admin.auth.approle.generate_secret_id(role)["data"]["secret_id"]
            (folder / "role-id").write_text(role_id)
            (folder / "secret-id").write_text(secret_id)
            envs = folder / "environments.yaml"
            envs.write_text(
                "environments:\n  bench:\n    tier: staging\n    safety: {allow_effects: [read, write]}\n"
                f"    vault:\n      address: {server.url}\n      auth:\n        method: approle\n"
                "        role_id: {file: role-id}\n        secret_id: {file: secret-id}\n"
            )
            yield AppRoleBench(folder, server.url, admin, role_id, secret_id, envs)
        finally:
            server.stop()
