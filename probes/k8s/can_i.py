"""``k8s.can_i``: what the API server declares the environment's identity may do (``kubectl auth can-i``)."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from parityprobe.grant import Grant
from parityprobe.probe import ProbeContext, ProbeParams, ProbeResult

from .access import review
from .client import K8sProbe, identity
from .paths import SEGMENT, ResourceAttributes

# RBAC verbs are lower-case words: the API verbs and custom ones (use, bind, escalate, impersonate…), or "*".
_VERB = re.compile(r"[a-z]+|\*")


def _segment(value: str) -> str:
    if value and not SEGMENT.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes name (letters, digits, '-', '.', ':' and '_')")
    return value


class CanIParams(ProbeParams):
    """``verb`` (get, list, create, … or a custom verb), ``resource`` (plural: ``secrets``), ``group`` (""
    for the core group), ``namespace`` (none for a cluster-scoped resource, or every namespace), ``name``,
    ``subresource`` (``log``, ``status``…)."""

    verb: str
    resource: str = Field(min_length=1)
    group: str = ""
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @field_validator("verb")
    @classmethod
    def _verb(cls, v: str) -> str:
        if not _VERB.fullmatch(v):
            raise ValueError(
                "a verb is one lower-case word (get, list, watch, create, update, patch, delete…)"
            )
        return v

    @field_validator("resource", "group", "namespace", "name", "subresource")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        return v if v is None else _segment(v)

    def attributes(self) -> ResourceAttributes:
        return ResourceAttributes(
            verb=self.verb,
            resource=self.resource,
            group=self.group,
            namespace=self.namespace or "",
            name=self.name or "",
            subresource=self.subresource or "",
        )


class CanI(K8sProbe):
    """Ask a SelfSubjectAccessReview for ``verb`` on ``resource`` (see :mod:`.access`): ALLOWED when the
    server declares it allowed, DENIED (``no rule allows it``; ``denied by an authorizer``) otherwise. Nothing
    is performed: the effect is READ whatever the verb.

    A namespace is never assumed: without ``namespace`` the question is cluster-wide (a cluster-scoped
    resource, or the resource in every namespace). Scenarios name namespaces themselves, through ``vars``
    where environments differ, so a step asks the same question everywhere.

    Grant: ``identity``, the username the API server reports for the environment's credential (a
    SelfSubjectReview, asked once per environment and run; none on servers before Kubernetes 1.28).
    """

    name: ClassVar[str] = "k8s.can_i"
    Params: ClassVar[type[ProbeParams]] = CanIParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()

    def target(self, params: CanIParams) -> str | None:
        """The action asked about: ``list secrets in payments``."""
        return params.attributes().describe()

    def run(self, params: CanIParams, ctx: ProbeContext) -> ProbeResult:
        declared = review(ctx, params.attributes())
        return ProbeResult(declared.outcome, grant=Grant(identity=identity(ctx)), reason=declared.reason)
