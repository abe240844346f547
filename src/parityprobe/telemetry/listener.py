"""Runs as OpenTelemetry traces and metrics: a :class:`~parityprobe.listeners.RunListener`.

Traces: a span per run (``run <scenario>``, from the run's start to its end), and under it a span per step,
cleanup step and undo (``step <id>``, ``cleanup <id>``, ``undo <id>``) starting when the step started and
lasting what it measured (the wait for its expected outcome, else the call's latency). A step whose outcome
is ERROR has an ERROR status; so has a run with such a step.

Metrics (attributes in brackets; never a run id or a correlation id, which would make a series per run):

``parityprobe.step.duration``       histogram, seconds [environment, scenario, step, probe, outcome, phase]
``parityprobe.step.outcomes``       counter [the same, and error_kind]
``parityprobe.siem.receipt_delay``  histogram, seconds from the action to the poll that saw its event
                                    [environment, scenario, connector, status]
``parityprobe.siem.evidence``       counter, one per SIEM expectation [the same]
``parityprobe.findings``            counter [scenario, category, severity] (:meth:`record_findings`)
``parityprobe.schedule.events``     counter [environment, scenario, kind] (:meth:`record_schedule_event`)

Every text value, in span attributes, statuses, events and metric attributes alike, goes through the
redactor first: a reason or a detail may quote what a target echoed back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from parityprobe.compare.cleanup import is_undo
from parityprobe.daemon.records import ScheduleOutcome
from parityprobe.listeners import RunListener, RunStarted
from parityprobe.model import Comparison, Evidence, EvidenceStatus, Observation, Outcome, Report, Run
from parityprobe.redact import Redactor

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    from parityprobe.telemetry.providers import Telemetry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Probe calls take milliseconds to a minute; SIEM receipt seconds to many minutes.
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_RECEIPT_BUCKETS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


class TelemetryListener(RunListener):
    """Spans and metric points for every run it is told of, plus findings and schedule events on request.

    Safe to call from several worker threads at once. :meth:`close` ends the spans of runs that never
    finished (call it before the telemetry's shutdown).
    """

    def __init__(self, telemetry: Telemetry, redactor: Redactor) -> None:
        self._tracer = telemetry.tracer
        self._redactor = redactor
        meter = telemetry.meter
        self._duration = meter.create_histogram(
            "parityprobe.step.duration",
            unit="s",
            description="How long a step took: its wait for the expected outcome, else its call's latency",
            explicit_bucket_boundaries_advisory=_STEP_BUCKETS,
        )
        self._outcomes = meter.create_counter(
            "parityprobe.step.outcomes",
            unit="{step}",
            description="Steps, cleanup steps and undos by outcome",
        )
        self._receipt = meter.create_histogram(
            "parityprobe.siem.receipt_delay",
            unit="s",
            description="From a step's action to the SIEM poll that first found its event",
            explicit_bucket_boundaries_advisory=_RECEIPT_BUCKETS,
        )
        self._evidence = meter.create_counter(
            "parityprobe.siem.evidence",
            unit="{expectation}",
            description="SIEM expectations by what was seen",
        )
        self._findings = meter.create_counter(
            "parityprobe.findings", unit="{finding}", description="Findings by category and severity"
        )
        self._schedule = meter.create_counter(
            "parityprobe.schedule.events", unit="{event}", description="What the scheduler did, by kind"
        )
        self._runs: dict[str, Span] = {}
        self._lock = threading.Lock()

    # Runs.

    def run_started(self, run: RunStarted) -> None:
        attributes = self._clean(
            {
                "parityprobe.environment": run.env.name,
                "parityprobe.tier": run.env.tier.value,
                "parityprobe.scenario": run.spec.id,
                "parityprobe.scenario_digest": run.spec.digest,
                "parityprobe.run_id": run.run_id,
            }
        )
        span = self._tracer.start_span(
            self._text(f"run {run.spec.id}"),
            context=Context(),  # a run is a trace of its own, whichever thread it runs on
            attributes=attributes,
            start_time=_nanos(run.started_at),
        )
        with self._lock:
            self._runs[run.run_id] = span

    def step_finished(self, run: RunStarted, observation: Observation) -> None:
        self._observed(run, observation, "step")

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        self._observed(run, observation, "undo" if is_undo(observation.step) else "cleanup")

    def run_finished(self, run: Run) -> None:
        with self._lock:
            span = self._runs.pop(run.id, None)
        if span is None:  # told of the end only (attached mid-run): the run still gets its span
            self.run_started(RunStarted(run.id, run.spec, run.env, run.started_at))
            with self._lock:
                span = self._runs.pop(run.id)
        everything = (*run.observations, *run.cleanup)
        errors = sum(1 for obs in everything if obs.outcome is Outcome.ERROR)
        span.set_attribute("parityprobe.steps", len(run.observations))
        span.set_attribute("parityprobe.errors", errors)
        for item in run.evidence:
            self._evidence_seen(run, item, span)
        if errors:
            span.set_status(Status(StatusCode.ERROR, f"{errors} step(s) ended in error"))
        span.end(end_time=max(_nanos(run.finished_at), _nanos(run.started_at)))

    def close(self) -> None:
        """End the spans of runs that started and never finished, as errors."""
        with self._lock:
            open_spans = list(self._runs.values())
            self._runs.clear()
        for span in open_spans:
            span.set_status(Status(StatusCode.ERROR, "the run did not finish"))
            span.end()

    # Findings and schedule.

    def record_findings(self, found: Report | Iterable[Comparison]) -> None:
        """Count the findings of a report, or of these comparisons."""
        comparisons = found.comparisons if isinstance(found, Report) else found
        for comparison in comparisons:
            for finding in comparison.findings:
                attributes = {
                    "scenario": comparison.scenario,
                    "category": finding.category.value,
                    "severity": finding.severity.value,
                }
                self._findings.add(1, self._clean(attributes))

    def record_schedule_event(self, environment: str, scenario: str, kind: ScheduleOutcome) -> None:
        """Count one thing the daemon's schedule did (ran, skipped, missed, paused, over budget…)."""
        attributes = {"environment": environment, "scenario": scenario, "kind": kind.value}
        self._schedule.add(1, self._clean(attributes))

    # The parts.

    def _observed(self, run: RunStarted, obs: Observation, phase: str) -> None:
        with self._lock:
            parent = self._runs.get(run.run_id)
        context = trace.set_span_in_context(parent) if parent is not None else Context()
        seconds = _duration(obs)
        start = _nanos(obs.started_at)
        span = self._tracer.start_span(
            self._text(f"{phase} {obs.step}"),
            context=context,
            attributes=self._clean(_span_attributes(run, obs, phase)),
            start_time=start,
        )
        if obs.outcome is Outcome.ERROR:
            span.set_status(Status(StatusCode.ERROR, self._text(obs.describe())))
        span.end(end_time=start + round((seconds or 0.0) * 1e9))
        attributes = {
            "environment": obs.environment,
            "scenario": run.spec.id,
            "step": obs.step,
            "probe": obs.probe,
            "outcome": obs.outcome.value,
            "phase": phase,
        }
        if seconds is not None:
            self._duration.record(seconds, self._clean(attributes))
        if obs.error_kind is not None:
            attributes["error_kind"] = obs.error_kind.value
        self._outcomes.add(1, self._clean(attributes))

    def _evidence_seen(self, run: Run, item: Evidence, span: Span) -> None:
        attributes = {
            "environment": run.environment,
            "scenario": run.scenario,
            "connector": item.connector,
            "status": item.status.value,
        }
        clean = self._clean(attributes)
        self._evidence.add(1, clean)
        if item.status is EvidenceStatus.RECEIVED and item.seen_after_seconds is not None:
            self._receipt.record(item.seen_after_seconds, clean)
        event: dict[str, AttributeValue | None] = {
            "parityprobe.step": item.step,
            "parityprobe.connector": item.connector,
            "parityprobe.correlation_id": item.correlation_id,
            "parityprobe.expect": item.expect,
            "parityprobe.evidence_status": item.status.value,
            "parityprobe.events": item.events,
            "parityprobe.seen_after_seconds": item.seen_after_seconds,
            "parityprobe.reason": item.reason,
        }
        span.add_event("parityprobe.evidence", self._clean(event))

    def _text(self, value: str) -> str:
        return self._redactor.redact(value)

    def _clean(self, attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
        """The attributes that have a value, every text redacted."""
        return {
            key: self._text(value) if isinstance(value, str) else value
            for key, value in attributes.items()
            if value is not None
        }


def _span_attributes(run: RunStarted, obs: Observation, phase: str) -> dict[str, AttributeValue | None]:
    return {
        "parityprobe.environment": obs.environment,
        "parityprobe.tier": run.env.tier.value,
        "parityprobe.scenario": run.spec.id,
        "parityprobe.scenario_digest": run.spec.digest,
        "parityprobe.run_id": run.run_id,
        "parityprobe.phase": phase,
        "parityprobe.step": obs.step,
        "parityprobe.probe": obs.probe,
        "parityprobe.outcome": obs.outcome.value,
        "parityprobe.error_kind": obs.error_kind.value if obs.error_kind is not None else None,
        "parityprobe.correlation_id": obs.correlation_id,
        "parityprobe.reason": obs.reason,
        "parityprobe.detail": obs.detail,
        "parityprobe.target": obs.target,
        "parityprobe.latency_ms": obs.latency_ms,
        "parityprobe.waited_seconds": obs.waited_seconds,
        "parityprobe.attempts": obs.attempts,
        "parityprobe.declared": obs.declared.value if obs.declared is not None else None,
    }


def _duration(obs: Observation) -> float | None:
    """What the step measured, in seconds: its wait for the expected outcome, else its call's latency."""
    if obs.waited_seconds is not None:
        return obs.waited_seconds
    if obs.latency_ms is not None:
        return obs.latency_ms / 1000
    return None


def _nanos(moment: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a float timestamp would lose the microseconds)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
