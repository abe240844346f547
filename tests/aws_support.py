"""AWS in tests: a module's own moto server, users seeded with moto's bootstrap key before IAM enforcement is
switched on, clients signing with a seeded key, and an environment acting as one."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from parityprobe.config.environments import Environment
from parityprobe.lab.servers import ServerProcess, start_moto
from parityprobe.probe import Failure, ProbeResult
from parityprobe.probes.aws.settings import AwsSettings, AwsStaticCredentials
from parityprobe.registry import ProbeRegistry
from parityprobe.undo import RunJournal
from tests.probe_support import environment, observe, probe_context

ACCOUNT = "123456789012"
REGION = "us-east-1"

Key = tuple[str, str]  # an access key id and its secret
Statement = dict[str, Any]  # one statement of an IAM policy document

# moto's own key: accepted until enforcement is switched on, refused after.
BOOTSTRAP: Key = ("testing", "testing")
ALLOW_ALL: list[Statement] = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]


@dataclass(frozen=True)
class Lab:
    """A module's moto server and the access keys of the users seeded on it, by user name."""

    server: ServerProcess
    keys: dict[str, Key]

    def admin(self, service: str) -> Any:
        """A client for ``service`` as the seeded user ``admin`` (who may do anything)."""
        return key_client(self.server.url, self.keys["admin"], service)


@contextmanager
def moto_server(workdir: Path, account: str = ACCOUNT) -> Iterator[ServerProcess]:
    """A moto server answering as AWS account ``account`` (enforcement off), stopped on leaving."""
    server = start_moto(workdir, account)
    try:
        yield server
    finally:
        server.stop()


def enforce(url: str) -> None:
    """Switch IAM enforcement on: from now on only the seeded users' keys are accepted."""
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()


def key_client(url: str, key: Key, service: str, *, session_token: str | None = None) -> Any:
    """A boto3 client for ``service`` at ``url``, signing with ``key`` (and ``session_token``, if any)."""
    return boto3.client(  # type: ignore[call-overload]  # the service is any name boto3 knows
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        aws_session_token=session_token,
    )


def bootstrap_client(url: str, service: str) -> Any:
    """A client signing with moto's bootstrap key: for seeding, before enforcement."""
    return key_client(url, BOOTSTRAP, service)


def seed_users(url: str, policies: Mapping[str, list[Statement]]) -> dict[str, Key]:
    """A user for each name in ``policies``, with an inline policy ``p`` holding its statements (none where
    there are none) and an access key; the keys by user name."""
    iam = bootstrap_client(url, "iam")
    keys = {}
    for name, statements in policies.items():
        iam.create_user(UserName=name)
        if statements:
            document = json.dumps({"Version": "2012-10-17", "Statement": statements})
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (key["AccessKeyId"], key["SecretAccessKey"])
    return keys


def static_credentials(folder: Path, key: Key, files: str) -> dict[str, Any]:
    """Static credentials as an environments file gives them: ``key`` written to ``<files>-id`` and
    ``<files>-secret`` in ``folder``, named by ``{file: …}`` references."""
    (folder / f"{files}-id").write_text(key[0])
    (folder / f"{files}-secret").write_text(key[1])
    return {
        "method": "static",
        "access_key_id": {"file": f"{files}-id"},
        "secret_access_key": {"file": f"{files}-secret"},
    }


def key_environment(
    folder: Path, url: str, key: Key, *, files: str = "key", name: str = "staging", **fields: Any
) -> Environment:
    """Environment ``name`` reaching AWS at ``url`` as ``key`` (its :func:`static_credentials`, read from
    ``folder``); ``fields`` are its other settings (safety, tier, vars)."""
    credentials = static_credentials(folder, key, files)
    env = environment(
        {"name": name, **fields, "aws": {"region": REGION, "endpoint_url": url, "credentials": credentials}}
    )
    settings = env.section("aws", AwsSettings)
    assert settings is not None and isinstance(settings.credentials, AwsStaticCredentials)
    settings.credentials.access_key_id.resolve(folder, "aws access key id")
    settings.credentials.secret_access_key.resolve(folder, "aws secret access key")
    return env


def run_undos(env: Environment, journal: RunJournal) -> list[ProbeResult | Failure]:
    """The pending undos, most recent first, as the runner runs them (by registered probe name), in ``env``;
    each is resolved once run."""
    registry = ProbeRegistry()
    results = []
    for index, entry in enumerate(reversed(journal.pending())):
        probe = registry.probe(entry.undo.probe)
        ctx = probe_context(env, f"undo-{index}", run=journal.run_id)
        results.append(observe(probe, entry.undo.arguments(), ctx))
        journal.journal.resolve(entry.id)
    return results
