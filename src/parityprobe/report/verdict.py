"""The verdict: one line that agrees with :attr:`Report.exit_code` and says what was done.

The exit code is decided on causes (:mod:`parityprobe.report.causes`): 1 when any cause is not inconclusive,
3 when every cause is, or when nothing was checked; 0 without any. Grouping never changes it: a cause is
inconclusive exactly when its findings are, so it always equals :attr:`Report.exit_code` — unless findings
were accepted as known divergences (:mod:`parityprobe.report.divergences`): those are in no cause, so they
count for nothing, and a report whose every finding is accepted exits 0.

A run in two or more environments compares them (``NO PARITY GAPS FOUND``, ``PARITY GAPS FOUND``). A run
in one environment is a legitimate use — checking the scenarios' expectations — but compares nothing, and
the verdict says so: ``1 environment: expectations checked, nothing compared — NO EXPECTATION
VIOLATIONS``, with the steps that state no expectation counted as unchecked. A run that checked nothing at
all (one environment, no step states an expectation) is never an all-clear: ``NOTHING CHECKED``, exit 3.
An inconclusive result is never parity either: ``INCONCLUSIVE — no verdict for <scenario/step>``.

CI logs are grepped for the verdict line, so its wording changes only deliberately, with the tests.
"""

from __future__ import annotations

from collections.abc import Iterable

from parityprobe.model import Category, ExitCode, Finding, Report
from parityprobe.report.causes import Cause, actions, group_causes
from parityprobe.report.view import Verdict, plural

_STEPS_SHOWN = 5


def exit_code(report: Report, causes: tuple[Cause, ...]) -> ExitCode:
    """0 no cause, 1 any cause with a verdict, 3 when every cause is inconclusive or nothing was checked."""
    if not causes:
        return ExitCode.INCONCLUSIVE if report.checked_nothing else ExitCode.OK
    if all(c.category is Category.INCONCLUSIVE for c in causes):
        return ExitCode.INCONCLUSIVE
    return ExitCode.FINDINGS


def verdict(report: Report, causes: tuple[Cause, ...] | None = None) -> Verdict:
    """The verdict on ``report``, whose findings grouped by cause are ``causes`` (grouped here if None)."""
    if causes is None:
        causes = group_causes(report.findings, actions(report.comparisons))
    code = exit_code(report, causes)
    # The causes' findings only: a finding accepted as a divergence (in no cause) says nothing here.
    grouped = {id(f) for c in causes for f in c.occurrences}
    findings = [f for f in report.findings if id(f) in grouped]
    undecided = _undecided(f for f in findings if f.category is Category.INCONCLUSIVE)
    decisive = [f for f in findings if f.category is not Category.INCONCLUSIVE]
    single = [c for c in report.comparisons if not c.compared]
    unchecked = sum(len(c.unchecked) for c in report.comparisons)
    compared_any = len(single) < len(report.comparisons)

    tails: list[str] = []
    if report.checked_nothing:
        why = _why_nothing(report)
        if code is ExitCode.FINDINGS:  # a failed undo is still a finding, though nothing else was judged
            head = _found(decisive, compared=False)
            tails.append(f"nothing else checked: {why}")
        else:
            head = f"NOTHING CHECKED — {why}"
        if undecided:
            tails.append(f"also no verdict for {undecided}")
        return _verdict(code, head, tails)

    prefix = ""
    if not compared_any:
        environments = dict.fromkeys(run.environment for c in single for run in c.runs)
        prefix = f"{plural(len(environments), 'environment')}: expectations checked, nothing compared — "
    if code is ExitCode.OK:
        head = "NO PARITY GAPS FOUND" if compared_any else "NO EXPECTATION VIOLATIONS"
    elif code is ExitCode.INCONCLUSIVE:
        head = f"INCONCLUSIVE — no verdict for {undecided}"
    elif code is ExitCode.FINDINGS:
        head = _found(decisive, compared=compared_any)
        if undecided:
            tails.append(f"also no verdict for {undecided}")
    else:  # a report never yields BAD_INPUT today
        head = ""
    if compared_any and single:
        tails.append(
            f"{plural(len(single), 'scenario')} ran in one environment only: expectations checked there"
        )
    if unchecked:
        tails.append(f"{plural(unchecked, 'step')} unchecked (no expectation)")
    return _verdict(code, prefix + head, tails)


def _verdict(code: ExitCode, head: str, tails: list[str]) -> Verdict:
    exit_part = f"exit {int(code)}"
    text = f"{head} ({exit_part})" if head else exit_part
    return Verdict(code, "; ".join([text, *tails]))


def _found(decisive: list[Finding], *, compared: bool) -> str:
    """The headline of a report with findings: a failed undo is a finding, but not a parity gap."""
    if any(f.category is not Category.CLEANUP_FAILED for f in decisive):
        return "PARITY GAPS FOUND" if compared else "EXPECTATION VIOLATIONS FOUND"
    return "CLEANUP FAILED"


def _why_nothing(report: Report) -> str:
    if not report.comparisons:
        return "no scenario ran"
    if not any(c.steps for c in report.comparisons):
        return "no scenario has a step"
    single = [c for c in report.comparisons if not c.compared]
    environments = dict.fromkeys(run.environment for c in single for run in c.runs)
    return f"{plural(len(environments), 'environment')} and no step states an expectation"


def _undecided(findings: Iterable[Finding]) -> str:
    """``scenario/step`` of the inconclusive findings, distinct, for the verdict line."""
    places = list(dict.fromkeys(f.scenario + (f"/{f.step}" if f.step else "") for f in findings))
    shown = ", ".join(places[:_STEPS_SHOWN])
    if len(places) > _STEPS_SHOWN:
        shown += f" and {len(places) - _STEPS_SHOWN} more"
    return shown
