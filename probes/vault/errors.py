"""The one place where Vault's (hvac's) and the HTTP layer's (requests') exceptions become outcomes.

Reasons are short, fixed phrases: a server's error body can echo what it was sent (AppRole's
``invalid secret_id "<id>"``), and two environments must produce the same reason for the same decision
even when their servers word it differently (Vault >= 1.17 adds ``invalid token`` to a 403; OpenBao does
not). Order matters: subclasses are matched before their bases (``ConnectTimeout`` is both a timeout and a
connection error; ``JSONDecodeError`` is an ``InvalidJSONError``).
"""

from __future__ import annotations

import hvac.exceptions as hv
import requests.exceptions as rq

from parityprobe.errors import ParityProbeError
from parityprobe.model import ErrorKind, Outcome
from parityprobe.probe import Failure

PERMISSION_DENIED = "permission denied"
UNAUTHORIZED = "unauthorized"
INVALID_CREDENTIALS = "invalid credentials"
SOURCE_NOT_ALLOWED = "source address not allowed"
NOT_FOUND = "not found"
WRAPPING_TOKEN_INVALID = "wrapping token invalid or already used"
# Workload-identity (JWT/OIDC, Kubernetes) login refusals.
TOKEN_EXPIRED = "token expired"
TOKEN_NOT_YET_VALID = "token not yet valid"
AUDIENCE_NOT_MATCHED = "audience not matched"
ISSUER_NOT_MATCHED = "issuer not matched"
CLAIMS_NOT_MATCHED = "claims not matched"
UNKNOWN_ROLE = "unknown role"
ROLE_TYPE_NOT_ALLOWED = "role type not allowed"


class VaultSetupError(ParityProbeError):
    """The environment cannot run a Vault probe as configured (no ``vault`` section, wrong auth method).

    Its message is written by us, holds no secret, and becomes the harness error's reason.
    """


# Lower-cased fragments of a 400 body that mean "the target refused these credentials"; the target decided,
# so this is a denial, not an error. Checked in order; the reason never repeats the body.
_DENIAL_MESSAGES: tuple[tuple[str, str], ...] = (
    ("invalid role or secret id", INVALID_CREDENTIALS),
    ("invalid secret_id", INVALID_CREDENTIALS),
    ("invalid role_id", INVALID_CREDENTIALS),
    ("invalid username or password", INVALID_CREDENTIALS),
    ("invalid credentials", INVALID_CREDENTIALS),
    ("unauthorized by cidr restrictions", SOURCE_NOT_ALLOWED),
    # sys/wrapping/{lookup,unwrap} for a wrapping token already unwrapped, expired, or never issued (OpenBao
    # 2.7, one message for all): a single-use token presented twice is the tamper signal a drill looks for.
    ("wrapping token is not valid or does not exist", WRAPPING_TOKEN_INVALID),
    # jwt auth (observed on OpenBao 2.x; Vault's plugin words them alike), specific before general:
    # 'error validating token: invalid expiration time (exp) claim: token is expired' and the like.
    ("token is expired", TOKEN_EXPIRED),
    ("token not yet valid", TOKEN_NOT_YET_VALID),
    ("invalid audience", AUDIENCE_NOT_MATCHED),
    ("no audiences bound to the role", AUDIENCE_NOT_MATCHED),
    ("invalid issuer", ISSUER_NOT_MATCHED),
    ("invalid subject", CLAIMS_NOT_MATCHED),  # bound_subject
    ("error validating claims", CLAIMS_NOT_MATCHED),  # bound_claims: a value not matched, or missing
    # A bad signature, a token signed by a key the mount does not trust, or no JWT at all.
    ("error validating token", INVALID_CREDENTIALS),
    ('" could not be found', UNKNOWN_ROLE),  # jwt: role "<name>" could not be found
    ("invalid role name", UNKNOWN_ROLE),  # kubernetes: invalid role name "<name>"
    ("role with oidc role_type is not allowed", ROLE_TYPE_NOT_ALLOWED),
)

# (exception class, failure), most specific first. One table, so the unit test can walk it.
_TABLE: tuple[tuple[type[BaseException], Failure], ...] = (
    # hvac: decisions first, then the server's own failures.
    (hv.Forbidden, Failure(Outcome.DENIED, PERMISSION_DENIED)),
    (hv.Unauthorized, Failure(Outcome.DENIED, UNAUTHORIZED)),
    (hv.InvalidPath, Failure(Outcome.NOT_FOUND, NOT_FOUND)),
    (hv.InvalidRequest, Failure.error(ErrorKind.TARGET_ERROR, "invalid request")),
    (hv.RateLimitExceeded, Failure.error(ErrorKind.THROTTLED, "rate limited")),
    (hv.VaultDown, Failure.error(ErrorKind.TARGET_ERROR, "vault sealed or down")),
    (hv.VaultNotInitialized, Failure.error(ErrorKind.TARGET_ERROR, "vault not initialized")),
    (hv.InternalServerError, Failure.error(ErrorKind.TARGET_ERROR, "internal server error")),
    (hv.BadGateway, Failure.error(ErrorKind.TARGET_ERROR, "bad gateway")),
    (hv.ParamValidationError, Failure.error(ErrorKind.HARNESS_ERROR, "invalid client parameters")),
    (hv.UnsupportedOperation, Failure.error(ErrorKind.TARGET_ERROR, "unsupported operation")),
    (hv.PreconditionFailed, Failure.error(ErrorKind.TARGET_ERROR, "precondition failed")),
    (hv.UnexpectedError, Failure.error(ErrorKind.TARGET_ERROR, "unexpected response")),
    (hv.VaultError, Failure.error(ErrorKind.TARGET_ERROR, "vault error")),
    # requests: a timeout before a connection error (ConnectTimeout is both).
    (rq.Timeout, Failure.error(ErrorKind.TIMEOUT, "timed out")),
    (rq.SSLError, Failure.error(ErrorKind.UNREACHABLE, "tls handshake failed")),
    (rq.ProxyError, Failure.error(ErrorKind.UNREACHABLE, "proxy unreachable")),
    (rq.ConnectionError, Failure.error(ErrorKind.UNREACHABLE, "connection failed")),
    # A reply that is not JSON is the target's fault; it subclasses InvalidJSONError, so it comes first.
    (rq.JSONDecodeError, Failure.error(ErrorKind.TARGET_ERROR, "response is not json")),
    # The request could not even be built from our configuration: the target saw nothing.
    (rq.InvalidJSONError, Failure.error(ErrorKind.HARNESS_ERROR, "request body not serialisable")),
    (rq.URLRequired, Failure.error(ErrorKind.HARNESS_ERROR, "invalid vault address")),
    (rq.MissingSchema, Failure.error(ErrorKind.HARNESS_ERROR, "invalid vault address")),
    (rq.InvalidSchema, Failure.error(ErrorKind.HARNESS_ERROR, "invalid vault address")),
    (rq.InvalidProxyURL, Failure.error(ErrorKind.HARNESS_ERROR, "invalid proxy address")),
    (rq.InvalidURL, Failure.error(ErrorKind.HARNESS_ERROR, "invalid vault address")),
    (rq.InvalidHeader, Failure.error(ErrorKind.HARNESS_ERROR, "invalid request header")),
    # Misuse of a response or request body by the client itself.
    (rq.StreamConsumedError, Failure.error(ErrorKind.HARNESS_ERROR, "response already consumed")),
    (rq.UnrewindableBodyError, Failure.error(ErrorKind.HARNESS_ERROR, "request body not rewindable")),
    (rq.RequestException, Failure.error(ErrorKind.TARGET_ERROR, "http error")),
)


def translate(exc: BaseException) -> Failure | None:
    """The outcome ``exc`` means, or None when it is not a Vault, HTTP or Vault-setup failure."""
    if isinstance(exc, hv.InvalidRequest):
        denial = _credential_denial(exc)
        if denial is not None:
            return denial
    if isinstance(exc, VaultSetupError):
        return Failure.error(ErrorKind.HARNESS_ERROR, str(exc))
    for cls, failure in _TABLE:
        if isinstance(exc, cls):
            return failure
    return None


def known_classes() -> tuple[type[BaseException], ...]:
    """The classes the table maps, in matching order (for tests and documentation)."""
    return tuple(cls for cls, _ in _TABLE)


def error_messages(exc: hv.VaultError) -> list[str]:
    """The server's error messages in ``exc`` (its ``errors`` list, else its message), stripped and
    lower-cased: what the plane's fixed-phrase matches read. Never put into a reason as they are."""
    errors = getattr(exc, "errors", None)
    parts = [str(e) for e in errors] if isinstance(errors, list) else [str(exc.args[0] if exc.args else "")]
    return [part.strip().lower() for part in parts]


def _credential_denial(exc: hv.InvalidRequest) -> Failure | None:
    message = " ".join(error_messages(exc))
    for fragment, reason in _DENIAL_MESSAGES:
        if fragment in message:
            return Failure(Outcome.DENIED, reason)
    return None
