"""The boto3 side of the ``cloudwatch_logs`` connector: its session, its one query per search, and botocore's
exceptions translated into the connector's two ways of saying "no answer".

The session is built from the ``aws`` section's credential kinds, but not with the AWS plane's
:func:`~parityprobe.probes.aws.client.build_session`: that one is bound to a step (each request carries the
step's correlation id and deadline, and refuses to leave outside a step), while a SIEM search belongs to no
step. So this module builds a plain session from the same settings: default chain, profile or static keys
as they are; ``assume_role`` and ``web_identity`` as credentials fetched from STS at the first search (not at
connect: a connector is made before the run and must not block it) and refreshed by botocore before they
expire. Every client makes one attempt per call (a throttled SIEM is reported, not retried into the ground),
and each request is bounded by ``timeout_seconds`` (botocore's connect and read timeouts).

The table of :func:`translate`, in order:

- a ``ClientError`` whose code (moto's ``403`` + XML normalised, see
  :func:`~parityprobe.probes.aws.errors.error_code`) is a throttling code, or whose status is 429 →
  :class:`SiemThrottled` (with the reply's ``Retry-After`` when it has one; AWS sends none);
- a ``ResourceNotFoundException`` → unavailable (target error): a log group that is not there is a broken
  configuration or a missing forwarder, never "searched, nothing there";
- any other code (AccessDenied, invalid credentials, 5xx) → unavailable (target error), the code as reason;
- a connect or read timeout → TIMEOUT; a refused, reset or failed connection → UNREACHABLE;
- an unreadable reply (botocore's parser failed, or a success reply without ``events``) → target error;
- every other botocore error (no credentials, a bad profile) → target error, named by its class.

Reasons name the operation, the log group and a code or class: never a message, which may echo a request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from botocore.session import Session as BotocoreSession

from parityprobe import __version__
from parityprobe.config.secretref import SecretRef
from parityprobe.model import ErrorKind

# mypy checks probes/ as its own tree (mypy_path is src): the mapped package is not resolvable here.
from parityprobe.probes.aws.errors import (  # type: ignore[import-not-found]
    StatusFallbackParsers,
    error_code,
    http_status,
)
from parityprobe.probes.aws.settings import (  # type: ignore[import-not-found]
    AwsAssumeRoleCredentials,
    AwsBaseCredentials,
    AwsProfileCredentials,
    AwsStaticCredentials,
    AwsWebIdentityCredentials,
)
from parityprobe.siem.cloudwatch_logs import CloudWatchLogsSettings
from parityprobe.siem.connector import (
    SiemEvent,
    SiemQuery,
    SiemThrottled,
    SiemUnavailable,
    correlation_ids_in,
    event_from_json,
    parse_time,
)

# The session name of the roles the connector assumes: a reader of the SIEM, not a step.
SESSION_NAME = "parityprobe-siem"
# A search that pages this often is stuck (a server repeating itself) or searching far too much.
MAX_PAGES = 1000
_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_THROTTLED = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",  # CloudWatch Logs' "too many concurrent queries"
    }
)
_NOT_FOUND = frozenset({"ResourceNotFoundException"})
# Exception classes other than ClientError, most specific first: (class, kind, what it means).
_TABLE: tuple[tuple[type[Exception], ErrorKind, str], ...] = (
    (ConnectTimeoutError, ErrorKind.TIMEOUT, "timed out connecting"),
    (ReadTimeoutError, ErrorKind.TIMEOUT, "timed out waiting for the reply"),
    (ConnectionError, ErrorKind.UNREACHABLE, "unreachable"),
    (HTTPClientError, ErrorKind.UNREACHABLE, "connection lost"),
    (ResponseParserError, ErrorKind.TARGET_ERROR, "unreadable reply"),
    (NoCredentialsError, ErrorKind.TARGET_ERROR, "no credentials"),
    (PartialCredentialsError, ErrorKind.TARGET_ERROR, "incomplete credentials"),
    (ProfileNotFound, ErrorKind.TARGET_ERROR, "profile not found"),
    (CredentialRetrievalError, ErrorKind.TARGET_ERROR, "credentials not obtained"),
    (BotoCoreError, ErrorKind.TARGET_ERROR, "AWS SDK error"),
)


def known_classes() -> tuple[type[Exception], ...]:
    """The exception classes :func:`translate` maps, ``ClientError`` first (for tests and docs)."""
    return (ClientError, *(cls for cls, _, _ in _TABLE))


def translate(exc: Exception, what: str) -> SiemUnavailable:
    """What ``exc``, raised while doing ``what`` (an operation and its target), means for a search."""
    if isinstance(exc, SiemUnavailable):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in _THROTTLED or http_status(exc) == 429:
            return SiemThrottled(f"{what}: throttled ({code})", _retry_after(exc))
        if code in _NOT_FOUND:
            return SiemUnavailable(f"{what}: {code} (the log group is not there: no answer, not an absence)")
        return SiemUnavailable(f"{what}: {code}")
    for cls, kind, meaning in _TABLE:
        if isinstance(exc, cls):
            return SiemUnavailable(f"{what}: {meaning} ({type(exc).__name__})", kind)
    return SiemUnavailable(f"{what}: {type(exc).__name__}")


def _retry_after(exc: ClientError) -> float | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def filter_pattern(ids: Sequence[str]) -> str | None:
    """The quoted longest common prefix of ``ids``, cut before any character an id is not made of (so it
    needs no escaping); None when they share none (then every event of the window is read)."""
    if not ids:
        return None
    first, last = min(ids), max(ids)  # the common prefix of all is the common prefix of these two
    length = 0
    for a, b in zip(first, last, strict=False):
        if a != b or a not in _ID_CHARACTERS:
            break
        length += 1
    return f'"{first[:length]}"' if length else None


class _Given(CredentialProvider):
    """Hands botocore credentials built here (they fetch and refresh themselves)."""

    METHOD = "parityprobe-siem"
    CANONICAL_NAME = "parityprobe-siem"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def client_config(settings: CloudWatchLogsSettings) -> Config:
    """One attempt per call, each bounded by ``timeout_seconds``; parityprobe in the User-Agent."""
    return Config(
        region_name=settings.region,
        connect_timeout=settings.timeout_seconds,
        read_timeout=settings.timeout_seconds,
        retries={"total_max_attempts": 1},
        user_agent_extra=f"parityprobe/{__version__} siem",
    )


def _core() -> BotocoreSession:
    core = BotocoreSession()
    # An error reply botocore cannot parse keeps its status, as the AWS plane's clients do.
    core.register_component("response_parser_factory", StatusFallbackParsers())
    return core


def _base_session(credentials: AwsBaseCredentials, region: str) -> boto3.Session:
    if isinstance(credentials, AwsProfileCredentials):
        return boto3.Session(botocore_session=_core(), profile_name=credentials.profile, region_name=region)
    if isinstance(credentials, AwsStaticCredentials):
        token = credentials.session_token
        return boto3.Session(
            botocore_session=_core(),
            aws_access_key_id=credentials.access_key_id.secret().reveal(),
            aws_secret_access_key=credentials.secret_access_key.secret().reveal(),
            aws_session_token=token.secret().reveal() if token is not None else None,
            region_name=region,
        )
    return boto3.Session(botocore_session=_core(), region_name=region)


def _issued(reply: Any) -> dict[str, str]:
    issued = reply["Credentials"]
    return {
        "access_key": issued["AccessKeyId"],
        "secret_key": issued["SecretAccessKey"],
        "token": issued["SessionToken"],
        "expiry_time": issued["Expiration"].isoformat(),
    }


def _assume_role(sts: Any, credentials: AwsAssumeRoleCredentials) -> Callable[[], dict[str, str]]:
    def fetch() -> dict[str, str]:
        extra = (
            {}
            if credentials.external_id is None
            else {"ExternalId": credentials.external_id.secret().reveal()}
        )
        try:
            return _issued(
                sts.assume_role(RoleArn=credentials.role_arn, RoleSessionName=SESSION_NAME, **extra)
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"AssumeRole {credentials.role_arn}") from None

    return fetch


def _web_identity(sts: Any, credentials: AwsWebIdentityCredentials) -> Callable[[], dict[str, str]]:
    def fetch() -> dict[str, str]:
        what = f"AssumeRoleWithWebIdentity {credentials.role_arn}"
        try:
            # Read again at every refresh: the platform rotates the file.
            token = SecretRef(file=credentials.token_file).resolve(Path.cwd(), "web identity token")
        except ValueError as exc:
            raise SiemUnavailable(f"{what}: {exc}") from None
        try:
            reply = sts.assume_role_with_web_identity(
                RoleArn=credentials.role_arn, RoleSessionName=SESSION_NAME, WebIdentityToken=token.reveal()
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what) from None
        return _issued(reply)

    return fetch


def build_session(settings: CloudWatchLogsSettings) -> boto3.Session:
    """A session acting as ``settings.credentials``; a role is assumed at its first request, not now."""
    credentials = settings.credentials
    if isinstance(credentials, AwsAssumeRoleCredentials):
        sts = _base_session(credentials.source, settings.region).client(
            "sts", config=client_config(settings), endpoint_url=settings.endpoint_url
        )
        fetch = _assume_role(sts, credentials)
    elif isinstance(credentials, AwsWebIdentityCredentials):
        config = client_config(settings).merge(Config(signature_version=UNSIGNED))
        sts = boto3.Session(botocore_session=_core(), region_name=settings.region).client(
            "sts", config=config, endpoint_url=settings.endpoint_url
        )
        fetch = _web_identity(sts, credentials)
    else:
        return _base_session(credentials, settings.region)
    core = _core()
    deferred = DeferredRefreshableCredentials(fetch, _Given.METHOD)
    core.register_component("credential_provider", CredentialResolver([_Given(deferred)]))
    return boto3.Session(botocore_session=core, region_name=settings.region)


class CloudWatchLogsConnector:
    """Searches one log group with FilterLogEvents: one query per search, every page of it."""

    def __init__(self, settings: CloudWatchLogsSettings) -> None:
        self.settings = settings
        self._client: Any = None

    def client(self) -> Any:
        """The ``logs`` client, made at first use (finding the default chain's credentials may take a
        network call, which belongs to a search, not to connecting)."""
        if self._client is None:
            session = build_session(self.settings)
            self._client = session.client(
                "logs", config=client_config(self.settings), endpoint_url=self.settings.endpoint_url
            )
        return self._client

    def _client_or_unavailable(self, what: str) -> Any:
        try:
            return self.client()
        except RuntimeError as exc:  # a credential reference the loader left unread: our message, no secret
            raise SiemUnavailable(f"{what}: {exc}") from None

    def begin(self) -> None:
        """Nothing to note: each search names its window."""

    def search(self, query: SiemQuery) -> Sequence[SiemEvent]:
        ids = sorted(query.correlation_ids)
        if not ids:
            return []
        what = f"FilterLogEvents on log group {self.settings.log_group}"
        request = self._request(query, ids)
        found: list[SiemEvent] = []
        token: str | None = None
        try:
            client = self._client_or_unavailable(what)
            for _ in range(MAX_PAGES):
                page = client.filter_log_events(**request, **({"nextToken": token} if token else {}))
                events, next_token = _page(page, what)
                for raw in events:
                    found.extend(self._events(raw, ids))
                if not next_token:
                    return found
                if next_token == token:
                    raise SiemUnavailable(f"{what}: the reply repeated its page token")
                token = next_token
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            raise translate(exc, what) from None
        raise SiemUnavailable(f"{what}: more than {MAX_PAGES} pages in the window")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _request(self, query: SiemQuery, ids: Sequence[str]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "logGroupName": self.settings.log_group,
            # Whole milliseconds that cover the window: an event at its edges is inside.
            "startTime": math.floor(query.since.timestamp() * 1000),
            "endTime": math.ceil(query.until.timestamp() * 1000),
            "limit": self.settings.page_size,
        }
        if self.settings.log_stream_prefix is not None:
            request["logStreamNamePrefix"] = self.settings.log_stream_prefix
        pattern = filter_pattern(ids)
        if pattern is not None:
            request["filterPattern"] = pattern
        return request

    def _events(self, raw: Any, ids: Sequence[str]) -> list[SiemEvent]:
        message = raw.get("message") if isinstance(raw, dict) else None
        if not isinstance(message, str):
            return []
        events = event_from_json(message, ids, self.settings.time_field)
        if not events:
            # Not a JSON record (an application's text line): its text is its one field.
            fields = MappingProxyType({"message": message})
            events = [SiemEvent(cid, None, fields) for cid in correlation_ids_in(message, ids)]
        stamp = parse_time(raw.get("timestamp"))
        ingested = parse_time(raw.get("ingestionTime"))
        return [replace(event, time=event.time or stamp, ingested_at=ingested) for event in events]


def _page(page: Any, what: str) -> tuple[list[Any], str | None]:
    """A reply's events and next token; a reply without an ``events`` list is unreadable (botocore takes a
    proxy's HTML 200 for an empty reply), never an empty page."""
    events = page.get("events") if isinstance(page, dict) else None
    if not isinstance(events, list):
        raise SiemUnavailable(f"{what}: unreadable reply (no events)")
    token = page.get("nextToken")
    return events, token if isinstance(token, str) and token else None
