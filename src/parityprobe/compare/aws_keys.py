"""The keys of an AWS configuration snapshot (``aws.config``): built by the probe, read by
:mod:`parityprobe.compare.drift` to find each key's parent and to say a difference in words.

The tree (names already normalised with each environment's vars, so keys are equal across environments):

- ``iam role <name>`` (``present``, ``absent``, ``not readable (…)``); under it ``iam role <name> trust`` (the
  trust policy), ``iam role <name> inline policies`` and ``iam role <name> managed policies`` (``listed`` or
  ``not readable (…)``), and under those ``iam role <name> policy <policy>`` and
  ``iam role <name> managed policy <policy>`` (``present``, ``not readable (…)``, ``present, not read as
  JSON (sha256:…)``);
- each policy document's statements: ``<document key> statement <label>``, the label being the statement's
  ``Sid``, else its effect and actions (``Allow sts:AssumeRole``), so one statement pairs up across
  environments and a difference in its principal, resource or condition is one finding; the value is the
  statement in one canonical line (:func:`statement_text`);
- the same for ``iam user <name>`` (no trust policy);
- ``secret <name>`` (``present``/``absent``/…), ``secret <name> rotation`` (``enabled``/``disabled``), and
  under it ``secret <name> rotation schedule`` and ``secret <name> last rotated`` (``never``, ``within
  schedule``, ``overdue``: a bucket, never a timestamp).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

SNAPSHOT = "aws configuration"  # the value of the snapshot's ``snapshot`` key
KINDS = ("role", "user")
TRUST = "trust"
INLINE, MANAGED = "inline", "managed"
ROTATION, SCHEDULE, LAST_ROTATED = "rotation", "rotation schedule", "last rotated"
STATEMENT_FIELDS = ("Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource")
_FIELDS = (*STATEMENT_FIELDS, "Condition")
_FIELD_SPLIT = re.compile(r"; (?=(?:" + "|".join(_FIELDS) + r") )")

_DOC = r"iam (role|user) (\S+) (trust|policy \S+|managed policy \S+)"
_STATEMENT = re.compile(rf"^{_DOC} statement (.+)$")
_DOCUMENT = re.compile(rf"^{_DOC}$")
_LISTING = re.compile(r"^iam (role|user) (\S+) (inline|managed) policies$")
_PRINCIPAL = re.compile(r"^iam (role|user) (\S+)$")
_SECRET_FIELD = re.compile(r"^secret (\S+) (rotation|rotation schedule|last rotated)$")


def is_aws_key(key: str) -> bool:
    """True for a key of an AWS snapshot (no Vault key starts so)."""
    return key.startswith(("iam ", "secret "))


def principal_key(kind: str, name: str) -> str:
    """``iam role deploy``, ``iam user ci``."""
    return f"iam {kind} {name}"


def listing_key(kind: str, name: str, which: str) -> str:
    """``iam role deploy inline policies`` or ``… managed policies``: whether the policies could be listed."""
    return f"{principal_key(kind, name)} {which} policies"


def document_key(kind: str, name: str, policy: str | None = None, *, managed: bool = False) -> str:
    """``iam role deploy trust`` (no ``policy``), ``iam role deploy policy p``, ``… managed policy p``."""
    if policy is None:
        return f"{principal_key(kind, name)} {TRUST}"
    return f"{principal_key(kind, name)} {'managed policy' if managed else 'policy'} {policy}"


def statement_key(document: str, label: str) -> str:
    """``iam role deploy trust statement Allow sts:AssumeRole``."""
    return f"{document} statement {label}"


def secret_key(name: str, field: str | None = None) -> str:
    """``secret payments/db``; with ``field``: ``secret payments/db rotation schedule``."""
    return f"secret {name} {field}" if field else f"secret {name}"


def statement_text(fields: Sequence[tuple[str, str]]) -> str:
    """A statement in one line: ``Effect Allow; Principal AWS arn:…; Action sts:AssumeRole``."""
    return "; ".join(f"{name} {value}" for name, value in fields)


def statement_fields(text: str) -> dict[str, str]:
    """The fields of a :func:`statement_text` line (a value holding ``; Action `` is not split there)."""
    out: dict[str, str] = {}
    for part in _FIELD_SPLIT.split(text):
        name, _, value = part.partition(" ")
        out[name] = value
    return out


def parent(key: str) -> str | None:
    """The key whose value must be equal everywhere before ``key`` is compared; None for a top key."""
    if (found := _STATEMENT.match(key)) is not None:
        kind, name, document = found.group(1, 2, 3)
        return f"iam {kind} {name} {document}"
    if (found := _DOCUMENT.match(key)) is not None:
        kind, name, document = found.group(1, 2, 3)
        if document == TRUST:
            return principal_key(kind, name)
        return listing_key(kind, name, MANAGED if document.startswith("managed ") else INLINE)
    if (found := _LISTING.match(key)) is not None:
        return principal_key(found.group(1), found.group(2))
    if (found := _SECRET_FIELD.match(key)) is not None:
        name, field = found.groups()
        return secret_key(name) if field == ROTATION else secret_key(name, ROTATION)
    return None


def is_policy(key: str) -> bool:
    """True for a policy document or one of its statements (graded as a policy rule is)."""
    return bool(_STATEMENT.match(key) or _DOCUMENT.match(key))


def covers(key: str, values: Iterable[str], target: str) -> bool:
    """Whether the statement ``key`` (its values in the environments) names the action of ``target`` (an AWS
    step's target, ``iam:AttachUserPolicy on arn:…``): an ``Action`` pattern matching it, or a
    ``NotAction`` (which grants all but what it lists); so its drift may explain that step's decision."""
    if _STATEMENT.match(key) is None or " on " not in target:
        return False
    action = target.split(" on ", 1)[0].lower()
    for value in values:
        fields = statement_fields(value)
        if "NotAction" in fields:
            return True
        patterns = [p.lower() for p in fields.get("Action", "").split(", ") if p]
        if any(fnmatch.fnmatchcase(action, pattern) for pattern in patterns):
            return True
    return False


def _subject(kind: str, name: str, document: str) -> str:
    return f"{kind} {name} {document}"


def difference(key: str, name: str, value: str | None, base_name: str, base: str | None) -> str | None:
    """One environment's value of an AWS key against the baseline's, in words; None for a key without
    wording of its own (the generic one then applies)."""
    if (found := _STATEMENT.match(key)) is not None:
        kind, principal, document, label = found.groups()
        subject = _subject(kind, principal, document)
        if value is None:
            return f"{name}'s {subject} has no statement {label}; {base_name}'s has {base}"
        if base is None:
            return f"{name}'s {subject} has statement {label}: {value}; {base_name}'s has none"
        mine, theirs = statement_fields(value), statement_fields(base)
        differing = [f for f in _FIELDS if mine.get(f) != theirs.get(f)]
        ours = ", ".join(f"{f} {mine.get(f) or '(none)'}" for f in differing)
        other = ", ".join(f"{f} {theirs.get(f) or '(none)'}" for f in differing)
        return f"{name}'s {subject} statement {label} has {ours}; {base_name}'s has {other}"
    if (found := _DOCUMENT.match(key)) is not None and (value is None or base is None):
        kind, principal, document = found.groups()
        what = "trust policy" if document == TRUST else document
        if value is None:
            return f"{name}'s {kind} {principal} has no {what}; {base_name}'s has ({base})"
        return f"{name}'s {kind} {principal} has {what} ({value}); {base_name}'s has none"
    if (found := _PRINCIPAL.match(key)) is not None:
        return f"{name}'s {found.group(1)} {found.group(2)} is {value}; {base_name}'s is {base}"
    return None


def why(key: str) -> str | None:
    """The explanation of a difference in an AWS key; None for a key that is not one."""
    if not is_aws_key(key):
        return None
    if key.startswith("secret "):
        return (
            "Rotation is set up differently: consumers proven in one environment to survive a rotation (no "
            "cached or pinned value) are not proven in the other, and a secret overdue in one is older than "
            "the policy allows."
        )
    found = _STATEMENT.match(key) or _DOCUMENT.match(key)
    if found is not None and found.group(3) == TRUST:
        return (
            "The trust policy decides who may assume the role: one environment lets in a principal (or under "
            "a condition) the other refuses, so an assume-role step proves nothing about the other."
        )
    if found is not None or _LISTING.match(key):
        return (
            "IAM policies decide what the identity may do: here one environment allows what the other "
            "refuses, so a step on these actions proves nothing about the other environment."
        )
    return "The identity exists (or is readable) in one environment only; its access cannot be compared."
