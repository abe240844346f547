"""Rules on time: how long environments took to reach a step's expected outcome (``expect.within``), and
to see the conditions a probe awaited itself (its named waits, :attr:`~parityprobe.model.Observation.waits`).

The wait itself is judged by the outcome rules (a step that never reached its outcome in time has the
wrong one); here environments that all reached it are compared, like a grant's durations: a rotation or a
revocation that takes effect at once in staging and seconds later in production is a difference in when
access changes.
"""

from __future__ import annotations

from parityprobe.compare import severity
from parityprobe.compare.context import StepView
from parityprobe.model import Category, Finding

# Polling and request time make waits differ a little everywhere.
DEFAULT_TOLERANCE_SECONDS = 1.0
DEFAULT_TOLERANCE_RATIO = 0.20


def took(seconds: float) -> str:
    """``took 0.4s``."""
    return f"took {seconds:.1f}s"


def _span(low: float, high: float) -> str:
    """``took 0.2s to 4.1s``."""
    return f"{took(low)} to {high:.1f}s"


def wait_mismatch(view: StepView) -> list[Finding]:
    """Findings when environments took noticeably different times to reach the expected outcome, or to see
    a condition the probe awaited itself (a named wait: "new key works"), one per wait that differs."""
    findings = _step_wait(view)
    names = sorted({name for obs in view.observations for name in obs.waits})
    for name in names:
        finding = _named_wait(view, name)
        if finding is not None:
            findings.append(finding)
    return findings


def _step_wait(view: StepView) -> list[Finding]:
    step = view.step
    if step.expect_within is None:
        return []
    waits = {env.name: obs.waited_seconds for env, obs in view.pairs()}
    spread = _beyond_tolerance(view, waits)
    if spread is None:
        return []
    low, high = spread
    values = {name: took(w) for name, w in waits.items() if w is not None}
    return [
        view.finding(
            Category.GRANT_MISMATCH,
            severity.GRANT,
            values,
            f"{step.probe}: the time to reach {step.expect_outcome.value if step.expect_outcome else 'it'} "
            f"differs ({_span(low, high)})",
            _EXPLANATION,
            field="within",
        )
    ]


def _named_wait(view: StepView, name: str) -> Finding | None:
    waits = {env.name: obs.waits.get(name) for env, obs in view.pairs()}
    spread = _beyond_tolerance(view, waits)
    if spread is None:
        return None
    low, high = spread
    values = {env: took(w) for env, w in waits.items() if w is not None}
    return view.finding(
        Category.GRANT_MISMATCH,
        severity.GRANT,
        values,
        f"{view.step.probe}: the time until the {name} differs ({_span(low, high)})",
        _EXPLANATION,
        field=f"within {name}",
    )


def _beyond_tolerance(view: StepView, waits: dict[str, float | None]) -> tuple[float, float] | None:
    """The shortest and longest wait, when every environment has one and they differ beyond the step's
    ``tolerance.within`` (default: 1 s or 20 % of the longest, whichever is more); else None."""
    measured = [w for w in waits.values() if w is not None]
    if len(measured) < 2 or len(measured) < len(waits):
        return None  # an environment that never got there is an outcome (or grant) finding already
    low, high = min(measured), max(measured)
    tolerance = view.step.within_tolerance
    allowed = (
        float(tolerance)
        if tolerance is not None
        else max(DEFAULT_TOLERANCE_SECONDS, high * DEFAULT_TOLERANCE_RATIO)
    )
    return None if high - low <= allowed else (low, high)


_EXPLANATION = (
    "A rotation or revocation that takes effect at different speeds leaves a window (an old credential still "
    "working, a new one not yet) in one environment that tests of the other miss."
)
