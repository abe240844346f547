"""The divergences file: differences between environments that are known, owned and accepted until a date.

A team that knows staging's tokens live longer than production's, and has decided to live with it for now,
declares it once instead of reading it in every report::

    divergences:
      - scenario: token-lifetime          # a scenario id, or a glob (``token-*``)
        step: "login*"                    # a step id or glob; absent: any step, and scenario-wide findings
        category: grant_mismatch          # a finding category (``parityprobe`` report's words)
        field: ttl                        # absent: any field
        environments: [staging]           # absent: any; else every one named must be in the finding
        reason: staging keeps 24h tokens until the broker migration
        owner: platform-team
        expires: 2026-03-31               # an ISO date; the last day the acceptance holds

The file is validated like every input: unknown keys, a category that does not exist, a date that is not
``YYYY-MM-DD``, a missing reason or owner are each a problem naming file, line and field
(:class:`~parityprobe.errors.InputError`). How declarations apply to findings is
:mod:`parityprobe.report.divergences`.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from parityprobe.config.load import load_model
from parityprobe.model import Category
from parityprobe.report.divergences import Declaration

# Strictly the ISO calendar date: pydantic alone would also take a number (as Unix seconds) or a datetime.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> date:
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected an ISO date (YYYY-MM-DD), got {value!r}")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
_Text = Annotated[str, Field(min_length=1)]


class DivergenceEntry(BaseModel):
    """One declared divergence, as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: _Text
    step: _Text | None = None
    category: Category
    field: _Text | None = None
    environments: list[_Text] | None = None
    reason: _Text
    owner: _Text
    expires: IsoDate

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class DivergencesFile(BaseModel):
    """The whole file: a list of declarations (an empty list is allowed, and accepts nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    divergences: list[DivergenceEntry]


def load_divergences(path: Path) -> tuple[Declaration, ...]:
    """The declarations in ``path``, in file order; InputError naming file, line and field otherwise."""
    parsed, locator = load_model(path, DivergencesFile)
    out = []
    for index, entry in enumerate(parsed.divergences):
        line = locator.line(("divergences", index))
        out.append(
            Declaration(
                scenario=entry.scenario,
                step=entry.step,
                category=entry.category,
                field=entry.field,
                environments=tuple(entry.environments or ()),
                reason=entry.reason,
                owner=entry.owner,
                expires=entry.expires,
                source=f"{path.name}:{line}" if line is not None else path.name,
            )
        )
    return tuple(out)
