"""The declared decision: a SelfSubjectAccessReview asks the API server whether the environment's identity
may perform an action, without performing it (``kubectl auth can-i``).

``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` with ``spec.resourceAttributes`` answers
``status.allowed`` (required), ``status.denied`` (an authorizer refused outright; false with ``allowed``
false means no authorizer has an opinion, RBAC's answer to anything no rule grants), ``status.reason`` and
``status.evaluationError``. The reason is free text naming bindings and roles, so it is not compared: a denial
is ``no rule allows it``, or ``denied by an authorizer`` when ``denied`` is true, with ``(evaluation
error)`` added when the server reported one (RBAC does when a bound role is missing).

Any authenticated identity may create SelfSubjectAccessReviews (the ``system:basic-user`` role); a 403
means this one may not even ask, which is no answer about the action: a harness error.
"""

from __future__ import annotations

from parityprobe.model import Outcome
from parityprobe.probe import ProbeContext, ProbeResult

from .client import json_object, send, succeeded
from .errors import BadReply, K8sSetupError
from .paths import ResourceAttributes

SELF_SUBJECT_ACCESS_REVIEW = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
NO_RULE = "no rule allows it"
DENIED_OUTRIGHT = "denied by an authorizer"
EVALUATION_ERROR = " (evaluation error)"
NOT_ASKABLE = "the identity may not create SelfSubjectAccessReviews (no system:basic-user binding)"


def review(ctx: ProbeContext, attributes: ResourceAttributes) -> ProbeResult:
    """ALLOWED or DENIED as the API server declares ``attributes`` for the environment's identity."""
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes.spec()},
    }
    reply = send(ctx, "POST", SELF_SUBJECT_ACCESS_REVIEW, body=body)
    if reply.status_code == 403:
        raise K8sSetupError(NOT_ASKABLE)
    status = json_object(succeeded(reply)).get("status")
    if not isinstance(status, dict):
        raise BadReply("SelfSubjectAccessReview has no status")
    return decision(status)


def decision(status: dict[str, object]) -> ProbeResult:
    """What a SelfSubjectAccessReview's ``status`` says (see the module docstring)."""
    allowed = status.get("allowed")
    if not isinstance(allowed, bool):
        raise BadReply("SelfSubjectAccessReview has no status.allowed")
    if allowed:
        return ProbeResult(Outcome.ALLOWED)
    reason = DENIED_OUTRIGHT if status.get("denied") is True else NO_RULE
    if status.get("evaluationError"):
        reason += EVALUATION_ERROR
    return ProbeResult(Outcome.DENIED, reason=reason)
