"""boto3 sessions and clients of one environment, shared by its steps; each request bounded by its step.

One session per environment and one client per service are kept in the environment's
:class:`~parityprobe.probe.ClientCache`, so steps share connection pools. What belongs to a step (its
correlation id, its deadline) is not stored on those shared clients: :func:`step_client` puts it in a context
variable for the duration of the step's calls, and every request reads it where botocore sends it:

- the User-Agent gets ``pp-cid/<correlation id>`` appended, so the target's logs (CloudTrail ``userAgent``)
  tie each request to the step that caused it;
- the HTTP session gives the request what is left of the step's time (connect and read together), never
  more than the environment's ``timeout_seconds``: a call the runner abandons at the deadline also ends there
  on its worker thread, instead of waiting for botocore's own timeout.

Steps on different worker threads never see each other's values, and a request made outside
:func:`step_client` (or :func:`key_sts_client`, :func:`unsigned_sts_client`) is refused. Every client makes
exactly one attempt per call (throttling is observed, not retried away), and an error reply whose body
botocore cannot parse (a proxy's page) becomes an error with the HTTP status as its code, as botocore already
does for HTML 5xx pages (see :mod:`.errors`).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, cast, overload

import boto3
import botocore
from botocore import UNSIGNED
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session
from botocore.loaders import Loader, create_loader
from botocore.session import Session as BotocoreSession
from urllib3 import Timeout

from parityprobe import __version__
from parityprobe.config.secretref import SecretRef
from parityprobe.model import Effect, Outcome
from parityprobe.probe import Failure, ProbeContext
from parityprobe.secret import Secret

from . import errors
from .settings import (
    AwsAssumeRoleCredentials,
    AwsProfileCredentials,
    AwsSettings,
    AwsStaticCredentials,
    AwsWebIdentityCredentials,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

    from .settings import AwsCredentials

Service = Literal["sts", "s3", "secretsmanager"]
# Session name of the environment's own assume_role: the same everywhere, so the identities it yields
# compare across environments.
ENVIRONMENT_SESSION_NAME = "parityprobe"
SESSION_KEY = "aws:session"
AUDITOR_SESSION_KEY = "aws:auditor-session"  # the config_credentials' session, for aws.config
UNSIGNED_STS_KEY = "aws:unsigned:sts"
SECTION = "aws"
_CID_SUFFIX = re.compile(rb" pp-cid/\S*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,@-]")
# A step whose deadline has passed still gets a moment, so its request fails as a timeout, not as a bug.
_MIN_REQUEST_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class _Call:
    """What every request of the step now running on this thread carries."""

    correlation_id: str
    deadline: float
    timeout: float

    def request_timeout(self) -> float:
        # Each request gets what is left of the step, never more than the environment's own timeout.
        return max(_MIN_REQUEST_SECONDS, min(self.timeout, self.deadline - time.monotonic()))


# Each probe call runs on a worker thread of the runner's pool; the value is reset when the step's block
# ends, so the thread's next task (another step, another environment) never inherits it.
_CALL: ContextVar[_Call | None] = ContextVar("parityprobe_aws_call", default=None)


def _current_call() -> _Call:
    call = _CALL.get()
    if call is None:
        raise RuntimeError("AWS request made outside step_client(): it would carry no correlation id")
    return call


def _tag_user_agent(request: Any, **_: Any) -> None:
    """``before-send`` handler: append the current step's correlation id to the User-Agent.

    ``before-send`` because the client rebuilds and replaces the User-Agent as the last ``request-created``
    handler, after signing, so an earlier change would be lost. Changing the header after signing is safe:
    SigV4 never signs User-Agent (botocore.auth.SIGNED_HEADERS_BLACKLIST). Returns nothing: a non-None value
    from before-send would be taken as the response.
    """
    cid = _current_call().correlation_id
    agent = request.headers.get("User-Agent") or b""
    if isinstance(agent, str):
        agent = agent.encode("ascii", "replace")
    # Idempotent: a resent request must not collect a second suffix.
    agent = _CID_SUFFIX.sub(b"", agent)
    request.headers["User-Agent"] = agent + b" pp-cid/" + _UNSAFE.sub("_", cid).encode("ascii")


class _StepBoundHttpSession(URLLib3Session):
    """botocore's HTTP session, giving each request what is left of its step's time.

    botocore sends every request through ``_get_request_timeout`` (its per-request override hook: present in
    botocore 1.43.107 and 1.44, absent in 1.43.11) and passes the result to urllib3 for that one request; the
    connection pool and its configured timeouts are shared and untouched, so concurrent steps each get their
    own bound.
    """

    def _get_request_timeout(self, request: Any) -> Timeout | None:
        call = _CALL.get()
        if call is None:
            return super()._get_request_timeout(request)  # type: ignore[misc,no-any-return]
        seconds = call.request_timeout()
        # total: connect and the wait for the reply share the step's time, as the runner's deadline does.
        return Timeout(connect=seconds, read=seconds, total=seconds)


def _bound_by_step(made: BaseClient) -> None:
    endpoint = made._endpoint  # type: ignore[attr-defined]  # botocore keeps the endpoint private
    http_session = endpoint.http_session
    if type(http_session) is not URLLib3Session or not hasattr(URLLib3Session, "_get_request_timeout"):
        # Failing loudly: without the hook a hung request would outlive its step by botocore's timeout.
        raise errors.AwsSetupError(
            f"botocore {botocore.__version__} has no per-request timeout hook: AWS requests cannot be "
            "bounded by the step's deadline"
        )
    # Same state (pools, proxies, TLS settings), one method more; only this client's session changes.
    http_session.__class__ = _StepBoundHttpSession


@functools.cache
def _data_loader() -> Loader:
    """botocore's loader of service models and endpoint data, shared by every session of the process.

    What it caches is read-only data shipped with botocore; parsing it (the S3 model alone is megabytes of
    JSON) is most of a new client's cost, which a daemon would otherwise pay again on every run.
    """
    return create_loader()


def _botocore_session() -> BotocoreSession:
    core = BotocoreSession()
    core.register_component("data_loader", _data_loader())
    # A registered component of the session: every client it creates parses replies through the fallback.
    core.register_component("response_parser_factory", errors.StatusFallbackParsers())
    return core


def client_config(settings: AwsSettings) -> Config:
    """One attempt per call, the environment's timeouts and region, and parityprobe in the User-Agent."""
    return Config(
        region_name=settings.region,
        connect_timeout=settings.timeout_seconds,
        read_timeout=settings.timeout_seconds,
        retries={"total_max_attempts": 1},
        user_agent_extra=f"parityprobe/{__version__}",
    )


def _new_client(
    session: boto3.Session, service: str, settings: AwsSettings, *, unsigned: bool = False
) -> Any:
    config = client_config(settings)
    if unsigned:
        config = config.merge(Config(signature_version=UNSIGNED))
    made: BaseClient = session.client(  # type: ignore[call-overload]
        service, config=config, endpoint_url=settings.endpoint_url
    )
    made.meta.events.register(
        f"before-send.{made.meta.service_model.service_id.hyphenize()}", _tag_user_agent
    )
    _bound_by_step(made)
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
    core = _botocore_session()
    if isinstance(credentials, AwsProfileCredentials):
        return boto3.Session(botocore_session=core, profile_name=credentials.profile, region_name=region)
    if isinstance(credentials, AwsStaticCredentials):
        token = credentials.session_token
        return boto3.Session(
            botocore_session=core,
            aws_access_key_id=credentials.access_key_id.secret().reveal(),
            aws_secret_access_key=credentials.secret_access_key.secret().reveal(),
            aws_session_token=token.secret().reveal() if token is not None else None,
            region_name=region,
        )
    return boto3.Session(botocore_session=core, region_name=region)


def read_token_file(path: str, label: str = "web identity token") -> Secret:
    """A token handed over as a file (a projected service-account token), read now, relative to the working
    directory, with the limits of a ``{file: ...}`` secret reference (a regular file, at most 64 KiB of
    UTF-8, stripped, not empty). A file that cannot be one is an :class:`~.errors.AwsSetupError` naming it,
    never its content."""
    try:
        return SecretRef(file=path).resolve(Path.cwd(), label)
    except ValueError as exc:
        raise errors.AwsSetupError(f"{label}: {exc}") from None


def _unsigned_sts(settings: AwsSettings) -> STSClient:
    """An STS client that signs nothing: AssumeRoleWithWebIdentity's caller proves itself with its token."""
    session = boto3.Session(botocore_session=_botocore_session(), region_name=settings.region)
    made: STSClient = _new_client(session, "sts", settings, unsigned=True)
    return made


def _issued(credentials: Any) -> dict[str, str]:
    """STS ``Credentials`` as botocore's refreshable credentials take them."""
    return {
        "access_key": credentials["AccessKeyId"],
        "secret_key": credentials["SecretAccessKey"],
        "token": credentials["SessionToken"],
        "expiry_time": credentials["Expiration"].isoformat(),
    }


def _raise_refused(role: str, exc: ClientError) -> NoReturn:
    """Raise what the environment role's refusal means: the target's fault stays the botocore error; a
    decided refusal of the environment's own identity leaves no verdict on the step possible (harness)."""
    failure = errors.translate(exc)
    if failure is not None and failure.outcome is Outcome.ERROR:
        raise exc  # the target failed or throttled: classified as any step's call would be
    raise errors.AwsSetupError(f"environment role {role}: {errors.error_code(exc)}") from exc


def _refreshing(settings: AwsSettings, fetch: Callable[[], dict[str, str]]) -> boto3.Session:
    # Fetched now, outside the step's timer; botocore refreshes them before they expire.
    refreshable = RefreshableCredentials.create_from_metadata(fetch(), fetch, _Fixed.METHOD)
    core = _botocore_session()
    core.register_component("credential_provider", CredentialResolver([_Fixed(refreshable)]))
    return boto3.Session(botocore_session=core, region_name=settings.region)


def web_identity_fetcher(settings: AwsSettings, sts: STSClient) -> Callable[[], dict[str, str]]:
    """The fetch of the environment's ``web_identity`` credentials: read the token file (again at every
    refresh: platforms rotate it), then AssumeRoleWithWebIdentity with it."""
    credentials = settings.credentials
    if not isinstance(credentials, AwsWebIdentityCredentials):
        raise TypeError("web_identity_fetcher needs web_identity credentials")
    role, token_file = credentials.role_arn, credentials.token_file

    def fetch() -> dict[str, str]:
        token = read_token_file(token_file)
        try:
            reply = sts.assume_role_with_web_identity(
                RoleArn=role, RoleSessionName=ENVIRONMENT_SESSION_NAME, WebIdentityToken=token.reveal()
            )
        except ClientError as exc:
            _raise_refused(role, exc)
        return _issued(reply["Credentials"])

    return fetch


def build_session(settings: AwsSettings) -> boto3.Session:
    """The environment's session: default chain, profile, static keys, or a role assumed from one of them
    or with a web identity token file.

    Call it inside :func:`step_client`: the assume_role requests (now, and each refresh, made during
    whichever step needs fresh credentials) are bounded and tagged like the step's own.
    """
    credentials = settings.credentials
    if isinstance(credentials, AwsWebIdentityCredentials):
        return _refreshing(settings, web_identity_fetcher(settings, _unsigned_sts(settings)))
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
            _raise_refused(role, exc)
        return _issued(reply["Credentials"])

    return _refreshing(settings, fetch)


def aws_settings(ctx: ProbeContext) -> AwsSettings:
    """The environment's ``aws`` section; AwsSetupError when it has none."""
    settings = ctx.environment.section(SECTION, AwsSettings)
    if settings is None:
        raise errors.AwsSetupError(f"environment {ctx.environment.name!r} has no aws settings")
    return settings


@contextmanager
def _for_step(ctx: ProbeContext) -> Iterator[AwsSettings]:
    """The environment's settings; the step's correlation id and deadline are set for the block's requests."""
    settings = aws_settings(ctx)
    reset = _CALL.set(_Call(ctx.correlation_id, ctx.deadline, settings.timeout_seconds))
    try:
        yield settings
    finally:
        _CALL.reset(reset)


@contextmanager
def _calling(ctx: ProbeContext, service: Service, *, auditor: bool = False) -> Iterator[Any]:
    with _for_step(ctx) as settings:
        key = SESSION_KEY
        if auditor and settings.config_credentials is not None:
            key = AUDITOR_SESSION_KEY
            settings = settings.model_copy(update={"credentials": settings.config_credentials})
        # Built inside the block: the environment's own assume_role is bounded by this step's deadline too.
        session = ctx.clients.get(key, lambda: build_session(settings))
        yield ctx.clients.get(f"{key}:client:{service}", lambda: _new_client(session, service, settings))


@overload
def step_client(ctx: ProbeContext, service: Literal["sts"]) -> AbstractContextManager[STSClient]: ...
@overload
def step_client(ctx: ProbeContext, service: Literal["s3"]) -> AbstractContextManager[S3Client]: ...
@overload
def step_client(
    ctx: ProbeContext, service: Literal["secretsmanager"]
) -> AbstractContextManager[SecretsManagerClient]: ...
def step_client(ctx: ProbeContext, service: Service) -> AbstractContextManager[Any]:
    """The environment's cached client for ``service``, acting for this step inside the ``with`` block.

    Every request made in the block carries the step's correlation id and gets at most what is left of its
    deadline; after the block, the thread carries nothing of the step.
    """
    return _calling(ctx, service)


def auditor_client(ctx: ProbeContext, service: str) -> AbstractContextManager[Any]:
    """As :func:`step_client`, acting with the environment's ``config_credentials`` (a read-only auditor)
    where it has them, else with its own credentials."""
    return _calling(ctx, cast(Service, service), auditor=True)


@contextmanager
def key_sts_client(ctx: ProbeContext, access_key_id: str, secret_access_key: Secret) -> Iterator[STSClient]:
    """An STS client acting with the given access key instead of the environment's credentials (a key a
    probe just created), bound by the step inside the ``with`` block as :func:`step_client`'s are: the
    step's deadline, its correlation id in the User-Agent, one attempt per call.

    Built for each block and closed after it, never cached: the key may be deleted the next moment, and no
    client may keep its secret beyond the step.
    """
    with _for_step(ctx) as settings:
        session = boto3.Session(
            botocore_session=_botocore_session(),
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key.reveal(),
            region_name=settings.region,
        )
        sts: STSClient = _new_client(session, "sts", settings)
        try:
            yield sts
        finally:
            sts.close()


@contextmanager
def unsigned_sts_client(ctx: ProbeContext) -> Iterator[STSClient]:
    """The environment's STS client that signs nothing (for AssumeRoleWithWebIdentity, whose caller proves
    itself with a token, not credentials), bound by the step inside the ``with`` block as
    :func:`step_client`'s are. It holds no credentials, so it is cached like the environment's clients."""
    with _for_step(ctx) as settings:
        yield ctx.clients.get(UNSIGNED_STS_KEY, lambda: _unsigned_sts(settings))


class AwsProbe:
    """Base of the AWS probes: READ by default, exceptions translated by :func:`errors.translate`."""

    effect: ClassVar[Effect] = Effect.READ
    section: ClassVar[str | None] = SECTION

    def translate(self, exc: BaseException) -> Failure | None:
        """The outcome a botocore exception means (see :mod:`parityprobe.probes.aws.errors`)."""
        return errors.translate(exc)
