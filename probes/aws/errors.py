"""botocore's exceptions, translated once into outcomes: the one table for the AWS plane.

A reply botocore could read carries an error *code*, normalised first (:func:`error_code`): moto answers
IAM-enforcement denials on JSON-protocol services (Secrets Manager, KMS, SSM, …) with HTTP 403 and an XML
body, so botocore reports the code ``"403"`` and that XML as the message, where real AWS says
``AccessDeniedException``. The codes are then looked up in one ordered table (:data:`_BY_CODE`):

- a deny is DENIED ``AccessDenied``, or ``AccessDenied: explicit deny`` when AWS's message says a policy
  denied it explicitly (moto never does: it says "not authorized" for both); bad or expired credentials are
  DENIED ``invalid credentials``;
- a missing object is NOT_FOUND (its code as the reason); throttling is an ERROR (throttled);
- ``DryRunOperation`` is ALLOWED with nothing changed, and so is a refusal AWS makes only after the caller's
  policies allowed the request (a precondition that failed, a name already taken, IAM's per-user key quota,
  an entity still in use): the decision asked about was made, and the reason says nothing changed.

A reply whose body botocore could not read (a load balancer's HTML 502, a proxy's JSON 503, an empty 429, a
WAF's HTML 403) carries only its HTTP status. What botocore makes of it depends on the protocol:

- query (STS, IAM): an HTML page (``<html>…``) with a 5xx status becomes ``ClientError`` with ``Code`` = the
  status and ``Message`` = its reason phrase; a 4xx page that happens to parse as XML becomes a
  ``ClientError`` with no ``Error`` at all; any other body (JSON, plain text, empty) raises
  ``botocore.parsers.ResponseParserError``, which has no status and repeats the body. The plane's clients
  parse through :class:`StatusFallbackParsers`, which turns that last case into the first shape.
- JSON (Secrets Manager): ``ClientError`` with ``Code`` = the status and ``Message`` = the body (or its
  JSON ``message``); the plane's clients keep only the reason phrase there, as the step's detail shows it.
- REST-XML (S3): ``ClientError`` with ``Code`` = the status and ``Message`` = its reason phrase; a page that
  parses as XML gives an empty ``Code``.

So a code the table does not know, or a bare status, is classified by status alone: 429 is throttled, every
other status (5xx, 401/403, 404) is a target error. A status is never evidence of a decision: a WAF's or a
proxy's 403 page is not the service's deny, a misrouted 404 is not an absent secret. Reasons are short
normalised codes, never bodies (they can echo request parameters).
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    HTTPClientError,
    ImminentRemovalWarning,
    IncompleteReadError,
    ReadTimeoutError,
    UndefinedModelAttributeError,
    UnsupportedTLSVersionWarning,
)
from botocore.model import Shape
from botocore.parsers import ResponseParser, ResponseParserError, ResponseParserFactory

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

ACCESS_DENIED = "AccessDenied"
INVALID_CREDENTIALS = "invalid credentials"
UNREADABLE_REPLY = "unreadable reply"
EXPLICIT_DENY = "AccessDenied: explicit deny"
DRY_RUN_PASSED = "authorized; nothing changed (DryRun)"
REFUSED_BY_STATE = "authorized; nothing changed, refused by the target's state"

# Codes only: a bare HTTP status ("403", "404") is the status of a reply whose body said nothing.
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "AllAccessDisabled",
        "Forbidden",
        "ForbiddenException",
    }
)
_INVALID_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthFailure",
        # STS AssumeRoleWithWebIdentity: the token is not valid, or its provider rejected its claims.
        "InvalidIdentityToken",
        "IDPRejectedClaim",
    }
)
_NOT_FOUND = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchVersion",
        "NoSuchEntity",
        "NoSuchEntityException",
        "ResourceNotFoundException",
        "NotFound",
    }
)
_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
    }
)

# The request was authorized and nothing changed: EC2's (and others') answer to ``DryRun``.
_DRY_RUN_PASSED = frozenset({"DryRunOperation"})
# Authorized, then refused by the target's state (AWS evaluates the caller's policies first): a precondition
# that did not hold, a name already taken, a per-entity quota (IAM's two access keys), an entity still in use.
# Quotas only: ``LimitExceededException`` is a rate limit in some services and stays a target error.
_REFUSED_BY_STATE = frozenset(
    {
        "PreconditionFailed",
        "EntityAlreadyExists",
        "LimitExceeded",
        "DeleteConflict",
        "ResourceExistsException",
        "BucketAlreadyOwnedByYou",
        "ConditionalCheckFailedException",
    }
)

# The table, in order: the first set holding the error code decides.
_BY_CODE: tuple[tuple[frozenset[str], Callable[[str], Failure]], ...] = (
    (_DENIED, lambda _: Failure(Outcome.DENIED, ACCESS_DENIED)),
    (_INVALID_CREDENTIALS, lambda _: Failure(Outcome.DENIED, INVALID_CREDENTIALS)),
    (_NOT_FOUND, lambda code: Failure(Outcome.NOT_FOUND, code)),
    (_THROTTLED, lambda code: Failure.error(ErrorKind.THROTTLED, code)),
    (_DRY_RUN_PASSED, lambda _: Failure(Outcome.ALLOWED, DRY_RUN_PASSED)),
    (_REFUSED_BY_STATE, lambda code: Failure(Outcome.ALLOWED, f"{REFUSED_BY_STATE}: {code}")),
)
# Then by status alone: 429 asks the caller to slow down, whoever sent it; anything else is a target error.
_THROTTLED_STATUS = 429

# An AWS XML error document (moto's 403 on JSON services); a code is read from the message only then, so an
# HTML page or a proxy's text that merely mentions "<Code>" is never taken for the service's answer.
_XML_ERROR_DOCUMENT = re.compile(r"^\s*(?:<\?xml[^>]*\?>\s*)?<(?:ErrorResponse|Error)[\s>]")
_XML_CODE = re.compile(r"<Code>\s*([^<\s]+)\s*</Code>")
# A code is an identifier; anything else (an HTML error page from a proxy, say) is not repeated verbatim.
_PLAIN_CODE = re.compile(r"[A-Za-z0-9._:-]{1,80}")
# botocore warnings only reach a probe as exceptions when warnings are escalated (python -W error).
_HARNESS = (BotoCoreError, UndefinedModelAttributeError, ImminentRemovalWarning, UnsupportedTLSVersionWarning)


class AwsSetupError(ParityProbeError):
    """The environment's own AWS identity could not be set up (no ``aws`` settings, base role refused…).

    No verdict about the step's action is possible, so it is a harness error, never a denial.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _StatusFallbackParser(ResponseParser):
    """A botocore parser that reads an error reply it cannot parse as botocore's generic error.

    botocore's query (STS, IAM) parser raises ``ResponseParserError`` for an error body that is not XML (a
    proxy's JSON 503, a plain-text 500, an empty 429), and that error carries no HTTP status. botocore already
    answers an HTML 5xx page (every protocol) and any unreadable REST-XML body with ``Code`` = the status and
    ``Message`` = its reason phrase; this extends that to every error reply, so the status reaches the table.
    A success reply of the wrong shape (a captive proxy's HTML 200 to STS makes botocore's query parser raise
    ``KeyError``) becomes a ``ResponseParserError``: the target's fault, not parityprobe's.
    """

    def __init__(self, parser: ResponseParser) -> None:
        super().__init__()
        self._parser = parser

    def parse(self, response: Mapping[str, Any], shape: Shape) -> Any:
        status = response.get("status_code")
        try:
            parsed = self._parser.parse(response, shape)
        except (ResponseParserError, KeyError) as exc:
            if not isinstance(status, int):
                raise
            if status < 301:  # botocore's own threshold for an error reply
                if isinstance(exc, ResponseParserError):
                    raise
                raise ResponseParserError(f"HTTP {status} reply without {exc}") from None
            headers = {str(k).lower(): v for k, v in dict(response.get("headers") or {}).items()}
            parsed = {"Error": {"Code": str(status)}, "ResponseMetadata": {"HTTPStatusCode": status}}
            parsed["ResponseMetadata"]["HTTPHeaders"] = headers
        if isinstance(status, int):
            _drop_unreadable_message(parsed, status)
        return parsed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


def _drop_unreadable_message(parsed: Any, status: int) -> None:
    """An error whose code is just its status keeps only the reason phrase as its message.

    Then what botocore kept as the message is the unreadable body (the JSON parser keeps a proxy's text
    there): it would reach the step's detail, and it can echo request parameters. moto's XML error document
    stays: the code is read from it (:func:`error_code`).
    """
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or error.get("Code") != str(status):
        return
    if not _XML_ERROR_DOCUMENT.match(str(error.get("Message") or "")):
        error["Message"] = http.client.responses.get(status, "")


class StatusFallbackParsers(ResponseParserFactory):
    """botocore's parsers, each wrapped in :class:`_StatusFallbackParser` (a botocore session component)."""

    def create_parser(self, protocol_name: str) -> ResponseParser:
        return _StatusFallbackParser(super().create_parser(protocol_name))


def http_status(exc: ClientError) -> int | None:
    """The HTTP status of the reply that carried the error, when botocore recorded it."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def error_code(exc: ClientError) -> str:
    """The AWS error code; moto's ``"403"`` + XML body shape normalised to the code inside the body.

    A reply without a code gives its HTTP status (``"503"``), or ``"Unknown"``.
    """
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    if (code.isdigit() or not code) and _XML_ERROR_DOCUMENT.match(message):
        found = _XML_CODE.search(message)
        if found:
            code = found.group(1)
    if not code:
        status = http_status(exc)
        return str(status) if status is not None else "Unknown"
    return code if _PLAIN_CODE.fullmatch(code) else "UnrecognisedErrorCode"


def _explicit_deny(exc: ClientError) -> bool:
    # AWS says "with an explicit deny in a(n) <kind> policy"; "no ... policy allows" is the implicit deny.
    # Only this fixed phrase is looked for: the message itself (it names the caller and action) is not kept.
    return "explicit deny" in str(exc.response.get("Error", {}).get("Message") or "").lower()


def _client_failure(exc: ClientError) -> Failure:
    code = error_code(exc)
    if code in _DENIED and _explicit_deny(exc):
        return Failure(Outcome.DENIED, EXPLICIT_DENY)
    for codes, failure in _BY_CODE:
        if code in codes:
            return failure(code)
    if http_status(exc) == _THROTTLED_STATUS:
        return Failure.error(ErrorKind.THROTTLED, code)
    # InternalError, ServiceUnavailable, a bare 5xx/403/404 and every other code: the target failed to decide.
    return Failure.error(ErrorKind.TARGET_ERROR, code)


def translate(exc: BaseException) -> Failure | None:
    """The outcome a botocore exception means; ``None`` for anything that is not botocore's."""
    if isinstance(exc, ClientError):
        return _client_failure(exc)
    if isinstance(exc, AwsSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, exc.reason)
    # The target's reply is not what its protocol says (a 2xx page from a captive proxy, say); error
    # replies never get here (see the module docstring). Its message repeats the body: not used.
    if isinstance(exc, ResponseParserError):
        return Failure.error(ErrorKind.TARGET_ERROR, UNREADABLE_REPLY)
    # ConnectTimeoutError is also an EndpointConnectionError: the timeouts must be tested first.
    if isinstance(exc, ConnectTimeoutError):
        return Failure.error(ErrorKind.TIMEOUT, "connect timeout")
    if isinstance(exc, ReadTimeoutError):
        return Failure.error(ErrorKind.TIMEOUT, "read timeout")
    if isinstance(exc, ConnectionError | HTTPClientError):
        return Failure.error(ErrorKind.UNREACHABLE, type(exc).__name__)
    # A body cut short is the connection failing mid-reply, like ConnectionClosedError, not our bug.
    if isinstance(exc, IncompleteReadError):
        return Failure.error(ErrorKind.UNREACHABLE, "incomplete response body")
    if isinstance(exc, _HARNESS):
        return Failure.error(ErrorKind.HARNESS_ERROR, type(exc).__name__)
    return None
