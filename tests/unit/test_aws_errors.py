"""The AWS exception table: every botocore exception class is mapped, error codes are normalised, and a reply
whose body botocore cannot read is classified by its HTTP status, never as a decision."""

from __future__ import annotations

import inspect
import string
from typing import Any

import botocore.exceptions as bx
import botocore.parsers as bp
import pytest
from botocore.exceptions import ClientError
from botocore.session import Session as BotocoreSession

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.aws.errors import (
    DRY_RUN_PASSED,
    EXPLICIT_DENY,
    REFUSED_BY_STATE,
    UNREADABLE_REPLY,
    AwsSetupError,
    StatusFallbackParsers,
    error_code,
    translate,
)

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


# Where botocore defines exceptions a call can raise: its exception module, and its parsers (whose
# ResponseParserError is no BotoCoreError).
_EXCEPTION_MODULES = (bx, bp)


def _botocore_exception_classes() -> list[type[BaseException]]:
    return sorted(
        (
            cls
            for module in _EXCEPTION_MODULES
            for cls in vars(module).values()
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == module.__name__
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
    assert {
        "ClientError",
        "NoCredentialsError",
        "ConnectTimeoutError",
        "EndpointConnectionError",
        "ResponseParserError",
    } <= names
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
        (bp.ResponseParserError("Unable to parse response: b'<html>'"), ErrorKind.TARGET_ERROR),
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
ALLOWED = Outcome.ALLOWED
AWS_EXPLICIT_DENY = (
    "User: arn:aws:iam::123456789012:user/wl is not authorized to perform: iam:CreateAccessKey on resource: "
    "user victim with an explicit deny in an identity-based policy"
)
CLIENT_CASES: list[tuple[str | None, int, str, Outcome, ErrorKind | None, str]] = [
    # code, status, message, outcome, error kind, reason
    ("AccessDenied", 403, "m", DENIED, None, "AccessDenied"),
    ("AccessDeniedException", 400, "m", DENIED, None, "AccessDenied"),
    ("UnauthorizedOperation", 403, "m", DENIED, None, "AccessDenied"),
    ("AuthorizationError", 403, "m", DENIED, None, "AccessDenied"),
    ("403", 403, MOTO_403_BODY, DENIED, None, "AccessDenied"),  # moto, JSON-protocol service
    ("AccessDenied", 403, AWS_EXPLICIT_DENY, DENIED, None, EXPLICIT_DENY),
    ("AccessDeniedException", 400, AWS_EXPLICIT_DENY.upper(), DENIED, None, EXPLICIT_DENY),
    (
        "403",
        403,
        MOTO_403_BODY.replace("secretsmanager:GetSecretValue", "x with an explicit deny"),
        DENIED,
        None,
        EXPLICIT_DENY,
    ),
    # The implicit deny: no policy allows it.
    (
        "AccessDenied",
        403,
        "... because no identity-based policy allows the action",
        DENIED,
        None,
        "AccessDenied",
    ),
    # "explicit deny" in a body that is no decision is still no decision.
    ("403", 403, "<html>explicit deny</html>", ERROR, ErrorKind.TARGET_ERROR, "403"),
    # Authorized, nothing changed: the dry run passed, or the target's state refused after authorization.
    ("DryRunOperation", 412, "m", ALLOWED, None, DRY_RUN_PASSED),
    ("UnauthorizedOperation", 403, "m", DENIED, None, "AccessDenied"),  # the dry run's deny
    ("PreconditionFailed", 412, "m", ALLOWED, None, f"{REFUSED_BY_STATE}: PreconditionFailed"),
    ("EntityAlreadyExists", 409, "m", ALLOWED, None, f"{REFUSED_BY_STATE}: EntityAlreadyExists"),
    ("LimitExceeded", 409, "m", ALLOWED, None, f"{REFUSED_BY_STATE}: LimitExceeded"),
    ("DeleteConflict", 409, "m", ALLOWED, None, f"{REFUSED_BY_STATE}: DeleteConflict"),
    ("ResourceExistsException", 400, "m", ALLOWED, None, f"{REFUSED_BY_STATE}: ResourceExistsException"),
    # A rate limit in some services (API Gateway, Kinesis): never read as authorized.
    ("LimitExceededException", 400, "m", ERROR, ErrorKind.TARGET_ERROR, "LimitExceededException"),
    ("LimitExceededException", 429, "m", ERROR, ErrorKind.THROTTLED, "LimitExceededException"),
    # A bare 403 says nothing about who refused (a WAF, a proxy): never a guessed deny.
    ("403", 403, "Forbidden", ERROR, ErrorKind.TARGET_ERROR, "403"),  # REST-XML generic, S3 HEAD
    ("403", 403, "<html><body>Blocked by WAF</body></html>", ERROR, ErrorKind.TARGET_ERROR, "403"),  # JSON
    (None, 403, "", ERROR, ErrorKind.TARGET_ERROR, "403"),  # query: an HTML page parsed as XML
    ("", 403, "", ERROR, ErrorKind.TARGET_ERROR, "403"),  # REST-XML: an HTML page parsed as XML
    ("401", 401, "Unauthorized", ERROR, ErrorKind.TARGET_ERROR, "401"),
    # Only an AWS error document is read for a code: a page that mentions <Code> is not one.
    ("403", 403, "<html><p><Code>AccessDenied</Code></p></html>", ERROR, ErrorKind.TARGET_ERROR, "403"),
    ("InvalidClientTokenId", 403, "m", DENIED, None, "invalid credentials"),
    ("SignatureDoesNotMatch", 403, "m", DENIED, None, "invalid credentials"),
    ("ExpiredToken", 400, "m", DENIED, None, "invalid credentials"),
    ("ExpiredTokenException", 400, "m", DENIED, None, "invalid credentials"),
    ("InvalidIdentityToken", 400, "m", DENIED, None, "invalid credentials"),
    ("IDPRejectedClaim", 403, "m", DENIED, None, "invalid credentials"),
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
    ("404", 404, "Not Found", ERROR, ErrorKind.TARGET_ERROR, "404"),  # a misrouted request, or S3 HEAD
    ("Throttling", 400, "m", ERROR, ErrorKind.THROTTLED, "Throttling"),
    ("ThrottlingException", 400, "m", ERROR, ErrorKind.THROTTLED, "ThrottlingException"),
    ("TooManyRequestsException", 429, "m", ERROR, ErrorKind.THROTTLED, "TooManyRequestsException"),
    ("RequestLimitExceeded", 503, "m", ERROR, ErrorKind.THROTTLED, "RequestLimitExceeded"),
    ("SlowDown", 503, "m", ERROR, ErrorKind.THROTTLED, "SlowDown"),
    ("SomethingElse", 429, "m", ERROR, ErrorKind.THROTTLED, "SomethingElse"),
    ("429", 429, "", ERROR, ErrorKind.THROTTLED, "429"),  # an empty 429 from a gateway
    ("InternalError", 500, "m", ERROR, ErrorKind.TARGET_ERROR, "InternalError"),
    ("ServiceUnavailable", 503, "m", ERROR, ErrorKind.TARGET_ERROR, "ServiceUnavailable"),
    ("502", 502, "<html>Bad Gateway</html>", ERROR, ErrorKind.TARGET_ERROR, "502"),
    ("503", 503, '{"message": "upstream connect error"}', ERROR, ErrorKind.TARGET_ERROR, "503"),
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


def test_unreadable_reply_reason_never_carries_the_body() -> None:
    failure = translate(bp.ResponseParserError("Unable to parse response:\nb'RoleArn=arn:aws:iam::1:role/x'"))
    assert failure == Failure(Outcome.ERROR, UNREADABLE_REPLY, ErrorKind.TARGET_ERROR)


# One operation per protocol the probes use: (service, operation, protocol).
OPERATIONS = [
    ("sts", "GetCallerIdentity", "query"),
    ("secretsmanager", "GetSecretValue", "json"),
    ("s3", "GetObject", "rest-xml"),
    ("iam", "CreateAccessKey", "query"),
    ("ec2", "DescribeInstances", "ec2"),
]


def _parse(service: str, operation: str, status: int, body: bytes) -> Any:
    model = BotocoreSession().get_service_model(service)
    parser = StatusFallbackParsers().create_parser(model.resolved_protocol)
    response = {"status_code": status, "headers": {"Content-Type": "text/plain"}, "body": body}
    return parser.parse(response, model.operation_model(operation).output_shape)


@pytest.mark.parametrize(
    ("service", "operation", "protocol"), OPERATIONS, ids=[f"{op[2]}-{op[0]}" for op in OPERATIONS]
)
@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b'{"message": "RoleArn=arn:aws:iam::1:role/x"}'), (429, b""), (500, b"Internal Server Error")],
    ids=["json-503", "empty-429", "plain-500"],
)
def test_an_error_reply_botocore_cannot_read_carries_its_status(
    service: str, operation: str, protocol: str, status: int, body: bytes
) -> None:
    parsed = _parse(service, operation, status, body)
    assert parsed["Error"]["Code"] == str(status)
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status
    assert b"RoleArn" not in repr(parsed).encode()


def test_a_readable_error_reply_is_parsed_by_botocore_as_before() -> None:
    body = b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>"
    parsed = _parse("sts", "GetCallerIdentity", 403, body)
    assert parsed["Error"] == {"Code": "AccessDenied", "Message": "no"}


def test_a_success_reply_of_the_wrong_shape_is_unreadable() -> None:
    # A captive proxy's page with a 200: botocore's query parser raises KeyError for the missing result.
    with pytest.raises(bp.ResponseParserError):
        _parse("sts", "GetCallerIdentity", 200, b"<html><body>sign in</body></html>")
    with pytest.raises(bp.ResponseParserError):
        _parse("sts", "GetCallerIdentity", 200, b"not xml at all")


def test_the_explicit_deny_reason_never_carries_the_message() -> None:
    failure = translate(_client_error("AccessDenied", 403, AWS_EXPLICIT_DENY))
    assert failure == Failure(Outcome.DENIED, EXPLICIT_DENY)
    assert "victim" not in failure.reason and "iam:" not in failure.reason
