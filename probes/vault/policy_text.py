"""Vault and OpenBao ACL policies as data: a policy's text (HCL, or its JSON form) read into path rules, so
two environments' policies compare by meaning. Whitespace, comments, the order of rules and of capabilities, a
leading ``/``, a path written twice, and the legacy ``policy = "write"`` shorthand do not count.

The reader takes the subset of HCL (version 1, as both servers parse policies) that policies use: blocks with
labels, ``key = value`` attributes, strings, numbers, booleans, lists and objects, and the comments ``#``,
``//`` and ``/* */``. Heredocs are not read. Text it cannot read is no error: :func:`read_policy` then
returns an :class:`UnreadPolicy` holding a digest of the text with its whitespace normalised, which still
compares equal for equal texts. Nothing here raises on what a server sends.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from parityprobe.config.durations import humanise

# Capabilities in the order Vault's documentation lists them; unknown ones (a newer server's) follow, sorted.
_WRITTEN = ("create", "read", "update", "patch", "delete", "list", "scan", "sudo", "deny")
CAPABILITY_ORDER: tuple[str, ...] = (*_WRITTEN, "subscribe", "recover")
DENY = "deny"
# The legacy ``policy = "…"`` values, as both servers expand them (observed on OpenBao 2.7 through
# sys/capabilities: "write" grants no patch).
_LEGACY = {
    "deny": frozenset({"deny"}),
    "read": frozenset({"read", "list"}),
    "write": frozenset({"create", "read", "update", "delete", "list"}),
    "sudo": frozenset({"create", "read", "update", "delete", "list", "sudo"}),
}
_WRAPPING_TTLS = frozenset({"min_wrapping_ttl", "max_wrapping_ttl"})
_MAX_DEPTH = 32  # hostile nesting ends in an unread policy, never a RecursionError


@dataclass(frozen=True, slots=True)
class PathRule:
    """One path's rule: its capabilities and its other attributes (parameter constraints, wrapping TTLs),
    each as normalised text."""

    capabilities: frozenset[str]
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def capability_text(self) -> str:
        """``read, update`` in the canonical order; ``(none)`` for a rule that grants nothing."""
        return capability_text(self.capabilities)


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy read: path pattern (as written, without a leading ``/``) → its rule."""

    paths: Mapping[str, PathRule]


@dataclass(frozen=True, slots=True)
class UnreadPolicy:
    """A policy text the reader could not read: ``digest`` (of the whitespace-normalised text) and why."""

    digest: str
    why: str


def capability_text(capabilities: frozenset[str]) -> str:
    known = [c for c in CAPABILITY_ORDER if c in capabilities]
    return ", ".join(known + sorted(capabilities - set(CAPABILITY_ORDER))) or "(none)"


def read_policy(text: str) -> Policy | UnreadPolicy:
    """The policy ``text`` holds, or an :class:`UnreadPolicy` for text this reader cannot read."""
    try:
        return Policy(_rules(_Parser(text).document()))
    except _Unreadable as exc:
        return UnreadPolicy(text_digest(text), str(exc))


def text_digest(text: str) -> str:
    """``sha256:`` and 16 hex digits of ``text`` with runs of whitespace made one space."""
    normal = " ".join(text.split())
    return "sha256:" + hashlib.sha256(normal.encode("utf-8", "replace")).hexdigest()[:16]


class _Unreadable(Exception):
    """Text outside the subset this reader takes (the message says where)."""


@dataclass(frozen=True, slots=True)
class _Object:
    """An HCL body or object: (keys, value) items in written order, duplicates kept."""

    items: tuple[tuple[tuple[str, ...], object], ...]


_TOKEN = re.compile(
    r"""(?P<space>[\s\ufeff]+)
      |(?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
      |(?P<string>"(?:[^"\\\n]|\\.)*")
      |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      |(?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
      |(?P<punct>[{}\[\]=,:])""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _Unreadable(f"unexpected text at offset {pos}")
        kind = match.lastgroup or ""
        if kind == "string":
            out.append((kind, _unquote(match.group())))
        elif kind not in ("space", "comment"):
            out.append((kind, match.group()))
        pos = match.end()
    return out


def _unquote(token: str) -> str:
    try:
        value = json.loads(token)
    except ValueError:
        # HCL escapes JSON lacks (\a, \v, \U…): keep the text between the quotes as written.
        return token[1:-1]
    return value if isinstance(value, str) else token[1:-1]


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokens(text)
        self._at = 0

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _Unreadable("unexpected end of text")
        self._at += 1
        return token

    def document(self) -> _Object:
        first = self._peek()
        if first == ("punct", "{"):  # the JSON form: one object
            self._take()
            body = self._body(closing=True, depth=1)
        else:
            body = self._body(closing=False, depth=0)
        if self._peek() is not None:
            raise _Unreadable("text after the end of the policy")
        return body

    def _body(self, closing: bool, depth: int) -> _Object:
        if depth > _MAX_DEPTH:
            raise _Unreadable("nested too deeply")
        items: list[tuple[tuple[str, ...], object]] = []
        while True:
            token = self._peek()
            if token is None:
                if closing:
                    raise _Unreadable("a '{' is not closed")
                return _Object(tuple(items))
            if token == ("punct", "}"):
                if not closing:
                    raise _Unreadable("a '}' closes nothing")
                self._take()
                return _Object(tuple(items))
            if token == ("punct", ","):
                self._take()
                continue
            keys: list[str] = []
            while (nxt := self._peek()) is not None and nxt[0] in ("ident", "string"):
                keys.append(self._take()[1])
            if not keys:
                raise _Unreadable(f"expected a key, found {token[1]!r}")
            nxt = self._peek()
            if nxt in (("punct", "="), ("punct", ":")):
                self._take()
                items.append((tuple(keys), self._value(depth + 1)))
            elif nxt == ("punct", "{"):
                self._take()
                items.append((tuple(keys), self._body(closing=True, depth=depth + 1)))
            else:
                raise _Unreadable(f"expected '=' or '{{' after {keys[-1]!r}")

    def _value(self, depth: int) -> object:
        if depth > _MAX_DEPTH:
            raise _Unreadable("nested too deeply")
        kind, text = self._take()
        if kind == "string":
            return text
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "ident" and text in ("true", "false"):
            return text == "true"
        if (kind, text) == ("punct", "{"):
            return self._body(closing=True, depth=depth + 1)
        if (kind, text) == ("punct", "["):
            values: list[object] = []
            while self._peek() != ("punct", "]"):
                if self._peek() == ("punct", ","):
                    self._take()
                    continue
                values.append(self._value(depth + 1))
            self._take()
            return values
        raise _Unreadable(f"unexpected {text!r}")


@dataclass
class _Rule:
    capabilities: set[str] = field(default_factory=set)
    attributes: dict[str, set[str]] = field(default_factory=dict)


def _objects(value: object) -> list[_Object]:
    """An object, or each object of a list (JSON writes repeated blocks as a list)."""
    if isinstance(value, _Object):
        return [value]
    if isinstance(value, list) and all(isinstance(v, _Object) for v in value):
        return [v for v in value if isinstance(v, _Object)]
    raise _Unreadable("a path rule is not an object")


def _rules(document: _Object) -> Mapping[str, PathRule]:
    rules: dict[str, _Rule] = {}
    for keys, value in document.items:
        if keys[0] != "path":
            continue  # ``name``: both servers accept and ignore it
        if len(keys) == 2:
            _add(rules, keys[1], value)
        elif len(keys) == 1:  # path = { "p" = {…} } and the JSON form
            for inner in _objects(value):
                for inner_keys, inner_value in inner.items:
                    if len(inner_keys) != 1:
                        raise _Unreadable("a path rule has more than one label")
                    _add(rules, inner_keys[0], inner_value)
        else:
            raise _Unreadable("a path rule has more than one label")
    return MappingProxyType({path: _finished(rules[path]) for path in sorted(rules)})


def _add(rules: dict[str, _Rule], path: str, value: object) -> None:
    # Both servers strip a leading '/' (a rule on "/secret/x" answers for "secret/x": observed on OpenBao).
    rule = rules.setdefault(path.removeprefix("/"), _Rule())
    for body in _objects(value):
        for keys, item in body.items:
            if len(keys) != 1:
                raise _Unreadable(f"unexpected block in the rule for {path!r}")
            name = keys[0]
            if name == "capabilities":
                rule.capabilities.update(_strings(item))
            elif name == "policy":
                for legacy in _strings(item):
                    rule.capabilities.update(_LEGACY.get(legacy.lower(), {legacy.lower()}))
            else:
                rule.attributes.setdefault(name, set()).add(_attribute_text(name, item))


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v).strip() for v in value]
    raise _Unreadable("capabilities are not a list of names")


def _finished(rule: _Rule) -> PathRule:
    # 'deny' takes precedence over every other capability on the same pattern.
    capabilities = frozenset({DENY}) if DENY in rule.capabilities else frozenset(rule.capabilities)
    attributes = {name: " | ".join(sorted(texts)) for name, texts in sorted(rule.attributes.items())}
    return PathRule(capabilities, MappingProxyType(attributes))


def _attribute_text(name: str, value: object) -> str:
    if name in _WRAPPING_TTLS:
        seconds = _seconds(value)
        if seconds is not None:
            return humanise(seconds)
    return json.dumps(_plain(value), sort_keys=True, separators=(", ", ": "))


def _plain(value: object) -> object:
    """A JSON value, lists sorted and an object's repeated keys merged: the order written does not count."""
    if isinstance(value, _Object):
        merged: dict[str, list[object]] = {}
        for keys, item in value.items:
            merged.setdefault(".".join(keys), []).append(_plain(item))
        return {k: v[0] if len(v) == 1 else _sorted(v) for k, v in merged.items()}
    if isinstance(value, list):
        return _sorted([_plain(v) for v in value])
    return value


def _sorted(values: list[object]) -> list[object]:
    return sorted(values, key=lambda v: json.dumps(v, sort_keys=True))


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _seconds(value: object) -> int | None:
    """Whole seconds of a wrapping TTL: a number of seconds or a Go duration (``1h30m``); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return int(sum(float(n) * _GO_UNITS[u] for n, u in parts))
