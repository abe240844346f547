"""Accepted divergences applied to findings: which are accepted, which were accepted once, which declarations
matched nothing.

A declaration (:mod:`parityprobe.config.divergences`) matches a finding when all of these hold:

- the scenario id matches its ``scenario`` (an id or a shell-style glob);
- its ``step`` is absent, or the finding is on a step whose id matches it (a glob: ``login*``); a finding on
  no step (the whole scenario) is matched only by a declaration without ``step``;
- the categories are equal, and its ``field``, when given, equals the finding's;
- every environment it names is among the finding's value keys (``[staging]`` matches staging against
  production, and staging against its expectation).

A finding matched by a declaration that has not expired is **accepted**: reports show it in its own short
section, with owner, reason and expiry, and it counts for nothing (not in causes, counts or exit code). A
finding matched only by expired declarations is **expired**: counted again like any finding, and flagged
``accepted until <date> (expired)`` so the owner sees why it is back. The first matching declaration in file
order is the one shown. A declaration that matched no finding at all is **unmatched**, listed so it can be
removed.

Acceptance is per finding, before findings are grouped into causes (:mod:`parityprobe.report.causes`): a cause
whose occurrences are all accepted disappears from the causes; one with some occurrences accepted stays,
made of the others, and the accepted ones are listed with the accepted divergences. An accepted difference
thus never hides the same difference seen where nobody accepted it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase

from parityprobe.model import Category, Finding


@dataclass(frozen=True, slots=True)
class Declaration:
    """One declared divergence, with where it was declared (``divergences.yaml:12``) for reports."""

    scenario: str  # an id or a glob
    step: str | None  # an id or a glob; None: any step, and findings on no step
    category: Category
    field: str | None  # None: any field
    environments: tuple[str, ...]  # empty: any environments
    reason: str
    owner: str
    expires: date  # the last day it holds
    source: str  # ``divergences.yaml:12``: where it was declared

    def expired(self, today: date) -> bool:
        """True once ``today`` is past the expiry date (the expiry day itself still holds)."""
        return today > self.expires


@dataclass(frozen=True, slots=True)
class Match:
    """A finding and the declaration that accepts (or accepted) it."""

    finding: Finding
    declaration: Declaration

    @property
    def note(self) -> str:
        """``accepted until 2026-03-31 (expired)`` for an expired acceptance; ``accepted until …`` else."""
        return f"accepted until {self.declaration.expires.isoformat()}"


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of applying declarations to a report's findings."""

    counted: tuple[Finding, ...]  # every finding not accepted (expired ones included), in report order
    accepted: tuple[Match, ...]  # findings a live declaration accepts, in report order
    expired: tuple[Match, ...]  # findings only expired declarations matched (also in ``counted``)
    unmatched: tuple[Declaration, ...]  # declarations that matched no finding, in file order
    today: date  # the day expiry was judged against

    def expired_note(self, finding: Finding) -> str | None:
        """``accepted until 2026-03-31 (expired)`` when ``finding`` is expired; None otherwise."""
        for match in self.expired:
            if match.finding is finding:
                return f"{match.note} (expired)"
        return None


def matches(declaration: Declaration, finding: Finding) -> bool:
    """True when ``declaration`` describes ``finding`` (see the module docstring)."""
    if declaration.category is not finding.category:
        return False
    if declaration.field is not None and declaration.field != finding.field:
        return False
    if not fnmatchcase(finding.scenario, declaration.scenario):
        return False
    if declaration.step is not None and (
        finding.step is None or not fnmatchcase(finding.step, declaration.step)
    ):
        return False
    return all(env in finding.environments for env in declaration.environments)


def apply(findings: Iterable[Finding], declarations: Sequence[Declaration], today: date) -> Applied:
    """Which of ``findings`` the ``declarations`` accept on ``today``, which they accepted once, and which
    declarations matched nothing. Pure: the same inputs give the same answer on any day."""
    counted: list[Finding] = []
    accepted: list[Match] = []
    expired: list[Match] = []
    used: set[int] = set()
    for finding in findings:
        hits = [(i, d) for i, d in enumerate(declarations) if matches(d, finding)]
        used.update(i for i, _ in hits)
        live = [d for _, d in hits if not d.expired(today)]
        if live:
            accepted.append(Match(finding, live[0]))
            continue
        counted.append(finding)
        if hits:
            expired.append(Match(finding, hits[0][1]))
    unmatched = tuple(d for i, d in enumerate(declarations) if i not in used)
    return Applied(tuple(counted), tuple(accepted), tuple(expired), unmatched, today)
