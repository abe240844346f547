"""The fuzz workspace: the unmutated inputs, the secret files they refer to, and the loopback trap.

Both environments files point every server address at a loopback port where :class:`Listener` counts
connections: validation must never reach a server, so any connection there is a failure. The example
environments file is the shipped one with its paths and addresses moved into the workspace; the lab-like
one mirrors what ``parityprobe lab up`` writes (``{file:}`` references relative to the file).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from parityprobe.cli_lab import profile_scenarios
from tests.fuzz.mutator import Base

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ENVIRONMENTS = REPO / "deploy" / "environments.example.yaml"
DEFAULT_PROFILE = REPO / "src" / "parityprobe" / "lab" / "default_profile.yaml"
MANIFEST = "workspace.json"
# Values that must never appear in any output; recognisable, and long enough for the redactor to know them.
SECRET_ENV = {
    "PP_STAGING_SECRET_ID": "fuzz-staging-secret-id-5c1e0a9d",
    "PP_PRODUCTION_SECRET_ID": "fuzz-production-secret-id-77b2e4f1",
    "PP_FUZZ_SECRET": "fuzz-env-secret-3d9f1b22",
}


@dataclass(frozen=True)
class Workspace:
    """What the parent sets up once and every worker reads: paths, the trap's port, the secret values."""

    root: str
    port: int
    scenarios: list[str]
    environments: list[str]
    profile: str
    cases: str
    secrets: list[str]
    files: list[str]

    @classmethod
    def load(cls, root: Path) -> Workspace:
        return cls(**json.loads((root / MANIFEST).read_text()))

    def bases(self) -> dict[str, list[Base]]:
        """The unmutated inputs by kind, parsed once per worker."""

        def base(kind: str, path: str) -> Base:
            data = Path(path).read_bytes()
            return Base(kind, path, data, yaml.safe_load(data))

        return {
            "scenario": [base("scenario", p) for p in self.scenarios],
            "environments": [base("environments", p) for p in self.environments],
            "profile": [base("profile", self.profile)],
        }


def build(root: Path, port: int) -> Workspace:
    """Write the unmutated inputs and their secret files under ``root``."""
    secrets: list[str] = list(SECRET_ENV.values())
    counter = iter(range(1000))

    def secret_file(path: Path) -> None:
        value = f"fuzz-file-secret-{next(counter):03d}-{path.name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
        secrets.append(value)

    scenario_dir = root / "scenarios"
    scenario_dir.mkdir(parents=True)
    scenarios = []
    for source in profile_scenarios(DEFAULT_PROFILE):  # the ones made for these environments' vars
        (scenario_dir / source.name).write_bytes(source.read_bytes())
        scenarios.append(str(scenario_dir / source.name))

    address = f"http://127.0.0.1:{port}"
    example = root / "example" / "environments.yaml"
    text = EXAMPLE_ENVIRONMENTS.read_text().replace("/etc/parityprobe/", f"{root}/example-secrets/")
    text = re.sub(r"https://vault[\w.-]*(:\d+)?", address, text)
    text = re.sub(r"(?m)^(\s+)(region: .*)$", rf"\1\2\n\1endpoint_url: {address}", text)
    example.parent.mkdir(parents=True)
    example.write_text(text)
    for path in _referenced_files(yaml.safe_load(text)):
        secret_file(Path(path))

    lab = root / "lab" / "environments.yaml"
    lab.parent.mkdir(parents=True)
    document = _lab_environments(address)
    lab.write_text(
        "# like the file `parityprobe lab up` writes\n" + yaml.safe_dump(document, sort_keys=False)
    )
    for path in _referenced_files(document):
        secret_file(lab.parent / path)

    profile = root / "profile" / DEFAULT_PROFILE.name
    profile.parent.mkdir(parents=True)
    profile.write_bytes(DEFAULT_PROFILE.read_bytes())

    # What a secret reference may point at besides a good file: bad encodings, nothing, a pipe nobody writes.
    odd = root / "odd-files"
    odd.mkdir()
    secret_file(odd / "readable")
    (odd / "latin-1").write_bytes(b"caf\xe9 secret\n")
    (odd / "empty").write_bytes(b"")
    os.mkfifo(odd / "fifo")
    files = [str(odd / n) for n in ("readable", "latin-1", "empty", "fifo")] + [str(odd), "/dev/zero"]

    cases = root / "cases"
    cases.mkdir()
    workspace = Workspace(
        str(root), port, scenarios, [str(example), str(lab)], str(profile), str(cases), secrets, files
    )
    (root / MANIFEST).write_text(json.dumps(asdict(workspace), indent=2))
    return workspace


def _referenced_files(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["file"])] if set(node) == {"file"} else []
        if isinstance(node.get("ca_cert"), str):
            found.append(node["ca_cert"])
        for value in node.values():
            found.extend(_referenced_files(value))
        return found
    if isinstance(node, list):
        return [f for item in node for f in _referenced_files(item)]
    return []


def _lab_environments(address: str) -> dict[str, Any]:
    """Two environments shaped like the lab's, with the default profile's vars."""
    profile = yaml.safe_load(DEFAULT_PROFILE.read_text())
    environments: dict[str, Any] = {}
    for name, env in profile["environments"].items():
        account = str(env["account_id"])
        variables = {k: str(v).replace("${account_id}", account) for k, v in env["vars"].items()}
        secrets = f"{name}/secrets"
        environments[name] = {
            "tier": env["tier"],
            "vault": {
                "address": address,
                "auth": {
                    "method": "approle",
                    "role_id": {"file": f"{secrets}/vault-role-id"},
                    "secret_id": {"file": f"{secrets}/vault-secret-id"},
                },
            },
            "aws": {
                "region": "us-east-1",
                "endpoint_url": address,
                "credentials": {
                    "method": "static",
                    "access_key_id": {"file": f"{secrets}/aws-access-key-id"},
                    "secret_access_key": {"file": f"{secrets}/aws-secret-access-key"},
                },
            },
            "siem": {
                "default": "logs",
                "connectors": {
                    "logs": {
                        "type": "cloudwatch_logs",
                        "log_group": "/parityprobe/vault-audit",
                        "region": "us-east-1",
                        "endpoint_url": address,
                        "credentials": {
                            "method": "static",
                            "access_key_id": {"file": f"{secrets}/aws-admin-access-key-id"},
                            "secret_access_key": {"file": f"{secrets}/aws-admin-secret-access-key"},
                        },
                    },
                    "audit": {"type": "file", "path": f"{name}/vault-audit.log"},
                },
            },
            "vars": variables,
            "safety": {"allow_effects": ["read"]},
        }
    return {"environments": environments}


class Listener:
    """A loopback TCP port that accepts and counts connections: the stand-in for every server."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, name="fuzz-listener", daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the blocked accept(); close() alone would not, on Linux.
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return  # closed
            self.connections += 1
            conn.close()
