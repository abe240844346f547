"""The harness's own error tree.

Every failure of parityprobe itself (bad input, a missing plugin, a lab that will not start) is a
``ParityProbeError``. Failures of the *targets* (Vault, AWS, …) are never raised through this tree: the
probe boundary turns them into ``Observation`` outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ParityProbeError(Exception):
    """Base class of every error raised by parityprobe itself."""


@dataclass(frozen=True)
class Problem:
    """One problem in one input file: where it is and what is wrong."""

    file: Path | None
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        place = _one_line(str(self.file)) if self.file is not None else "<input>"
        if self.line is not None:
            place += f":{self.line}"
        if self.field:
            return f"{place}: {_one_line(self.field)}: {_one_line(self.message)}"
        return f"{place}: {_one_line(self.message)}"


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: a problem is always one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class InputError(ParityProbeError):
    """Bad input (YAML, configuration, scenario, CLI argument); carries every problem found.

    The CLI prints each problem on its own line and exits with code 2.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginError(ParityProbeError):
    """A probe (or other plugin) could not be found or loaded."""


class LabError(ParityProbeError):
    """The local lab could not be started, seeded or stopped."""


class StoreError(ParityProbeError):
    """The result store could not be opened, read or written.

    The message names the store by its URL with the password masked, says what was being done and what went
    wrong in a fixed phrase; never the driver's own text, which can repeat the URL or a statement.
    """
