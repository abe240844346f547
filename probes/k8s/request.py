"""``k8s.request``: one real Kubernetes API call as the environment's identity — the live decision."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from pydantic import JsonValue, field_validator, model_validator

from parityprobe.grant import Grant
from parityprobe.model import Effect, OutputValue
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from .access import review
from .client import K8sProbe, identity, send, succeeded
from .errors import K8sSetupError
from .paths import attributes_for, check_path

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_READ_METHODS = frozenset({"GET", "HEAD"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# The API server takes a PATCH body only with a patch content type; a JSON merge patch is plain JSON.
MERGE_PATCH = "application/merge-patch+json"


class K8sRequestParams(ProbeParams):
    """``method``; ``path`` (a resource path: ``/api/v1/namespaces/payments/secrets``,
    ``/apis/apps/v1/namespaces/shop/deployments/web``; a query is allowed, ``?dryRun=All`` included);
    ``body`` (a JSON object; POST, PUT, PATCH — a PATCH body is a JSON merge patch)."""

    method: Method = "GET"
    path: str
    body: dict[str, JsonValue] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_path(v)

    @model_validator(mode="after")
    def _body(self) -> K8sRequestParams:
        if self.body is not None and self.method not in _BODY_METHODS:
            raise ValueError(f"body is sent only with POST, PUT or PATCH, not {self.method}")
        return self


class K8sRequest(K8sProbe):
    """Send ``method`` to ``path`` on the environment's API server, as its identity, with the step's
    correlation id in ``Audit-ID`` and the ``User-Agent`` (see :mod:`.client`).

    ALLOWED for a 2xx. 401 is DENIED ``unauthorized`` (the credential itself is refused, as in the Vault and
    HTTP planes), 403 DENIED ``forbidden``, 404 NOT_FOUND (the request was authorized and found nothing),
    429 ERROR throttled (``throttled: retry after 5s`` when the server says), 5xx and any other status ERROR
    target_error; faults through the plane's one exception table (:mod:`.errors`).

    ``crosscheck: can_i`` also asks a SelfSubjectAccessReview for the same request (:meth:`declared`; the
    path and method read as the authorizer reads them, :mod:`.paths`), so a live decision the declared
    permissions do not explain is a finding.

    Grant: ``identity``, the username the API server reports (as for ``k8s.can_i``). Outputs: ``status`` (the
    HTTP status code, as text). The reply body is never an output: it may hold Secrets' data.

    The class effect is READ, and only GET and HEAD run under it. The other methods change state: such a
    step's effect is ``write`` (:meth:`effect_for`), and the probe also refuses them, before anything is sent,
    where the environment does not allow ``write``. ``?dryRun=All`` makes the API server authorize and admit
    a write without persisting it — the safest way to compare write permissions — but the step is still
    declared ``write``. No undo is recorded: the scenario's cleanup steps remove what a request creates.
    """

    name: ClassVar[str] = "k8s.request"
    Params: ClassVar[type[ProbeParams]] = K8sRequestParams
    outputs: ClassVar[frozenset[str]] = frozenset({"status"})
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    # The kind of cross-check ``declared`` answers (a step's ``crosscheck``).
    declares: ClassVar[str] = "can_i"

    @classmethod
    def effect_for(cls, with_: Mapping[str, Any]) -> Effect:
        """``write`` unless the step's method is plainly GET or HEAD (or left at GET); a templated one may be
        anything."""
        method = with_.get("method", "GET")
        if isinstance(method, str) and method.upper() in _READ_METHODS:
            return Effect.READ
        return Effect.WRITE

    def target(self, params: K8sRequestParams) -> str | None:
        """The path the request is sent to."""
        return params.path

    def run(self, params: K8sRequestParams, ctx: ProbeContext) -> ProbeResult:
        if params.method not in _READ_METHODS and not ctx.environment.safety.allows(Effect.WRITE):
            raise K8sSetupError(
                f"k8s.request {params.method} changes state: give the step 'effect: write' and allow write "
                f"in environment {ctx.environment.name!r} (safety.allow_effects)"
            )
        content_type = MERGE_PATCH if params.method == "PATCH" else None
        reply = succeeded(send(ctx, params.method, params.path, body=params.body, content_type=content_type))
        outputs: dict[str, OutputValue] = {"status": str(reply.status_code)}
        return ProbeResult(grant=Grant(identity=identity(ctx)), outputs=MappingProxyType(outputs))

    def declared(self, params: K8sRequestParams, ctx: ProbeContext) -> ProbeResult:
        """ALLOWED or DENIED as a SelfSubjectAccessReview declares this very request."""
        return review(ctx, attributes_for(params.method, params.path))
