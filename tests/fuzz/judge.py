"""Running one command in-process, as the console script would, and judging what it did.

The property: exit 0 with a plan, or exit 2 with one or more one-line errors that each name an input file
(``error: <file>[:<line>]: …``) and hold no raw control character; never another exit code, never a
traceback, never a secret value in the output, never a network connection. ``lab-profile FILE`` stands for
``lab up --profile FILE`` up to the point where servers would start: the profile loader inside the CLI's
own error handling.
"""

from __future__ import annotations

import _socket
import contextlib
import io
import logging
import os
import re
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_INTERNAL = re.compile(r"internal error: (\w+)")
_PROJECT = ("/src/parityprobe/", "/probes/")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


@dataclass
class Invocation:
    """What one command did: exit code, both streams, and an exception that escaped (with its frames)."""

    code: int | None
    out: str
    err: str
    traceback: str = ""
    exc_type: str = ""
    frames: list[tuple[str, int, str]] = field(default_factory=list)


def _profile_command(path: str, verbose: bool) -> None:
    from parityprobe.cli_support import handle_errors
    from parityprobe.lab.profile import load_profile

    with handle_errors(verbose):
        load_profile(Path(path))
        print(f"valid profile: {path}")


def _misbehave(how: str, port: int) -> None:
    """What the self-test cases do instead of a command: each is one way a case can go wrong."""
    if how == "block":
        time.sleep(3600)
    elif how == "spin":
        while True:
            pass
    elif how == "allocate":
        hoard = [bytearray(1 << 26) for _ in range(1 << 12)]  # 256 GiB: far past any address-space limit
        print(len(hoard))
    elif how == "abort":
        os.abort()
    elif how == "connect":
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    elif how == "reach-trap":
        raw = _socket.socket()  # the C socket, under the worker's guard: only the trap can tell
        raw.connect(("127.0.0.1", port))
        raw.close()
        print("valid: reached the trap")


def invoke(command: list[str], verbose: bool) -> Invocation:
    """Run ``command`` (parityprobe arguments, or ``lab-profile FILE``) with both streams captured.

    The streams encode like a real process's: standard output strictly, standard error with backslash
    escapes, so text that a terminal could not take fails here as it would there.
    """
    from parityprobe.cli import main

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True)
    saved = sys.stdout, sys.stderr
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # run sets up logging on this case's stderr
    sys.stdout, sys.stderr = out, err
    result = Invocation(None, "", "")
    try:
        if command[0] == "lab-profile":
            _profile_command(command[1], verbose)
        elif command[0] == "self-test":
            _misbehave(command[1], int(command[2]))
        else:
            main.main(args=(["--verbose"] if verbose else []) + command, prog_name="parityprobe")
        result.code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            result.code = exc.code or 0
        else:
            err.write(f"{exc.code}\n")  # what the interpreter does with sys.exit("text")
            result.code = 1
    except BaseException as exc:  # the property under test: nothing escapes
        result.traceback = "".join(traceback.format_exception(exc))
        result.exc_type = type(exc).__name__
        result.frames = [(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    finally:
        sys.stdout, sys.stderr = saved
        root.handlers[:], root.level = handlers, level
        for stream in (out, err):
            # A half-written surrogate is already recorded by the failure it caused.
            with contextlib.suppress(Exception):
                stream.flush()
    result.out = out_bytes.getvalue().decode("utf-8", "replace")
    result.err = err_bytes.getvalue().decode("utf-8", "replace")
    return result


def inputs_of(command: list[str]) -> list[str]:
    """The files a command reads, any of which an error may name."""
    if command[0] == "lab-profile":
        return [command[1]]
    names = [command[i + 1] for i, arg in enumerate(command) if arg in ("-e", "--environments")]
    names += [a for i, a in enumerate(command) if a.endswith((".yaml", ".yml")) and a not in names]
    return names


def located(line: str, inputs: list[str]) -> bool:
    """``error: <one of inputs>[:<line>]: <message>``."""
    if not line.startswith("error: "):
        return False
    rest = line[len("error: ") :]
    for name in inputs:
        # After the place, any message: a field path may itself start with a space (a key " ").
        if rest.startswith(name + ":") and re.match(r"(\d+:)? .", rest[len(name) + 1 :]):
            return True
    return False


def where(frames: list[tuple[str, int, str]]) -> str:
    """``parityprobe-file:function <- innermost-file:function``: the two frames that name a bug."""
    if not frames:
        return "?"
    inner = frames[-1]
    project = next((f for f in reversed(frames) if any(p in f[0] for p in _PROJECT)), None)
    text = f"{_short(inner[0])}:{inner[1]} {inner[2]}"
    if project is not None and project is not inner:
        text = f"{_short(project[0])}:{project[1]} {project[2]} -> {text}"
    return text


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/work/main/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def judge(
    result: Invocation, inputs: list[str], secrets: list[str], network: list[str]
) -> dict[str, Any] | None:
    """None for a clean case; otherwise the failure: kind, exception type, where, detail."""

    def fail(kind: str, detail: str, exc_type: str = "", at: str = "") -> dict[str, Any]:
        return {
            "kind": kind,
            "type": exc_type,
            "where": at,
            "detail": detail[:400],
            "traceback": result.traceback[-6000:],
            "stderr": result.err[:2000],
        }

    if network:
        return fail("network", "; ".join(network[:3]))
    if result.traceback:
        kind = "oom" if result.exc_type == "MemoryError" else "traceback"
        return fail(kind, result.traceback.strip().splitlines()[-1], result.exc_type, where(result.frames))
    for text in (result.out, result.err):
        if "Traceback (most recent call last)" in text:
            return fail("traceback", "a traceback was printed")
    leaked = [s for s in secrets if s in result.out or s in result.err]
    if leaked:
        return fail("secret-leak", f"{len(leaked)} secret value(s) printed")
    first = result.err.strip().splitlines()[0] if result.err.strip() else ""
    if result.code == 0:
        if not re.search(r"(?m)^(valid|dry run: nothing was executed)", result.out):
            return fail("exit 0 without a plan", result.out[:200])
        if result.err.strip():
            return fail("exit 0 with errors", first)
        return None
    if result.code == 2:
        lines = result.err.rstrip("\n").split("\n") if result.err.strip() else []
        if not lines:
            return fail("exit 2 without a message", "")
        for i, line in enumerate(lines):
            if not located(line, inputs):
                kind = "multi-line error" if i and located(lines[i - 1], inputs) else "unlocated error"
                return fail(kind, repr(line[:300]))
        control = _CONTROL.search(result.err)
        if control is not None:
            # A carriage return rewrites the line on a terminal; ESC sequences retitle or clear it.
            start = result.err.rfind("\n", 0, control.start()) + 1
            line = result.err[start : result.err.find("\n", control.start())]
            return fail("control character in an error", f"U+{ord(control.group()):04X} in {line[:300]!r}")
        return None
    internal = _INTERNAL.search(result.err)
    exc_type = internal.group(1) if internal else ""
    kind = "oom" if exc_type == "MemoryError" else f"exit {result.code}"
    return fail(kind, first, exc_type)
