"""Text operations of the mutator: on the bytes of a file, after any tree operation.

They reach what no well-formed tree can: bit flips, truncation, NUL bytes and invalid UTF-8, a BOM in the
middle, other encodings, line edits that break indentation, aliases pointed at the wrong anchor.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from tests.fuzz import fragments as frag

GARBAGE = (
    b"\x00",
    b"\x00" * 16,
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xef\xbb\xbf",
    b"\x1b",
    b"\x7f",
    b"\r",
    b"\t",
    b"\x0c",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"%",
    b"@",
    b"`",
    b"&",
    b"*",
    b"!",
    b"|",
    b">",
    b"'",
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b": ",
    b"- ",
    b"? ",
    b"#",
    b"\n---\n",
    b"\n...\n",
    b"%YAML 1.1\n---\n",
    b"%TAG ! tag:example.com,2000:\n---\n",
)


def text_flip(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        if buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def text_truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def text_garbage(rng: random.Random, data: bytes) -> bytes:
    piece = rng.choice(GARBAGE) if rng.random() < 0.8 else rng.randbytes(rng.randrange(1, 64))
    at = rng.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


def text_whole(rng: random.Random, data: bytes) -> bytes:
    """The whole file replaced or re-encoded: binary, empty, UTF-16, Latin-1, a BOM, several documents."""
    text = data.decode("utf-8", "replace")
    return rng.choice(
        (
            lambda: rng.randbytes(rng.randrange(0, 4096)),
            lambda: b"",
            lambda: b"   \n\n",
            lambda: b"---\n",
            lambda: b"~\n",
            lambda: b"[]\n",
            lambda: b"- 1\n",
            lambda: text.encode("utf-16"),
            lambda: (text + "# café\n").encode("latin-1", "replace"),
            lambda: b"\xef\xbb\xbf" + data,
            lambda: data + b"\n---\n" + data,
            lambda: data.replace(b"\n", b"\r\n"),
            lambda: data.replace(b"\n", b"\r"),
            lambda: data.replace(b"  ", b"\t"),
        )
    )()


def text_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    action = rng.randrange(5)
    if action == 0:
        del lines[i]
    elif action == 1:
        lines.insert(i, lines[j])
    elif action == 2:
        lines[i], lines[j] = lines[j], lines[i]
    elif action == 3:
        lines[i] = b" " * rng.choice((1, 2, 3, 8)) + lines[i]
    else:
        lines[i] = lines[i].lstrip(b" ")
    return b"\n".join(lines)


def text_alias(rng: random.Random, data: bytes) -> bytes:
    """Aliases pointed at the wrong anchor, at none, or at themselves."""
    aliases = list(re.finditer(rb"\*([A-Za-z_][\w-]*)", data))
    anchors = re.findall(rb"&([A-Za-z_][\w-]*)", data) or [b"nothing"]
    if not aliases:
        return text_template(rng, data)
    m = rng.choice(aliases)
    target: bytes = rng.choice([*anchors, b"undefined", m.group(1) + b"x"])
    return data[: m.start(1)] + target + data[m.end(1) :]


def text_template(rng: random.Random, data: bytes) -> bytes:
    """A template fragment put inside an existing line, after a ``key: `` when there is one."""
    spots = [m.end() for m in re.finditer(rb": ", data)] or [len(data)]
    at = rng.choice(spots)
    if rng.random() < 0.5:
        at = rng.randrange(len(data) + 1)
    fragment = rng.choice(frag.TEMPLATE_FRAGMENTS + frag.SECRET_OUTPUTS).encode("utf-8")
    return data[:at] + fragment + data[at:]


TEXT_OPS: dict[str, tuple[int, Callable[[random.Random, bytes], bytes]]] = {
    "byte-flip": (10, text_flip),
    "truncate": (5, text_truncate),
    "garbage": (8, text_garbage),
    "whole-file": (3, text_whole),
    "line-edit": (6, text_lines),
    "alias-swap": (3, text_alias),
    "text-template": (5, text_template),
}
