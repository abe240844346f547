"""The seeded mutator: case number + seed → one mutated input file, the same on every machine.

A case picks a base file (a built-in scenario, an environments file or the lab profile) and one to three
operations: tree operations on the parsed document (type swaps, key renames and deletions, duplicate keys,
anchors, tags, deep nesting, huge and odd values, template fragments, secret references anywhere), then
text operations on the bytes (flips, truncation, garbage, invalid UTF-8, line edits). Everything is drawn
from ``random.Random(f"{seed}:{number}")``, so a case is replayed from its two numbers alone.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.fuzz import fragments as frag
from tests.fuzz.emit import DupMap, emit
from tests.fuzz.fragments import Raw
from tests.fuzz.textops import TEXT_OPS

Path_ = tuple[Any, ...]
KINDS = {"scenario": 45, "environments": 35, "profile": 20}


@dataclass(frozen=True)
class Base:
    """One unmutated input: its kind, file name, text and parsed tree."""

    kind: str
    name: str
    text: bytes
    tree: Any


@dataclass(frozen=True)
class Case:
    """One mutated input, and how it was made."""

    number: int
    base: Base
    ops: tuple[str, ...]
    data: bytes


def make_case(seed: int, number: int, bases: dict[str, list[Base]], files: tuple[str, ...]) -> Case:
    """Case ``number`` of ``seed``: a deterministic function of its arguments."""
    rng = random.Random(f"{seed}:{number}")
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    base = rng.choice(bases[kind])
    count = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
    chosen = [_pick(rng) for _ in range(count)]
    ops: list[str] = []
    data = base.text
    tree_ops = [op for op in chosen if op in TREE_OPS]
    if tree_ops:
        tree = copy.deepcopy(base.tree)
        for name in tree_ops:
            tree = TREE_OPS[name][1](rng, tree, files)
            ops.append(name)
        data = emit(tree).encode("utf-8")
    for name in chosen:
        if name in TEXT_OPS:
            data = TEXT_OPS[name][1](rng, data)
            ops.append(name)
    return Case(number, base, tuple(ops), data)


def _pick(rng: random.Random) -> str:
    names = [*TREE_OPS, *TEXT_OPS]
    weights = [w for w, _ in TREE_OPS.values()] + [w for w, _ in TEXT_OPS.values()]
    return rng.choices(names, weights=weights)[0]


# ---- tree operations -------------------------------------------------------------------------------------


def _nodes(tree: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, tree
    if isinstance(tree, DupMap):
        return  # already rewritten by an earlier operation: a leaf from here on
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _nodes(value, (*path, i))


def _replace(tree: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return tree


def _random_node(rng: random.Random, tree: Any, want: Callable[[Any], bool] = lambda v: True) -> Path_ | None:
    found = [path for path, value in _nodes(tree) if path and want(value)]
    return rng.choice(found) if found else None


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and set(value) <= {"env", "file"}


def _swap_type(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict):
        return rng.choice((list(value.values()), [list(p) for p in value.items()], str(value), None, 1))
    if isinstance(value, list):
        return rng.choice(({str(i): v for i, v in enumerate(value)}, value[0] if value else "", "", 0))
    if isinstance(value, str):
        return rng.choice(([value], {value: value}, {"value": value}, 7, True, None, 1.5))
    return rng.choice((str(value), [value], {"k": value}, not value, None, "yes", "no", "on", "off"))


def tree_type_swap(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
    path = _random_node(rng, tree)
    if path is None:
        return _swap_type(rng, tree)
    value = _swap_type(rng, _node(tree, path)) if rng.random() < 0.7 else frag.scalars(rng)
    return _replace(tree, path, value)


def _node(tree: Any, path: Path_) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _mappings(tree: Any) -> list[Path_]:
    return [path for path, value in _nodes(tree) if isinstance(value, dict) and value]


def _rebuild(mapping: dict[Any, Any], change: Callable[[Any, Any], list[tuple[Any, Any]]]) -> DupMap:
    out = DupMap()
    for key, value in mapping.items():
        out.extend(change(key, value))
    return out


def tree_key_edit(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
    """Rename, delete or duplicate one key, or add an unknown one."""
    paths = _mappings(tree)
    if not paths:
        return tree
    path = rng.choice(paths)
    mapping: dict[Any, Any] = _node(tree, path)
    victim = rng.choice(list(mapping))
    action = rng.randrange(5)
    if action == 0:
        new_key: Any = rng.choice(
            (*frag.KEY_RENAMES, *frag.UNICODE, victim.upper() if isinstance(victim, str) else 1)
        )
        if rng.random() < 0.2:
            new_key = rng.choice((1, 1.5, True, None, Raw("*undefined"), Raw("!!binary aGk="), Raw("[a, b]")))
        result = _rebuild(mapping, lambda k, v: [(new_key if k == victim else k, v)])
    elif action == 1:
        result = _rebuild(mapping, lambda k, v: [] if k == victim else [(k, v)])
    elif action == 2:
        other = frag.scalars(rng) if rng.random() < 0.5 else mapping[victim]
        result = _rebuild(mapping, lambda k, v: [(k, v), (k, other)] if k == victim else [(k, v)])
    elif action == 3:
        extra = rng.choice(("expected", "witth", "extra", "__proto__", "name", "env"))
        result = _rebuild(
            mapping, lambda k, v: [(k, v), (extra, frag.scalars(rng))] if k == victim else [(k, v)]
        )
    else:
        result = DupMap()  # an empty mapping where one was required
    return _replace(tree, path, result)


def tree_list_edit(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
    """Duplicate, drop or empty a list: duplicate steps give duplicate step ids."""
    paths = [p for p, v in _nodes(tree) if isinstance(v, list) and v and p]
    if not paths:
        return tree
    path = rng.choice(paths)
    items = list(_node(tree, path))
    i = rng.randrange(len(items))
    action = rng.randrange(4)
    if action == 0:
        items.insert(i, copy.deepcopy(items[i]))
    elif action == 1:
        del items[i]
    elif action == 2:
        items = []
    else:
        items = items * rng.choice((2, 20, 200))
    return _replace(tree, path, items)


def tree_secret_ref(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
    """Secret references everywhere; scalars and lists where secret references belong."""
    refs = _random_node(rng, tree, _is_ref)
    roll = rng.random()
    if refs is not None and roll < 0.5:
        return _replace(tree, refs, copy.deepcopy(rng.choice(frag.secret_refs(files))))
    if refs is not None and roll < 0.75:
        return _replace(tree, refs, rng.choice(("literal-secret-value", 12345, ["x"], None, "${{ vars.x }}")))
    path = _random_node(rng, tree)
    ref = copy.deepcopy(rng.choice(frag.secret_refs(files)))
    return _replace(tree, path, ref) if path is not None else tree


def _strings(tree: Any) -> list[Path_]:
    return [p for p, v in _nodes(tree) if isinstance(v, str) and p]


def _string_op(
    change: Callable[[random.Random, str], Any],
) -> Callable[[random.Random, Any, tuple[str, ...]], Any]:
    def op(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
        paths = _strings(tree) or [p for p, _ in _nodes(tree) if p]
        if not paths:
            return tree
        path = rng.choice(paths)
        old = _node(tree, path)
        return _replace(tree, path, change(rng, old if isinstance(old, str) else ""))

    return op


def _template(rng: random.Random, old: str) -> str:
    fragment = rng.choice(frag.TEMPLATE_FRAGMENTS + frag.SECRET_OUTPUTS)
    roll = rng.random()
    if roll < 0.4:
        return fragment
    if roll < 0.8 and old:
        at = rng.randrange(len(old) + 1)
        return old[:at] + fragment + old[at:]
    return f"prefix-{fragment}-suffix"


def _unicode(rng: random.Random, old: str) -> str:
    piece = rng.choice(frag.UNICODE)
    return piece if rng.random() < 0.3 else old + piece


def _long(rng: random.Random, old: str) -> str:
    return frag.long_id(rng) if rng.random() < 0.6 else frag.huge_scalar(rng)


PROBES = (
    "vault.approle_login",
    "vault.token_lookup",
    "vault.kv_read",
    "aws.caller_identity",
    "aws.assume_role",
    "aws.secret_read",
    "aws.s3_get_object",
    "vault.nope",
    "test.echo",
)


def tree_swap_leaves(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
    """Two values trade places: a step id where a probe goes, a path where a token goes."""
    leaves = [p for p, v in _nodes(tree) if p and not isinstance(v, dict | list)]
    if len(leaves) < 2:
        return tree
    a, b = rng.sample(leaves, 2)
    first, second = _node(tree, a), _node(tree, b)
    return _replace(_replace(tree, a, second), b, first)


def tree_retarget(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
    """A step's probe changed, so that its parameters (and secrets) meet another probe's model."""
    paths = [p for p, v in _nodes(tree) if p and p[-1] == "probe" and isinstance(v, str)]
    if not paths:
        return tree_swap_leaves(rng, tree, files)
    return _replace(tree, rng.choice(paths), rng.choice(PROBES))


def _raw_op(make: Callable[[random.Random], Raw]) -> Callable[[random.Random, Any, tuple[str, ...]], Any]:
    def op(rng: random.Random, tree: Any, files: tuple[str, ...]) -> Any:
        path = _random_node(rng, tree)
        return _replace(tree, path, make(rng)) if path is not None else make(rng)

    return op


TREE_OPS: dict[str, tuple[int, Callable[[random.Random, Any, tuple[str, ...]], Any]]] = {
    "type-swap": (14, tree_type_swap),
    "key-edit": (12, tree_key_edit),
    "list-edit": (5, tree_list_edit),
    "secret-ref": (8, tree_secret_ref),
    "template": (12, _string_op(_template)),
    "unicode": (5, _string_op(_unicode)),
    "long-string": (4, _string_op(_long)),
    "odd-number": (5, _raw_op(lambda rng: Raw(rng.choice(frag.ODD_NUMBERS)))),
    "tag": (5, _raw_op(lambda rng: Raw(rng.choice(frag.TAGGED)))),
    "anchor": (4, _raw_op(frag.anchor_game)),
    "deep-nesting": (2, _raw_op(frag.deep_nesting)),
    "swap-leaves": (4, tree_swap_leaves),
    "retarget": (4, tree_retarget),
}
