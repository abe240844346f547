"""The AWS exception table: every botocore exception class is mapped, and error codes are normalised."""

from __future__ import annotations

import inspect
import string
from typing import Any

import botocore.exceptions as bx
import pytest
from botocore.exceptions import ClientError

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.aws.errors import AwsSetupError, error_code, translate

MOTO_403_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>\n<ErrorResponse><Errors><Error><Code>AccessDenied</Code>'
    "<Message>User: arn:aws:iam::123456789012:user/wl is not authorized to perform: "
    "secretsmanager:GetSecretValue</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"
)

# Classes botocore defines that cannot be built from placeholder arguments. Keep this empty or tiny:
# anything listed here escapes the "every class is mapped" check.
UNCONSTRUCTIBLE: frozenset[str] = frozenset()

_SPECIAL_ARGUMENTS: dict[str, Any] = {
    "error_response": {"Error": {"Code": "SomethingNew", "Message": "m"}},
    "operation_name": "Op",
    "last_response": {},
    "request": None,
    "response": None,
}


def _botocore_exception_classes() -> list[type[BaseException]]:
    return sorted(
        (
            cls
            for cls in vars(bx).values()
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == bx.__name__
        ),
        key=lambda cls: cls.__name__,
    )


def _build(cls: type[BaseException]) -> BaseException:
    """An instance from placeholders: the ``fmt`` fields botocore formats, plus any required parameters."""
    kwargs: dict[str, Any] = {}
    fmt = getattr(cls, "fmt", None)
    if isinstance(fmt, str):
        kwargs.update({name: "x" for _, name, _, _ in string.Formatter().parse(fmt) if name})
    for param in inspect.signature(cls.__init__).parameters.values():
        if param.name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        if param.default is param.empty or param.name in _SPECIAL_ARGUMENTS:
            kwargs[param.name] = _SPECIAL_ARGUMENTS.get(param.name, "x")
    return cls(**kwargs)


def _instances() -> tuple[list[BaseException], set[str]]:
    built, failed = [], set()
    for cls in _botocore_exception_classes():
        try:
            built.append(_build(cls))
        except Exception:
            failed.add(cls.__name__)
    return built, failed


def test_introspection_finds_the_known_classes() -> None:
    names = {cls.__name__ for cls in _botocore_exception_classes()}
    assert {"ClientError", "NoCredentialsError", "ConnectTimeoutError", "EndpointConnectionError"} <= names
    assert len(names) > 50


def test_only_the_listed_classes_cannot_be_built() -> None:
    _, failed = _instances()
    assert failed == UNCONSTRUCTIBLE


@pytest.mark.parametrize("exc", _instances()[0], ids=lambda exc: type(exc).__name__)
def test_every_botocore_exception_is_mapped(exc: BaseException) -> None:
    failure = translate(exc)
    assert isinstance(failure, Failure)
    assert failure.reason
    if failure.outcome is Outcome.ERROR:
        assert failure.error_kind is not None


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (bx.ConnectTimeoutError(endpoint_url="http://x"), ErrorKind.TIMEOUT),
        (bx.ReadTimeoutError(endpoint_url="http://x"), ErrorKind.TIMEOUT),
        (bx.EndpointConnectionError(endpoint_url="http://x"), ErrorKind.UNREACHABLE),
        (bx.ConnectionClosedError(endpoint_url="http://x"), ErrorKind.UNREACHABLE),
        (bx.ProxyConnectionError(proxy_url="http://p"), ErrorKind.UNREACHABLE),
        (bx.SSLError(endpoint_url="https://x", error="bad cert"), ErrorKind.UNREACHABLE),
        (bx.HTTPClientError(error="reset"), ErrorKind.UNREACHABLE),
        (bx.ResponseStreamingError(error="reset"), ErrorKind.UNREACHABLE),
        (bx.IncompleteReadError(actual_bytes=1, expected_bytes=5), ErrorKind.UNREACHABLE),
        (bx.NoCredentialsError(), ErrorKind.HARNESS_ERROR),
        (
            bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            ErrorKind.HARNESS_ERROR,
        ),
        (bx.NoRegionError(), ErrorKind.HARNESS_ERROR),
        (bx.ParamValidationError(report="RoleSessionName too short"), ErrorKind.HARNESS_ERROR),
        (bx.ProfileNotFound(profile="nope"), ErrorKind.HARNESS_ERROR),
        (bx.CredentialRetrievalError(provider="sso", error_msg="expired"), ErrorKind.HARNESS_ERROR),
        (AwsSetupError("environment role arn:aws:iam::1:role/x: AccessDenied"), ErrorKind.HARNESS_ERROR),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.value,
)
def test_transport_and_harness_errors(exc: BaseException, kind: ErrorKind) -> None:
    failure = translate(exc)
    assert failure is not None
    assert (failure.outcome, failure.error_kind) == (Outcome.ERROR, kind)


def _client_error(code: str | None, status: int, message: str = "m") -> ClientError:
    error: dict[str, str] = {"Message": message}
    if code is not None:
        error["Code"] = code
    response: Any = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Operation")


DENIED, NOT_FOUND, ERROR = Outcome.DENIED, Outcome.NOT_FOUND, Outcome.ERROR
CLIENT_CASES: list[tuple[str | None, int, str, Outcome, ErrorKind | None, str]] = [
    # code, status, message, outcome, error kind, reason
    ("AccessDenied", 403, "m", DENIED, None, "AccessDenied"),
    ("AccessDeniedException", 400, "m", DENIED, None, "AccessDenied"),
    ("UnauthorizedOperation", 403, "m", DENIED, None, "AccessDenied"),
    ("AuthorizationError", 403, "m", DENIED, None, "AccessDenied"),
    ("403", 403, MOTO_403_BODY, DENIED, None, "AccessDenied"),  # moto, JSON-protocol service
    ("403", 403, "", DENIED, None, "AccessDenied"),  # S3 HEAD: no body
    ("InvalidClientTokenId", 403, "m", DENIED, None, "invalid credentials"),
    ("SignatureDoesNotMatch", 403, "m", DENIED, None, "invalid credentials"),
    ("ExpiredToken", 400, "m", DENIED, None, "invalid credentials"),
    ("ExpiredTokenException", 400, "m", DENIED, None, "invalid credentials"),
    ("UnrecognizedClientException", 400, "m", DENIED, None, "invalid credentials"),
    ("InvalidAccessKeyId", 403, "m", DENIED, None, "invalid credentials"),
    (
        "403",
        403,
        MOTO_403_BODY.replace("AccessDenied", "InvalidClientTokenId"),
        DENIED,
        None,
        "invalid credentials",
    ),
    ("NoSuchKey", 404, "m", NOT_FOUND, None, "NoSuchKey"),
    ("NoSuchBucket", 404, "m", NOT_FOUND, None, "NoSuchBucket"),
    ("ResourceNotFoundException", 400, "m", NOT_FOUND, None, "ResourceNotFoundException"),
    ("NoSuchEntity", 404, "m", NOT_FOUND, None, "NoSuchEntity"),
    ("404", 404, "", NOT_FOUND, None, "404"),
    ("Throttling", 400, "m", ERROR, ErrorKind.THROTTLED, "Throttling"),
    ("ThrottlingException", 400, "m", ERROR, ErrorKind.THROTTLED, "ThrottlingException"),
    ("TooManyRequestsException", 429, "m", ERROR, ErrorKind.THROTTLED, "TooManyRequestsException"),
    ("RequestLimitExceeded", 503, "m", ERROR, ErrorKind.THROTTLED, "RequestLimitExceeded"),
    ("SlowDown", 503, "m", ERROR, ErrorKind.THROTTLED, "SlowDown"),
    ("SomethingElse", 429, "m", ERROR, ErrorKind.THROTTLED, "SomethingElse"),
    ("InternalError", 500, "m", ERROR, ErrorKind.TARGET_ERROR, "InternalError"),
    ("ServiceUnavailable", 503, "m", ERROR, ErrorKind.TARGET_ERROR, "ServiceUnavailable"),
    ("502", 502, "<html>Bad Gateway</html>", ERROR, ErrorKind.TARGET_ERROR, "502"),
    (None, 500, "", ERROR, ErrorKind.TARGET_ERROR, "500"),
    ("ValidationError", 400, "m", ERROR, ErrorKind.TARGET_ERROR, "ValidationError"),
    ("MalformedPolicyDocument", 400, "m", ERROR, ErrorKind.TARGET_ERROR, "MalformedPolicyDocument"),
    (
        "<html><body>proxy says no</body></html>",
        400,
        "",
        ERROR,
        ErrorKind.TARGET_ERROR,
        "UnrecognisedErrorCode",
    ),
]


@pytest.mark.parametrize(
    ("code", "status", "message", "outcome", "kind", "reason"),
    CLIENT_CASES,
    ids=[f"{case[0]}-{case[1]}-{i}" for i, case in enumerate(CLIENT_CASES)],
)
def test_client_errors(
    code: str | None, status: int, message: str, outcome: Outcome, kind: ErrorKind | None, reason: str
) -> None:
    assert translate(_client_error(code, status, message)) == Failure(outcome, reason, kind)


def test_moto_403_code_is_normalised_from_the_xml_body() -> None:
    assert error_code(_client_error("403", 403, MOTO_403_BODY)) == "AccessDenied"


def test_reason_never_carries_the_body() -> None:
    failure = translate(_client_error("403", 403, MOTO_403_BODY))
    assert failure is not None
    assert "secretsmanager" not in failure.reason
    assert "<" not in failure.reason


@pytest.mark.parametrize("exc", [ValueError("x"), KeyError("Credentials"), RuntimeError("boom")])
def test_foreign_exceptions_are_unknown(exc: BaseException) -> None:
    assert translate(exc) is None
