"""The SIEM evidence rules: did each environment's SIEM receive the events a step's action must cause (or
not receive those it must not), and how late.

Judged per environment against the step's expectation, like an outcome: an environment whose SIEM lacks an
expected event (or holds one that must be absent) is an ``evidence_gap`` of its own, whatever the others
show. A SIEM that gave no answer is ``inconclusive``, never a gap and never parity. Where every environment
received the event, the time to receipt is compared: one environment slower beyond the tolerance (10 s or
half the slower time, whichever is larger: ingestion pipelines are noisy) is a ``latency_mismatch``.
Each finding names the connector, the window searched and the correlation id, so the search can be rerun by
hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from parityprobe.compare import severity
from parityprobe.model import Category, Evidence, EvidenceStatus, Finding, Run
from parityprobe.spec import EnvironmentFacts

TOLERANCE_SECONDS = 10.0
TOLERANCE_RATIO = 0.5


def findings(scenario: str, runs: Sequence[Run]) -> list[Finding]:
    """Every evidence finding of one scenario's runs, expectation by expectation."""
    keys = list(dict.fromkeys((e.step, e.index) for run in runs for e in run.evidence))
    out: list[Finding] = []
    for step, index in keys:
        found = [(run.env, e) for run in runs for e in run.evidence if (e.step, e.index) == (step, index)]
        values = {env.name: e.describe() for env, e in found}
        out.extend(_gap(scenario, env, e, values) for env, e in found if e.holds is False)
        silent = [(env, e) for env, e in found if e.status is EvidenceStatus.NO_VERDICT]
        if silent:
            out.append(_no_verdict(scenario, step, index, silent, values))
        out.extend(_slower(scenario, step, index, found, values))
    return out


def _field(index: int) -> str:
    return f"siem[{index}]"


def _searched(e: Evidence) -> str:
    window = f"{e.window_start.isoformat(timespec='seconds')} to {e.window_end.isoformat(timespec='seconds')}"
    match = ", ".join(f"{k}={v}" for k, v in sorted(e.match.items()))
    return f"connector {e.connector}, correlation id {e.correlation_id}, {window}" + (
        f", match {match}" if match else ""
    )


def _gap(scenario: str, env: EnvironmentFacts, e: Evidence, values: dict[str, str]) -> Finding:
    if e.expect == "present":
        message = f"{env.name}: no SIEM event for the step ({_searched(e)})"
        why = (
            "The action happened, but this environment's SIEM never received its event: a detection or an "
            "investigation that relies on it works in one environment and is blind in this one."
        )
    else:
        message = (
            f"{env.name}: the SIEM received {e.events} event(s) the step must not cause ({_searched(e)})"
        )
        why = (
            "The step must leave no such event (a noisy alert, a leak into logs) and this environment's did."
        )
    return Finding(
        category=Category.EVIDENCE_GAP,
        severity=severity.evidence_gap(env.tier),
        scenario=scenario,
        step=e.step,
        environments=values,
        message=message,
        explanation=why,
        field=_field(e.index),
    )


def _no_verdict(
    scenario: str,
    step: str,
    index: int,
    silent: list[tuple[EnvironmentFacts, Evidence]],
    values: dict[str, str],
) -> Finding:
    names = ", ".join(env.name for env, _ in silent)
    where = "; ".join(f"{env.name}: {_searched(e)}" for env, e in silent)
    return Finding(
        category=Category.INCONCLUSIVE,
        severity=severity.INCONCLUSIVE,
        scenario=scenario,
        step=step,
        environments=values,
        message=f"no SIEM verdict in {names} ({where})",
        explanation="The SIEM did not answer (or the step did not act): whether it received the event is "
        "unknown there, which is neither evidence nor a gap.",
        field=_field(index),
    )


def _slower(
    scenario: str,
    step: str,
    index: int,
    found: list[tuple[EnvironmentFacts, Evidence]],
    values: dict[str, str],
) -> list[Finding]:
    received = [
        (env, e.receipt_seconds)
        for env, e in found
        if e.expect == "present" and e.status is EvidenceStatus.RECEIVED and e.receipt_seconds is not None
    ]
    if len(received) < 2 or len(received) < len(found):
        return []
    times = [t for _, t in received if t is not None]
    low, high = min(times), max(times)
    if high - low <= max(TOLERANCE_SECONDS, high * TOLERANCE_RATIO):
        return []
    slowest = max(received, key=lambda pair: pair[1] or 0.0)[0].name
    return [
        Finding(
            category=Category.LATENCY_MISMATCH,
            severity=severity.GRANT,
            scenario=scenario,
            step=step,
            environments=values,
            message=f"SIEM receipt differs: {slowest} took {high:.1f}s, the fastest {low:.1f}s",
            explanation="A detection that fires within minutes in one environment fires later in the other: "
            "alert timing proven in one says little about the other.",
            field=_field(index),
        )
    ]
