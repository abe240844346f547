"""Rules on time: how long environments took to reach a step's expected outcome (``expect.within``).

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


def wait_mismatch(view: StepView) -> list[Finding]:
    """One finding when environments took noticeably different times to reach the expected outcome."""
    step = view.step
    if step.expect_within is None:
        return []
    waits = {env.name: obs.waited_seconds for env, obs in view.pairs()}
    measured = [w for w in waits.values() if w is not None]
    if len(measured) < 2 or len(measured) < len(waits):
        return []  # an environment that never got there is an outcome finding already
    low, high = min(measured), max(measured)
    allowed = (
        float(step.within_tolerance)
        if step.within_tolerance is not None
        else max(DEFAULT_TOLERANCE_SECONDS, high * DEFAULT_TOLERANCE_RATIO)
    )
    if high - low <= allowed:
        return []
    values = {name: took(w) for name, w in waits.items() if w is not None}
    return [
        view.finding(
            Category.GRANT_MISMATCH,
            severity.GRANT,
            values,
            f"{step.probe}: the time to reach {step.expect_outcome.value if step.expect_outcome else 'it'} "
            f"differs ({took(low)} to {took(high)})",
            "A rotation or revocation that takes effect at different speeds leaves a window (an old "
            "credential still working, a new one not yet) in one environment that tests of the other miss.",
            field="within",
        )
    ]
