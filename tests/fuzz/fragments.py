"""Hostile values the mutator draws from: each pool aims at one way input handling goes wrong.

``Raw`` values are spliced into the emitted YAML verbatim, so they can carry what a Python value cannot:
tags, anchors and aliases, YAML-only number spellings, nesting deeper than any emitter recurses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Raw:
    """YAML text put in place of a value (or a key) as it is; ``block`` ones start on the next line."""

    text: str
    block: bool = False


TEMPLATE_FRAGMENTS = (
    "${{",
    "}}",
    "${{ }}",
    "${{ vars. }}",
    "${{ vars.",
    "${{ vars.team",
    "${{ vars.team }}}",
    "${{{ vars.team }}",
    "$${{ vars.team }}",
    "${{ vars.nope }}",
    "${{ vars.team }}${{ vars.team }}",
    "${{ ${{ vars.team }} }}",
    "${{ steps.x.outputs.y }}",
    "${{ steps..outputs. }}",
    "${{ STEPS.login.outputs.token }}",
    "${{ steps.login.outputs.token }}",
    "${{ steps.login.outputs.accessor }}",
    "${{ steps.login.outputs.token }}${{ steps.login.outputs.token }}",
    "${{ steps.read-own.outputs.value }}",
    "${{ steps.assume-break-glass.outputs.secret_access_key }}",
    "${{ steps.aws-identity.outputs.arn }}",
    "${{ env.name }}",
    "${{ env.nope }}",
    "${{ vars.team\n}}",
    "${{ vars.__class__ }}",
    "${{ 7 * 7 }}",
    "{{ vars.team }}",
    "${vars.team}",
)

SECRET_OUTPUTS = (
    "${{ steps.login.outputs.token }}",
    "${{ steps.login.outputs.accessor }}",
    "${{ steps.read-own.outputs.value }}",
)

ODD_NUMBERS = (
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "+.inf",
    "1e999",
    "-1e999",
    "1e-999",
    "-0",
    "-0.0",
    "0x7fffffffffffffffffffffff",
    "0o777",
    "0b1010",
    "1_000",
    "1:30",
    "190:20:30",
    "012",
    "+12",
    "9" * 5000,
    "-" + "9" * 5000,
    "1." + "0" * 5000,
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-02-30",
    "2001-13-01 00:00:00",
    "2147483648",
    "-9223372036854775809",
    "18446744073709551616",
)

TAGGED = (
    "!!python/object:os.system {}",
    "!!python/object/apply:os.system [echo pwned]",
    "!!python/name:os.system",
    "!!binary aGVsbG8gd29ybGQ=",
    "!!binary ???",
    "!!binary 8J+YgA==",
    "!!set {a, b}",
    "!!set {}",
    "!!timestamp 2001-12-14",
    "!!timestamp nope",
    "!!timestamp 2001-02-30",
    "!!int nope",
    "!!int 0x",
    "!!float nope",
    "!!bool maybe",
    "!!str 12",
    "!!null x",
    "!!map [a, b]",
    "!!seq {a: 1}",
    "!!omap [a: 1, b: 2]",
    "!!omap [a]",
    "!!pairs [a: 1, a: 2]",
    "!!merge x",
    "!!value x",
    "!custom thing",
    "!<tag:yaml.org,2002:int> 12",
    "!<tag:example.com,2000:x> 1",
)

UNICODE = (
    "é",
    "İstanbul",
    "straße",
    "e\u0301",
    "\u202egnp.exe",
    "zero\u200bwidth",
    "\ufeffbom",
    "😀",
    "\U0001f4a9" * 300,
    "a\u2028b",
    "a\u2029b",
    "a\x85b",
    "\ud800",
    "x\udfffy",
    "\x7f",
    "tab\there",
    "line\nbreak",
    "cr\rreturn",
    "\x1b[31mred\x1b[0m",
    "\x1b]0;title\x07",
    "\u0000",
    "\u0456d",  # a Cyrillic i
    "\uff29\uff24",  # fullwidth
)

KEY_RENAMES = (
    "",
    " ",
    "id ",
    "Id",
    "ID",
    "~",
    "null",
    "<<",
    "? x",
    "- x",
    "a: b",
    "#",
    "&a",
    "*a",
    "k" * 200,
    "k" * 2000,
)


def billion_laughs(rng: random.Random) -> Raw:
    """Nested aliases, each level ``width`` times the one before: tiny text, a huge tree."""
    width, depth = rng.choice(((9, 9), (10, 8), (6, 12), (2, 40), (4, 20)))
    items = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, depth):
        items.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return Raw("[" + ", ".join(items) + "]")


def anchor_game(rng: random.Random) -> Raw:
    """Self-reference, aliases in key position, undefined aliases, merge-key misuse."""
    if rng.random() < 0.3:
        return billion_laughs(rng)
    return Raw(
        rng.choice(
            (
                "&self [*self]",
                "&self {a: *self}",
                "&self {<<: *self}",
                "{&k kk: 1, *k : 2}",
                "{&k id: 1, *k : 2}",
                "{&m {a: 1}: 2}",
                "{&s [a]: 1, *s : 2}",
                "*undefined",
                "[&a x, *a, *b]",
                "{<<: 1}",
                "{<<: [1, 2]}",
                "{<<: *nope}",
                "{<<: [&m {a: 1}, *m], a: 2}",
                "{<<: &m {id: x, probe: vault.kv_read}, <<: *m}",
                "&a &b x",
                "&a",
                "*a*a",
                "[&a {b: c}, *a, *a, *a]",
            )
        )
    )


def deep_nesting(rng: random.Random) -> Raw:
    """Deeper than any recursive parser or validator goes by default (2,000 levels and more)."""
    depth = rng.choice((50, 200, 400, 900, 1100, 2000, 3000, 5000, 20000))
    shape = rng.randrange(5)
    if shape == 0:
        return Raw("[" * depth + "]" * depth)
    if shape == 1:
        return Raw("{a: " * depth + "1" + "}" * depth)
    if shape == 2:
        return Raw("- " * depth + "x", block=True)
    if shape == 3:
        depth = min(depth, 3000)  # block indentation grows quadratically in bytes
        return Raw("\n".join(" " * i + "a:" for i in range(depth)) + " 1", block=True)
    return Raw("[{a: " * depth + "1" + "}]" * depth)


def huge_scalar(rng: random.Random) -> str:
    size = rng.choice((1_000, 10_000, 100_000, 1_000_000, 4_000_000))
    piece = rng.choice(("x", "a-", "${{ vars.team }}", "é", " "))
    return (piece * (size // len(piece) + 1))[:size]


def long_id(rng: random.Random) -> str:
    length = rng.choice((40, 41, 63, 64, 65, 128, 1024, 10_000))
    return ("a" + "-b" * length)[:length] if rng.random() < 0.5 else "a" * length


def secret_refs(files: tuple[str, ...]) -> tuple[Any, ...]:
    """Secret references good and bad; ``files`` are paths in the fuzz workspace (readable, FIFO, …)."""
    return (
        {"env": "PP_FUZZ_SECRET"},
        {"env": "PP_FUZZ_UNSET_VARIABLE"},
        {"env": ""},
        {"env": "A\nB"},
        {"env": "NUL\x00"},
        {"env": 1},
        {"env": ["PP_FUZZ_SECRET"]},
        {"env": {"env": "PP_FUZZ_SECRET"}},
        {"env": "PP_FUZZ_SECRET", "file": files[0]},
        {},
        {"file": "missing-secret-file"},
        {"file": "."},
        {"file": ""},
        {"file": "/dev/null"},
        {"file": "line\nbreak"},
        {"file": "nul\x00byte"},
        {"file": "~nobody-here/x"},
        {"file": "../" * 40 + "etc/hostname"},
        *({"file": f} for f in files),
        {"vault": "x"},
    )


def scalars(rng: random.Random) -> Any:
    """A plain value of a random type."""
    return rng.choice(
        (0, 1, -1, 3600, 1.5, -0.0, True, False, None, "", "x", "read", "allowed", "1h", [], {}, ["x"])
    )
