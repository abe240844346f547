"""IAM policy documents as data: each statement normalised into one canonical line, so two environments'
policies compare by meaning.

What does not count: the order of statements, of actions, of resources, of principals and of condition
values; a single value written as a one-element list; the case of an action's service prefix
(``IAM:GetUser`` is ``iam:GetUser``); ``"Principal": "*"`` against ``{"AWS": "*"}``; an account as an AWS
principal written as its id or as its root ARN (``arn:aws:iam::<id>:root``: shown as the id); a
condition's boolean or number written as a string; a document URL-encoded (as IAM's API returns it) or
already decoded (as boto3 hands it over).
An ``sts:ExternalId`` condition's value is a shared secret: it is shown and compared as a short digest.
Each environment's ``vars`` are put back as ``${vars.NAME}``: inside an ARN, a partition, region or account
equal to a var's value is replaced whatever its length, and the rest (the ARN's resource part, any other
text) has each var's value (4 characters or more) replaced, as identities are.

Nothing here raises on what a target sends: a document that is not JSON, or not shaped as a policy, is an
:class:`UnreadDocument` holding a digest of its text, which still compares equal for equal texts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from parityprobe.compare import aws_keys
from parityprobe.compare.grants import normalise

# A label made of the statement's actions is kept readable; a longer one is shortened and given a digest.
_LABEL_MAX = 60
# Condition keys whose values are shared secrets (an external id is the approval a third party holds):
# compared by digest, never shown.
_SECRET_CONDITION_KEYS = frozenset({"sts:externalid"})
# An account as a principal: its id, or its root user's ARN (AWS stores the id in that form).
_ROOT = re.compile(r"^(?:arn:[a-z0-9-]+:iam::)?(\d{12})(?::root)?$")


@dataclass(frozen=True, slots=True)
class UnreadDocument:
    """A document that is not a readable policy: a digest of its text, and why."""

    digest: str
    why: str


class _Unreadable(Exception):
    """The document is not shaped as a policy (the message says how)."""


def document_value(document: object) -> Any:
    """The document as JSON data: a string is URL-decoded when it is encoded, then parsed.

    Raises ValueError for text that is not JSON.
    """
    if not isinstance(document, str):
        return document
    text = document.strip()
    if not text.startswith(("{", "[")):
        text = unquote(text)
    return json.loads(text)


def statements(document: object, variables: Mapping[str, str]) -> dict[str, str] | UnreadDocument:
    """Label → canonical line of each statement of ``document`` (see :mod:`parityprobe.compare.aws_keys`),
    or an :class:`UnreadDocument`."""
    try:
        data = document_value(document)
        raw = data.get("Statement") if isinstance(data, dict) else None
        items = [raw] if isinstance(raw, dict) else raw
        if not isinstance(items, list) or not all(isinstance(s, dict) for s in items):
            raise _Unreadable("no list of statements")
        rendered = sorted(_statement(s, variables) for s in items)
    except (ValueError, _Unreadable) as exc:
        return UnreadDocument(_digest(document), str(exc) or "not a policy")
    out: dict[str, str] = {}
    for label, text in rendered:
        unique, count = label, 1
        while unique in out:
            count += 1
            unique = f"{label} #{count}"
        out[unique] = text
    return out


def _digest(document: object) -> str:
    text = document if isinstance(document, str) else json.dumps(document, sort_keys=True, default=str)
    normal = " ".join(text.split())
    return "sha256:" + hashlib.sha256(normal.encode("utf-8", "replace")).hexdigest()[:16]


def _statement(statement: Mapping[str, Any], variables: Mapping[str, str]) -> tuple[str, str]:
    """(label, canonical line) of one statement."""
    effect = _text(statement.get("Effect", ""))
    fields: list[tuple[str, str]] = [("Effect", effect)]
    for name in ("Principal", "NotPrincipal"):
        if name in statement:
            fields.append((name, principal_text(statement[name], variables)))
    actions: dict[str, list[str]] = {}
    for name in ("Action", "NotAction"):
        if name in statement:
            actions[name] = action_list(statement[name])
            fields.append((name, ", ".join(actions[name])))
    for name in ("Resource", "NotResource"):
        if name in statement:
            resources = {substitute(_text(v), variables) for v in _values(statement[name])}
            fields.append((name, ", ".join(sorted(resources))))
    if "Condition" in statement:
        fields.append(("Condition", condition_text(statement["Condition"], variables)))
    sid = statement.get("Sid")
    label = _text(sid).strip() if sid not in (None, "") else _label(effect, actions)
    return label, aws_keys.statement_text(fields)


def _label(effect: str, actions: Mapping[str, list[str]]) -> str:
    """``Allow sts:AssumeRole``, ``Deny not iam:*``; a long one ``Allow s3:GetObject and 7 more (1a2b3c)``."""
    named = actions.get("Action")
    words = named if named is not None else actions.get("NotAction", [])
    prefix = f"{effect} " if named is not None else f"{effect} not "
    text = ", ".join(words) or "(no action)"
    if len(prefix + text) <= _LABEL_MAX:
        return prefix + text
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{prefix}{words[0]} and {len(words) - 1} more ({digest})"


def _values(value: object) -> list[object]:
    """A single value or a list, as a list."""
    return list(value) if isinstance(value, list) else [value]


def _text(value: object) -> str:
    """A JSON scalar as IAM compares it: booleans lower case, numbers and strings as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _Unreadable(f"a value is not a string: {json.dumps(value, default=str)[:40]}")


def action_list(value: object) -> list[str]:
    """Actions sorted without case, each service prefix in lower case, duplicates dropped."""
    out: dict[str, str] = {}
    for item in _values(value):
        text = _text(item).strip()
        service, colon, name = text.partition(":")
        action = f"{service.lower()}:{name}" if colon else text
        out.setdefault(action.lower(), action)
    return [out[k] for k in sorted(out)]


def principal_text(value: object, variables: Mapping[str, str]) -> str:
    """``AWS 111122223333, arn:…:role/a | Service ec2.amazonaws.com``; ``"*"`` is ``AWS *``; an account's
    root ARN is the account's id."""
    if value == "*":
        value = {"AWS": "*"}
    if not isinstance(value, dict):
        raise _Unreadable("a principal is neither '*' nor an object")
    parts = []
    for kind in sorted(value, key=str.lower):
        names = set()
        for item in _values(value[kind]):
            name = _text(item).strip()
            root = _ROOT.match(name)
            if kind == "AWS" and root is not None:
                name = root.group(1)  # an account's root: its id, whatever the partition or form
            names.add(substitute(name, variables))
        parts.append(f"{kind} {', '.join(sorted(names))}")
    return " | ".join(parts)


def condition_text(value: object, variables: Mapping[str, str]) -> str:
    """``StringEquals sts:ExternalId = abc | Bool aws:SecureTransport = true``, each part sorted."""
    if not isinstance(value, dict):
        raise _Unreadable("a condition is not an object")
    parts = []
    for operator in sorted(value, key=str.lower):
        tests = value[operator]
        if not isinstance(tests, dict):
            raise _Unreadable(f"condition {operator} is not an object")
        for key in sorted(tests, key=str.lower):
            texts = {_text(v) for v in _values(tests[key])}
            if key.lower() in _SECRET_CONDITION_KEYS:
                values = sorted(f"sha256:{hashlib.sha256(t.encode()).hexdigest()[:12]}" for t in texts)
            else:
                values = sorted({substitute(t, variables) for t in texts})
            parts.append(f"{operator} {key} = {', '.join(values)}")
    return " | ".join(parts)


def substitute(value: str, variables: Mapping[str, str]) -> str:
    """``value`` with each environment var's value put back as ``${vars.NAME}`` (see the module docstring)."""
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) == 6:
            by_value = {v: "${vars." + k + "}" for k, v in sorted(variables.items(), reverse=True) if v}
            head = [parts[0], *(by_value.get(p, p) for p in parts[1:5])]
            return ":".join([*head, normalise(parts[5], variables) or ""])
    return normalise(value, variables) or ""
