"""boto3 sessions and clients of one environment, shared by its steps, carrying each step's correlation id.

One session per environment and one client per service are kept in the environment's
:class:`~parityprobe.probe.ClientCache`. Every client makes exactly one attempt per call (throttling is
observed, not retried away) and appends ``pp-cid/<correlation id>`` of the step now running to its
User-Agent, so the target's logs (CloudTrail ``userAgent``) can be tied to the step that caused them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import ClientError
from botocore.session import Session as BotocoreSession

from parityprobe import __version__
from parityprobe.config.environments import (
    AwsAssumeRoleCredentials,
    AwsProfileCredentials,
    AwsSettings,
    AwsStaticCredentials,
)
from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext

from . import errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

    from parityprobe.config.environments import AwsCredentials

Service = Literal["sts", "s3", "secretsmanager"]
# Session name of the environment's own assume_role: the same everywhere, so the identities it yields
# compare across environments.
ENVIRONMENT_SESSION_NAME = "parityprobe"
_CID_SUFFIX = re.compile(rb" pp-cid/\S*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,@-]")


# The correlation id of the step this thread is running. Each probe call runs on its own worker thread, so
# a call the runner abandoned at its deadline keeps its own step's id instead of taking the next step's.
_CORRELATION: ContextVar[str | None] = ContextVar("parityprobe_aws_correlation", default=None)


def _tag_user_agent() -> Callable[..., None]:
    """A ``before-send`` handler appending the current correlation id to the User-Agent.

    ``before-send`` because the client rebuilds and replaces the User-Agent as the last
    ``request-created`` handler, after signing, so an earlier change would be lost. Changing the header
    after signing is safe: SigV4 never signs User-Agent (botocore.auth.SIGNED_HEADERS_BLACKLIST).
    """

    def handler(request: Any, **_: Any) -> None:
        cid = _CORRELATION.get()
        if cid is None:
            return
        agent = request.headers.get("User-Agent") or b""
        if isinstance(agent, str):
            agent = agent.encode("ascii", "replace")
        # Idempotent: a resent request must not collect a second suffix.
        agent = _CID_SUFFIX.sub(b"", agent)
        request.headers["User-Agent"] = agent + b" pp-cid/" + _UNSAFE.sub("_", cid).encode("ascii")
        # Returning nothing: a non-None return value from before-send would be taken as the response.

    return handler


def client_config(settings: AwsSettings) -> Config:
    """One attempt per call, the environment's timeouts and region, and parityprobe in the User-Agent."""
    return Config(
        region_name=settings.region,
        connect_timeout=settings.timeout_seconds,
        read_timeout=settings.timeout_seconds,
        retries={"total_max_attempts": 1},
        user_agent_extra=f"parityprobe/{__version__}",
    )


def _new_client(session: boto3.Session, service: str, settings: AwsSettings) -> Any:
    made: BaseClient = session.client(  # type: ignore[call-overload]
        service, config=client_config(settings), endpoint_url=settings.endpoint_url
    )
    made.meta.events.register(
        f"before-send.{made.meta.service_model.service_id.hyphenize()}", _tag_user_agent()
    )
    return made


class _Fixed(CredentialProvider):
    """Hands botocore credentials already obtained (they refresh themselves)."""

    METHOD = "parityprobe-assume-role"
    CANONICAL_NAME = "parityprobe"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _base_session(credentials: AwsCredentials, region: str) -> boto3.Session:
    if isinstance(credentials, AwsProfileCredentials):
        return boto3.Session(profile_name=credentials.profile, region_name=region)
    if isinstance(credentials, AwsStaticCredentials):
        token = credentials.session_token
        return boto3.Session(
            aws_access_key_id=credentials.access_key_id.secret().reveal(),
            aws_secret_access_key=credentials.secret_access_key.secret().reveal(),
            aws_session_token=token.secret().reveal() if token is not None else None,
            region_name=region,
        )
    return boto3.Session(region_name=region)


def build_session(settings: AwsSettings) -> boto3.Session:
    """The environment's session: default chain, profile, static keys, or a role assumed from one of them."""
    credentials = settings.credentials
    if not isinstance(credentials, AwsAssumeRoleCredentials):
        return _base_session(credentials, settings.region)
    sts: STSClient = _new_client(_base_session(credentials.source, settings.region), "sts", settings)
    role = credentials.role_arn
    external = credentials.external_id

    def fetch() -> dict[str, str]:
        try:
            if external is None:
                reply = sts.assume_role(RoleArn=role, RoleSessionName=ENVIRONMENT_SESSION_NAME)
            else:
                reply = sts.assume_role(
                    RoleArn=role,
                    RoleSessionName=ENVIRONMENT_SESSION_NAME,
                    ExternalId=external.secret().reveal(),
                )
        except ClientError as exc:
            # The environment's own identity failed: no verdict on the step is possible (harness error).
            raise errors.AwsSetupError(f"environment role {role}: {errors.error_code(exc)}") from exc
        issued = reply["Credentials"]
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }

    # Fetched now, outside any step's timer; botocore refreshes them before they expire.
    refreshable = RefreshableCredentials.create_from_metadata(fetch(), fetch, _Fixed.METHOD)
    core = BotocoreSession()
    core.register_component("credential_provider", CredentialResolver([_Fixed(refreshable)]))
    return boto3.Session(botocore_session=core, region_name=settings.region)


@overload
def client(ctx: ProbeContext, service: Literal["sts"]) -> STSClient: ...
@overload
def client(ctx: ProbeContext, service: Literal["s3"]) -> S3Client: ...
@overload
def client(ctx: ProbeContext, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
def client(ctx: ProbeContext, service: Service) -> Any:
    """The environment's cached client for ``service``, tagged from now on with this step's correlation id.

    Call it at the start of each step, before the action: that is what moves the correlation id.
    """
    settings = ctx.environment.aws
    if settings is None:
        raise errors.AwsSetupError(f"environment {ctx.environment.name!r} has no aws settings")
    _CORRELATION.set(ctx.correlation_id)
    session = ctx.clients.get("aws:session", lambda: build_session(settings))
    return ctx.clients.get(f"aws:client:{service}", lambda: _new_client(session, service, settings))


class AwsProbe:
    """Base of the AWS probes: READ by default, exceptions translated by :func:`errors.translate`."""

    effect: ClassVar[Effect] = Effect.READ

    def translate(self, exc: BaseException) -> Failure | None:
        """The outcome a botocore exception means (see :mod:`parityprobe.probes.aws.errors`)."""
        return errors.translate(exc)
