"""Secrets Manager probe: read one secret version."""

from __future__ import annotations

import base64
from types import MappingProxyType

from pydantic import Field

from parityprobe.model import Grant
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult
from parityprobe.secret import Secret

from .client import AwsProbe, step_client
from .declared import DeclaresSimulated
from .simulator import Question


class SecretReadParams(ProbeParams):
    """The secret (name or ARN) and the staging label to read."""

    secret_id: str = Field(min_length=1)
    version_stage: str = Field(default="AWSCURRENT", min_length=1)


class SecretRead(DeclaresSimulated, AwsProbe):
    """``secretsmanager:GetSecretValue`` of ``secret_id`` at ``version_stage`` (AWSCURRENT by default).

    The stage is always sent: moto serves a stale default version after labels move, and on AWS it states
    exactly which version the step means.
    Grant: ``stages`` = the version's staging labels (``AWSCURRENT``); version ids are random per
    environment and would never compare, so they are an output only.
    Outputs: ``value`` (:class:`Secret`: the SecretString, or for a binary secret its bytes in base64) and
    ``version_id`` (plain string).
    ``crosscheck: simulator`` asks for ``secretsmanager:GetSecretValue`` on the secret when ``secret_id`` is
    its ARN; a secret named by name (its ARN ends in a random suffix) is asked on every resource (``*``).
    """

    name = "aws.secret_read"
    Params = SecretReadParams
    outputs = frozenset({"value", "version_id"})
    secret_outputs = frozenset({"value"})

    def question(self, params: SecretReadParams) -> Question:
        arn = params.secret_id if params.secret_id.startswith("arn:") else None
        return Question("secretsmanager:GetSecretValue", arn)

    def run(self, params: SecretReadParams, ctx: ProbeContext) -> ProbeResult:
        with step_client(ctx, "secretsmanager") as secretsmanager, ctx.timer:
            reply = secretsmanager.get_secret_value(
                SecretId=params.secret_id, VersionStage=params.version_stage
            )
        if "SecretString" in reply:
            value = Secret(reply["SecretString"], "aws secret value")
        else:
            # Base64 keeps binary secrets lossless in a text output; the label says how to read it.
            encoded = base64.b64encode(reply.get("SecretBinary", b"")).decode("ascii")
            value = Secret(encoded, "aws secret value (base64)")
        stages = sorted(reply.get("VersionStages", []))
        return ProbeResult(
            grant=Grant(stages=frozenset(stages) if stages else None),
            outputs=MappingProxyType({"value": value, "version_id": reply["VersionId"]}),
        )
