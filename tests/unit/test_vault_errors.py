"""The Vault plane's exception table: every hvac and requests exception class has a decided outcome."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import hvac.exceptions as hv
import pytest
import requests.exceptions as rq

from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure
from parityprobe.probes.vault import errors
from parityprobe.probes.vault.errors import VaultSetupError, translate

DENIED, NOT_FOUND, ERROR = Outcome.DENIED, Outcome.NOT_FOUND, Outcome.ERROR
TIMEOUT, UNREACHABLE = ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE
THROTTLED, TARGET, HARNESS = ErrorKind.THROTTLED, ErrorKind.TARGET_ERROR, ErrorKind.HARNESS_ERROR

# Appears in every constructed exception's message: no reason may repeat it.
MARKER = "s.LEAKED0secret0value"

# Every class either module defines, with the (outcome, error kind) it must translate to. A class added in a
# future hvac or requests is missing here and fails test_every_class_is_decided until someone decides it.
EXPECTED: dict[type[BaseException], tuple[Outcome, ErrorKind | None]] = {
    hv.VaultError: (ERROR, TARGET),
    hv.InvalidRequest: (ERROR, TARGET),
    hv.Unauthorized: (DENIED, None),
    hv.Forbidden: (DENIED, None),
    hv.InvalidPath: (NOT_FOUND, None),
    hv.UnsupportedOperation: (ERROR, TARGET),
    hv.PreconditionFailed: (ERROR, TARGET),
    hv.RateLimitExceeded: (ERROR, THROTTLED),
    hv.InternalServerError: (ERROR, TARGET),
    hv.VaultNotInitialized: (ERROR, TARGET),
    hv.VaultDown: (ERROR, TARGET),
    hv.UnexpectedError: (ERROR, TARGET),
    hv.BadGateway: (ERROR, TARGET),
    hv.ParamValidationError: (ERROR, HARNESS),
    rq.RequestException: (ERROR, TARGET),
    rq.HTTPError: (ERROR, TARGET),
    rq.ConnectionError: (ERROR, UNREACHABLE),
    rq.ProxyError: (ERROR, UNREACHABLE),
    rq.SSLError: (ERROR, UNREACHABLE),
    rq.Timeout: (ERROR, TIMEOUT),
    rq.ConnectTimeout: (ERROR, TIMEOUT),
    rq.ReadTimeout: (ERROR, TIMEOUT),
    rq.URLRequired: (ERROR, HARNESS),
    rq.TooManyRedirects: (ERROR, TARGET),
    rq.MissingSchema: (ERROR, HARNESS),
    rq.InvalidSchema: (ERROR, HARNESS),
    rq.InvalidURL: (ERROR, HARNESS),
    rq.InvalidProxyURL: (ERROR, HARNESS),
    rq.InvalidHeader: (ERROR, HARNESS),
    rq.InvalidJSONError: (ERROR, HARNESS),
    rq.JSONDecodeError: (ERROR, TARGET),
    rq.ChunkedEncodingError: (ERROR, TARGET),
    rq.ContentDecodingError: (ERROR, TARGET),
    rq.StreamConsumedError: (ERROR, HARNESS),
    rq.RetryError: (ERROR, TARGET),
    rq.UnrewindableBodyError: (ERROR, HARNESS),
}


def defined_exceptions(module: ModuleType) -> set[type[BaseException]]:
    """Exception classes defined in ``module``: not re-exports (requests re-exports urllib3's HTTPError and
    json's JSONDecodeError), not warnings (never raised)."""
    return {
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException)
        and not issubclass(cls, Warning)
        and cls.__module__ == module.__name__
    }


def make(cls: type[BaseException], message: str = f"boom {MARKER}") -> BaseException:
    if issubclass(cls, hv.VaultError):
        vault_cls: Any = cls  # hvac is untyped
        built: BaseException = vault_cls(
            message, errors=[message], method="get", url="http://127.0.0.1:8200/v1/secret/data/x"
        )
        return built
    if cls is rq.JSONDecodeError:
        return cls(message, "{not json", 0)
    return cls(message)


def test_every_class_is_decided() -> None:
    found = defined_exceptions(hv) | defined_exceptions(rq)
    assert found - EXPECTED.keys() == set(), "new exception classes need an entry in errors._TABLE and here"
    assert EXPECTED.keys() - found == set()


def qualified(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


CLASSES = sorted(EXPECTED, key=qualified)


@pytest.mark.parametrize("cls", CLASSES, ids=qualified)
def test_table(cls: type[BaseException]) -> None:
    failure = translate(make(cls))
    assert failure is not None
    assert (failure.outcome, failure.error_kind) == EXPECTED[cls]
    assert failure.reason and MARKER not in failure.reason
    assert (failure.error_kind is None) == (failure.outcome is not ERROR)


def test_reasons() -> None:
    assert translate(make(hv.Forbidden)) == Failure(DENIED, "permission denied")
    assert translate(make(hv.Unauthorized)) == Failure(DENIED, "unauthorized")
    assert translate(make(hv.InvalidPath)) == Failure(NOT_FOUND, "not found")


def test_no_table_entry_is_shadowed_by_an_earlier_base() -> None:
    # The table is matched first to last: a subclass listed after its base would never be reached.
    classes = errors.known_classes()
    for i, later in enumerate(classes):
        for earlier in classes[:i]:
            assert not issubclass(later, earlier), f"{later.__name__} is shadowed by {earlier.__name__}"


def test_subclass_order_decides_double_inheritance() -> None:
    # ConnectTimeout is a ConnectionError and a Timeout: the server never answered, so it is a timeout.
    assert translate(rq.ConnectTimeout("x")) == Failure.error(TIMEOUT, "timed out")
    # JSONDecodeError is an InvalidJSONError: a reply that is not JSON is the target's fault, not ours.
    assert translate(make(rq.JSONDecodeError)) == Failure.error(TARGET, "response is not json")
    assert translate(rq.SSLError("x")) == Failure.error(UNREACHABLE, "tls handshake failed")


@pytest.mark.parametrize(
    ("errors_body", "expected"),
    [
        (["invalid role or secret ID"], Failure(DENIED, "invalid credentials")),
        ([f'invalid secret_id "{MARKER}"'], Failure(DENIED, "invalid credentials")),
        (["invalid username or password"], Failure(DENIED, "invalid credentials")),
        (
            ['source address "10.0.0.9" unauthorized by CIDR restrictions on the role: ...'],
            Failure(DENIED, "source address not allowed"),
        ),
        (["missing secret_id"], Failure.error(TARGET, "invalid request")),
        (["cannot write to a path ending in '/'"], Failure.error(TARGET, "invalid request")),
        ([], Failure.error(TARGET, "invalid request")),
    ],
)
def test_invalid_request_messages(errors_body: list[str], expected: Failure) -> None:
    exc = hv.InvalidRequest(
        errors=errors_body, method="post", url="http://127.0.0.1:8200/v1/auth/approle/login"
    )
    assert translate(exc) == expected


def test_invalid_credentials_without_parsed_errors() -> None:
    # hvac parses ``errors`` only for Content-Type application/json; otherwise the body is the message.
    exc = hv.InvalidRequest('{"errors":["invalid role or secret ID"]}', method="post", url="http://x")
    assert translate(exc) == Failure(DENIED, "invalid credentials")


def test_invalid_token_wording_of_newer_vault_is_still_permission_denied() -> None:
    # Vault >= 1.17 says "permission denied" and "invalid token"; OpenBao says only the first. Same reason,
    # so a Vault environment and an OpenBao environment compare equal.
    exc = hv.Forbidden(errors=["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"])
    assert translate(exc) == Failure(DENIED, "permission denied")


def test_setup_error_is_a_harness_error_with_its_message() -> None:
    failure = translate(VaultSetupError("environment 'prod' has no 'vault' section"))
    assert failure == Failure.error(HARNESS, "environment 'prod' has no 'vault' section")


@pytest.mark.parametrize("exc", [ValueError("x"), KeyError("x"), RuntimeError("x"), OSError("x")])
def test_foreign_exceptions_are_unknown(exc: BaseException) -> None:
    assert translate(exc) is None
