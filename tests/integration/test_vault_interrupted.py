"""A run cut short (Ctrl-C in the middle of a scenario) still removes what its steps created in Vault: the
secret ids generated, the tokens of the logins. Real OpenBao, the real runner and probes."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, ClassVar

import hvac
import pytest

from parityprobe.config.load import load_environments, load_scenarios
from parityprobe.config.plan import build_plan
from parityprobe.lab.servers import ServerProcess
from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.probes.vault.lifecycle import TokenRevoke
from parityprobe.probes.vault.login import ApproleLogin
from parityprobe.probes.vault.secret_id import ApproleSecretId, ApproleSecretIdDestroy
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner
from parityprobe.secret import Secret

pytestmark = pytest.mark.lab

RUN = secrets.token_hex(4)


class Interrupt:
    """Ctrl-C arriving while this step runs."""

    name: ClassVar[str] = "test.interrupt"
    Params: ClassVar[type[ProbeParams]] = ProbeParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: ProbeParams, ctx: ProbeContext) -> ProbeResult:
        raise KeyboardInterrupt

    def translate(self, exc: BaseException) -> Failure | None:
        return None


def token_accessors(admin: Any) -> set[str]:
    return set(admin.list("auth/token/accessors")["data"]["keys"])


def test_an_interrupted_rotation_leaves_no_secret_id_and_no_token(
    openbao: tuple[ServerProcess, Secret], tmp_path: Path
) -> None:
    server, root = openbao
    admin = hvac.Client(url=server.url, token=root.reveal())
    mount, role = f"approle-int-{RUN}", f"rotate-{RUN}"
    admin.sys.enable_auth_method("approle", path=mount)
    admin.auth.approle.create_or_update_approle(role, mount_point=mount, token_ttl="10m")
    (tmp_path / "root-token").write_text(root.reveal())
    (tmp_path / "environments.yaml").write_text(
        "environments:\n  lab:\n    tier: staging\n    safety: {allow_effects: [read, write]}\n"
        f"    vault:\n      address: {server.url}\n"
        "      auth: {method: token, token: {file: root-token}}\n"
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "rotation.yaml").write_text(
        f"id: interrupted\nsteps:\n"
        f"  - {{id: new, probe: vault.approle_secret_id, with: {{role: {role}, mount: {mount}}}}}\n"
        "  - id: login\n    probe: vault.approle_login\n    with:\n"
        f"      mount: {mount}\n"
        "      role_id: '${{ steps.new.outputs.role_id }}'\n"
        "      secret_id: '${{ steps.new.outputs.secret_id }}'\n"
        "  - {id: ctrl-c, probe: test.interrupt}\n"
        f"  - {{id: never, probe: vault.approle_secret_id, with: {{role: {role}, mount: {mount}}}}}\n"
    )
    registry = ProbeRegistry.of(Interrupt, ApproleSecretId, ApproleSecretIdDestroy, ApproleLogin, TokenRevoke)
    redactor = Redactor()
    the_plan = build_plan(
        load_environments(tmp_path / "environments.yaml", redactor),
        load_scenarios([tmp_path / "scenarios"]),
        registry,
    )
    before = token_accessors(admin)
    with pytest.raises(KeyboardInterrupt):
        Runner(registry, redactor, step_timeout=10).run(the_plan)
    # Both creations were undone on the way out: the secret id destroyed, the login's token revoked.
    assert admin.list(f"auth/{mount}/role/{role}/secret-id") is None  # hvac: a 404, no secret id left
    assert token_accessors(admin) == before
    admin.adapter.close()
