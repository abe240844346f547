"""botocore's exceptions, translated once into outcomes: the one table for the AWS plane.

The table is by error *code*, normalised first: moto answers IAM-enforcement denials on JSON-protocol
services (Secrets Manager, KMS, SSM, …) with HTTP 403 and an XML body, so botocore reports the code
``"403"`` and the raw XML as the message, where real AWS says ``AccessDeniedException``. Reasons are short
normalised codes, never raw bodies (they can echo request parameters).
"""

from __future__ import annotations

import re

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

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

ACCESS_DENIED = "AccessDenied"
INVALID_CREDENTIALS = "invalid credentials"

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
        "403",  # S3 HEAD requests have no body to carry a code; what remains is the status
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
        "404",
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
        "429",
    }
)
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


def http_status(exc: ClientError) -> int | None:
    """The HTTP status of the reply that carried the error, when botocore recorded it."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def error_code(exc: ClientError) -> str:
    """The AWS error code, with moto's ``"403"`` + XML body shape normalised to the code inside the body."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    if (code.isdigit() or not code) and "<Code>" in message:
        found = _XML_CODE.search(message)
        if found:
            code = found.group(1)
    if not code:
        status = http_status(exc)
        return str(status) if status is not None else "Unknown"
    return code if _PLAIN_CODE.fullmatch(code) else "UnrecognisedErrorCode"


def _client_failure(exc: ClientError) -> Failure:
    code = error_code(exc)
    if code in _DENIED:
        return Failure(Outcome.DENIED, ACCESS_DENIED)
    if code in _INVALID_CREDENTIALS:
        return Failure(Outcome.DENIED, INVALID_CREDENTIALS)
    if code in _NOT_FOUND:
        return Failure(Outcome.NOT_FOUND, code)
    if code in _THROTTLED or http_status(exc) == 429:
        return Failure.error(ErrorKind.THROTTLED, code)
    # InternalError, ServiceUnavailable, any 5xx and every other code: the target failed to decide.
    return Failure.error(ErrorKind.TARGET_ERROR, code)


def translate(exc: BaseException) -> Failure | None:
    """The outcome a botocore exception means; ``None`` for anything that is not botocore's."""
    if isinstance(exc, ClientError):
        return _client_failure(exc)
    if isinstance(exc, AwsSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, exc.reason)
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
