"""What a Kubernetes API request is, in RBAC's terms: the path and method of ``k8s.request`` read as the
authorizer reads them (group, version, namespace, resource, name, subresource, verb), so ``crosscheck:
can_i`` asks a SelfSubjectAccessReview about exactly the request that was made.

Follows kube-apiserver's request-info rules for resource paths: ``/api/v1/...`` is the core group,
``/apis/GROUP/VERSION/...`` any other; ``namespaces/NS/`` before the resource scopes it to a namespace,
except that ``/api/v1/namespaces/NS`` (and its ``status`` and ``finalize`` subresources) is the namespace
object itself, in namespace NS. The verb comes from the method: GET and HEAD are ``get`` on an object and
``list`` on a collection, POST ``create``, PUT ``update``, PATCH ``patch``, DELETE ``delete`` on an object and
``deletecollection`` on a collection. Watches (``?watch=``) and log follows (``?follow=``) never end, and
discovery or non-resource paths (``/api``, ``/apis/apps``, ``/healthz``) are no resource: both are refused
when the scenario is validated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

# Characters that would turn the path into something else on the wire (a fragment, an encoded `..`, a
# Windows separator) or into header or log injection. A query (``?``) is allowed.
_FORBIDDEN_CHARACTERS = frozenset("#%\\") | {chr(c) for c in range(0x21)} | {"\x7f"}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_NEVER_ENDING = ("watch", "follow")
# Resources, groups and namespaces are DNS-1123 names; object names may also hold ':' (RBAC's system roles).
SEGMENT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:_-]*[A-Za-z0-9])?|\*")
_READ_VERBS = {"GET": ("get", "list"), "HEAD": ("get", "list"), "DELETE": ("delete", "deletecollection")}
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class ApiPath:
    """A resource path taken apart; empty strings for what it does not name."""

    group: str
    version: str
    namespace: str
    resource: str
    name: str
    subresource: str


@dataclass(frozen=True)
class ResourceAttributes:
    """A SelfSubjectAccessReview's ``spec.resourceAttributes``: empty strings for what is not asked about
    (an empty namespace means every namespace, or a cluster-scoped resource)."""

    verb: str
    resource: str
    group: str = ""
    version: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    def spec(self) -> dict[str, str]:
        """The JSON object, without the empty optional fields."""
        fields = {
            "namespace": self.namespace,
            "verb": self.verb,
            "group": self.group,
            "version": self.version,
            "resource": self.resource,
            "subresource": self.subresource,
            "name": self.name,
        }
        return {key: value for key, value in fields.items() if value or key in ("verb", "group", "resource")}

    def describe(self) -> str:
        """``list secrets in payments``, ``get pods/log web-0 in shop``, ``list apps/deployments``."""
        what = f"{self.group}/{self.resource}" if self.group else self.resource
        if self.subresource:
            what += f"/{self.subresource}"
        text = f"{self.verb} {what}"
        if self.name:
            text += f" {self.name}"
        return text + (f" in {self.namespace}" if self.namespace else "")


def check_path(path: str) -> str:
    """``path`` if it is a resource path a probe may request; ValueError saying why not."""
    bad = sorted({c for c in path if c in _FORBIDDEN_CHARACTERS})
    if bad:
        raise ValueError(f"the path may not contain {', '.join(repr(c) for c in bad)}")
    parse_path(path)
    query = path.partition("?")[2]
    never = [key for key in parse_qs(query, keep_blank_values=True) if key in _NEVER_ENDING]
    if never:
        raise ValueError(f"'{never[0]}' requests never end: ask without ?{never[0]}=")
    return path


def parse_path(path: str) -> ApiPath:
    """The resource ``path`` names (its query ignored); ValueError for what is not a resource path."""
    if not path.startswith(("/api/", "/apis/")):
        raise ValueError("the path must start with /api/ (the core group) or /apis/ (any other group)")
    parts = path.partition("?")[0].rstrip("/").split("/")[1:]
    if any(not part or part in (".", "..") for part in parts):
        raise ValueError("the path may not contain empty, '.' or '..' segments")
    if parts[0] == "api":
        group, version, rest = "", parts[1] if len(parts) > 1 else "", parts[2:]
    else:
        group, version, rest = (
            (parts[1] if len(parts) > 1 else ""),
            (parts[2] if len(parts) > 2 else ""),
            parts[3:],
        )
    if not version or not rest:
        raise ValueError("the path names no resource (e.g. /api/v1/namespaces/NS/secrets, /apis/apps/v1/...)")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if len(rest) > 3:
        raise ValueError("the path has more segments than resource, name and subresource")
    for part in (group, version, namespace, *rest):
        if part and not SEGMENT.fullmatch(part):
            raise ValueError(f"{part!r} is not a Kubernetes name (letters, digits, '-', '.', ':' and '_')")
    return ApiPath(
        group=group,
        version=version,
        namespace=namespace,
        resource=rest[0],
        name=rest[1] if len(rest) > 1 else "",
        subresource=rest[2] if len(rest) > 2 else "",
    )


def attributes_for(method: str, path: str) -> ResourceAttributes:
    """What the authorizer is asked when ``method`` is sent to ``path`` (see the module docstring)."""
    parsed = parse_path(path)
    if method in _READ_VERBS:
        on_object, on_collection = _READ_VERBS[method]
        verb = on_object if parsed.name else on_collection
    else:
        verb = _WRITE_VERBS[method]
    return ResourceAttributes(
        verb=verb,
        resource=parsed.resource,
        group=parsed.group,
        version=parsed.version,
        namespace=parsed.namespace,
        name=parsed.name,
        subresource=parsed.subresource,
    )
