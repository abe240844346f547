"""Telemetry of runs: the span tree and its attributes from a real run, the metrics, and no secret in any
span, event, status or metric attribute."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from parityprobe.daemon.records import ScheduleOutcome
from parityprobe.listeners import RunStarted
from parityprobe.model import (
    Category,
    Comparison,
    ErrorKind,
    Evidence,
    EvidenceStatus,
    Finding,
    Observation,
    Outcome,
    Report,
    Run,
    Severity,
    Tier,
)
from parityprobe.pipeline import compare_all
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from parityprobe.secret import Secret
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec
from parityprobe.telemetry.listener import TelemetryListener
from parityprobe.telemetry.providers import Telemetry, make_telemetry
from tests.plugins import Inventory, build, registry

ENVS = """\
environments:
  staging:
    vars: {team: payments}
  production:
    tier: production
    vars: {team: payments}
"""
SCENARIO = (
    "id: traced\nsteps:\n"
    "  - {id: login, probe: test.echo, with: {value: alpha, sleep: 0.01}}\n"
    "  - {id: forbidden, probe: test.echo, with: {refuse: true}}\n"
    "  - {id: broken, probe: test.echo, with: {crash: true, token: '${{ steps.login.outputs.token }}'}}\n"
    "cleanup:\n  - {id: tidy, probe: test.echo}\n"
)
SECRET = Secret("hunter2-s3cr3t-token-value", "token")


class Otel:
    """A telemetry with in-memory exporters, and what they hold."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.telemetry: Telemetry = make_telemetry(span_exporters=[self.spans], metric_readers=[self.reader])

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def points(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Metric name -> (attributes, value) per point; a histogram's value is (count, sum)."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = (
                            (point.count, point.sum) if isinstance(point, HistogramDataPoint) else point.value
                        )
                        found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.telemetry.shutdown()


@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    Inventory.reset()
    yield
    Inventory.reset()


def nanos(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def test_a_real_run_gives_a_span_per_run_with_a_child_per_step_and_cleanup(
    otel: Otel, tmp_path: Path
) -> None:
    redactor = Redactor()
    listener = TelemetryListener(otel.telemetry, redactor)
    plan = build(tmp_path, ENVS, SCENARIO)
    (result,) = Runner(registry(), redactor, step_timeout=5, concurrency=4, listeners=[listener]).run(plan)
    spans = otel.finished()
    assert len(result.runs) == 2
    assert len(spans) == sum(1 + len(r.observations) + len(r.cleanup) for r in result.runs)
    for run in result.runs:
        (root,) = [
            s for s in spans if s.name == "run traced" and s.attributes["parityprobe.run_id"] == run.id
        ]
        assert root.parent is None
        assert dict(root.attributes or {}) == {
            "parityprobe.environment": run.environment,
            "parityprobe.tier": "production" if run.environment == "production" else "staging",
            "parityprobe.scenario": "traced",
            "parityprobe.scenario_digest": result.spec.digest,
            "parityprobe.run_id": run.id,
            "parityprobe.steps": 3,
            "parityprobe.errors": 1,
        }
        assert (root.start_time, root.end_time) == (nanos(run.started_at), nanos(run.finished_at))
        assert root.status.status_code is StatusCode.ERROR
        children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
        assert [s.name for s in children] == ["step login", "step forbidden", "step broken", "cleanup tidy"]
        assert all(s.context.trace_id == root.context.trace_id for s in children)
        for span, obs in zip(children, (*run.observations, *run.cleanup), strict=True):
            attributes = span.attributes or {}
            assert attributes["parityprobe.step"] == obs.step
            assert attributes["parityprobe.probe"] == "test.echo"
            assert attributes["parityprobe.outcome"] == obs.outcome.value
            assert attributes["parityprobe.correlation_id"] == obs.correlation_id == f"pp-{run.id}-{obs.step}"
            assert attributes["parityprobe.run_id"] == run.id
            assert attributes["parityprobe.environment"] == run.environment
            assert span.start_time == nanos(obs.started_at)
            # The span lasts what the step measured: its call's latency (none for a probe that crashed).
            assert span.end_time - span.start_time == round((obs.latency_ms or 0) * 1e6)
        login, forbidden, broken, tidy = children
        assert (forbidden.attributes or {})["parityprobe.reason"] == "refused"
        assert broken.status.status_code is StatusCode.ERROR
        assert (broken.attributes or {})["parityprobe.error_kind"] == run.observations[2].error_kind.value  # type: ignore[union-attr]
        assert login.status.status_code is StatusCode.UNSET
        assert (tidy.attributes or {})["parityprobe.phase"] == "cleanup"

    outcomes = {
        (a["environment"], a["step"], a["outcome"]): v for a, v in otel.points()["parityprobe.step.outcomes"]
    }
    assert outcomes == {
        (env, step, outcome): 1
        for env in ("staging", "production")
        for step, outcome in (
            ("login", "allowed"),
            ("forbidden", "denied"),
            ("broken", "error"),
            ("tidy", "allowed"),
        )
    }
    durations = otel.points()["parityprobe.step.duration"]
    # A step that measured nothing (its probe crashed before timing a call) has no duration point.
    assert {a["step"] for a, _ in durations} == {"login", "forbidden", "tidy"}
    login_seconds = sum(v[1] for a, v in durations if a["step"] == "login")
    assert login_seconds == pytest.approx(
        sum(r.observations[0].latency_ms for r in result.runs) / 1000  # type: ignore[misc]
    )
    # No metric carries a per-run id: their series would grow with every run.
    ids = {r.id for r in result.runs} | {o.correlation_id for r in result.runs for o in r.observations}
    for series in otel.points().values():
        for attributes, _ in series:
            assert not set(attributes) & {"run_id", "correlation_id", "parityprobe.run_id"}
            assert not any(run_id in str(value) for value in attributes.values() for run_id in ids)


def test_findings_and_schedule_events_are_counted(otel: Otel, tmp_path: Path) -> None:
    redactor = Redactor()
    listener = TelemetryListener(otel.telemetry, redactor)
    plan = build(tmp_path, ENVS, SCENARIO)
    results = Runner(registry(), redactor, step_timeout=5, listeners=[listener]).run(plan)
    comparisons = compare_all(results)
    listener.record_findings(Report(datetime.now(UTC), comparisons))
    listener.record_findings(comparisons)
    expected: dict[tuple[str, str], int] = {}
    for finding in (f for c in comparisons for f in c.findings):
        key = (finding.category.value, finding.severity.value)
        expected[key] = expected.get(key, 0) + 2
    assert expected  # the scenario's error step is inconclusive at least
    counted = {(a["category"], a["severity"]): v for a, v in otel.points()["parityprobe.findings"]}
    assert counted == expected

    listener.record_schedule_event("staging", "traced", ScheduleOutcome.RAN)
    listener.record_schedule_event("staging", "traced", ScheduleOutcome.RAN)
    listener.record_schedule_event("staging", "traced", ScheduleOutcome.SKIPPED_OVERLAP)
    events = {a["kind"]: v for a, v in otel.points()["parityprobe.schedule.events"]}
    assert events == {"ran": 2, "skipped_overlap": 1}


def moment(seconds: float) -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=seconds)


def leaky_run() -> tuple[RunStarted, list[Observation], Run]:
    """A run whose every free text quotes the secret, as a target echoing a token back would."""
    spec = ScenarioSpec(
        "leaky", "d" * 64, steps=(StepSpec("login", "vault.approle_login"),), cleanup=("tidy",)
    )
    env = EnvironmentFacts("staging", Tier.STAGING)
    started = RunStarted("r1", spec, env, moment(0))
    text = SECRET.reveal()
    failed = Observation(
        step="login",
        probe="vault.approle_login",
        environment="staging",
        correlation_id="pp-r1-login",
        outcome=Outcome.ERROR,
        started_at=moment(1),
        error_kind=ErrorKind.TARGET_ERROR,
        reason=f"server said: bad token {text}",
        detail=f"HTTPError: 500 for token={text}",
        latency_ms=250.0,
        target=f"auth/token/{text}",
    )
    tidy = Observation(
        step="tidy",
        probe="vault.kv_read",
        environment="staging",
        correlation_id="pp-r1-tidy",
        outcome=Outcome.DENIED,
        started_at=moment(2),
        reason=f"permission denied ({text})",
        waited_seconds=3.5,
        latency_ms=10.0,
    )
    evidence = Evidence(
        step="login",
        index=0,
        connector="audit",
        correlation_id="pp-r1-login",
        expect="present",
        match=MappingProxyType({}),
        status=EvidenceStatus.NO_VERDICT,
        action_at=moment(1),
        window_start=moment(0),
        window_end=moment(30),
        reason=f"the SIEM answered 401 to {text}",
    )
    received = Evidence(
        step="login",
        index=1,
        connector="audit",
        correlation_id="pp-r1-login",
        expect="present",
        match=MappingProxyType({}),
        status=EvidenceStatus.RECEIVED,
        action_at=moment(1),
        window_start=moment(0),
        window_end=moment(30),
        events=1,
        seen_after_seconds=4.25,
    )
    run = Run("r1", spec, env, moment(0), moment(40), (failed,), (tidy,), (evidence, received))
    return started, [failed, tidy], run


def every_text(otel: Otel) -> list[str]:
    """Every text the exporters hold: span names, attributes, statuses, events, metric attributes."""
    texts: list[str] = []
    for span in otel.finished():
        texts.append(span.name)
        texts.extend(str(v) for v in (span.attributes or {}).values())
        texts.append(span.status.description or "")
        for event in span.events:
            texts.append(event.name)
            texts.extend(str(v) for v in (event.attributes or {}).values())
    for series in otel.points().values():
        for attributes, _ in series:
            texts.extend(f"{k}={v}" for k, v in attributes.items())
    return texts


def test_no_secret_reaches_a_span_an_event_a_status_or_a_metric(otel: Otel) -> None:
    listener = TelemetryListener(otel.telemetry, Redactor([SECRET]))
    started, (failed, tidy), run = leaky_run()
    listener.run_started(started)
    listener.step_finished(started, failed)
    listener.cleanup_finished(started, tidy)
    listener.run_finished(run)
    finding = Finding(Category.INCONCLUSIVE, Severity.HIGH, "leaky", "login", {}, "x")
    leaky = Comparison(ScenarioSpec(f"scenario-{SECRET.reveal()}", "d" * 64), (run,), (finding,))
    listener.record_findings([leaky])
    listener.record_schedule_event("staging", f"s-{SECRET.reveal()}", ScheduleOutcome.FAILED)
    texts = every_text(otel)
    assert not [t for t in texts if SECRET.reveal() in t]
    # What carried the secret did arrive, masked: the check above looked at the right places.
    # (login's reason, detail, target and status; tidy's reason; the evidence's reason; the finding's and
    # the schedule event's scenario)
    assert sum("***" in t for t in texts) >= 8
    login = next(s for s in otel.finished() if s.name == "step login")
    assert (login.attributes or {})["parityprobe.reason"] == "server said: bad token ***"
    assert login.status.description == "error: target_error (server said: bad token ***)"


def test_without_the_redactor_the_same_run_would_leak(otel: Otel) -> None:
    """The control for the test above: the listener is what masks, not the run's data."""
    listener = TelemetryListener(otel.telemetry, Redactor())
    started, (failed, tidy), run = leaky_run()
    listener.run_started(started)
    listener.step_finished(started, failed)
    listener.cleanup_finished(started, tidy)
    listener.run_finished(run)
    assert [t for t in every_text(otel) if SECRET.reveal() in t]


def test_hand_made_run_times_evidence_and_receipt_delay(otel: Otel) -> None:
    listener = TelemetryListener(otel.telemetry, Redactor())
    started, (failed, tidy), run = leaky_run()
    listener.run_started(started)
    listener.step_finished(started, failed)
    listener.cleanup_finished(started, tidy)
    listener.run_finished(run)
    spans = {s.name: s for s in otel.finished()}
    login, cleanup, root = spans["step login"], spans["cleanup tidy"], spans["run leaky"]
    assert (login.start_time, login.end_time) == (nanos(moment(1)), nanos(moment(1.25)))
    # A step that waited for its outcome lasts its wait, not its last call.
    assert (cleanup.start_time, cleanup.end_time) == (nanos(moment(2)), nanos(moment(5.5)))
    assert (root.start_time, root.end_time) == (nanos(moment(0)), nanos(moment(40)))
    statuses = [(e.attributes or {})["parityprobe.evidence_status"] for e in root.events]
    assert statuses == ["no_verdict", "received"]
    points = otel.points()
    evidence = {a["status"]: v for a, v in points["parityprobe.siem.evidence"]}
    assert evidence == {"no_verdict": 1, "received": 1}
    ((attributes, (count, total)),) = points["parityprobe.siem.receipt_delay"]
    assert (attributes, count, total) == (
        {"environment": "staging", "scenario": "leaky", "connector": "audit", "status": "received"},
        1,
        4.25,
    )
    durations = {a["step"]: v for a, v in points["parityprobe.step.duration"]}
    assert durations == {"login": (1, 0.25), "tidy": (1, 3.5)}


def test_concurrent_runs_keep_their_own_trees(otel: Otel) -> None:
    listener = TelemetryListener(otel.telemetry, Redactor())
    spec = ScenarioSpec("many", "e" * 64)
    env = EnvironmentFacts("staging", Tier.STAGING)
    barrier = threading.Barrier(8)

    def one(index: int) -> None:
        started = RunStarted(f"run{index}", spec, env, moment(0))
        barrier.wait()
        listener.run_started(started)
        observations = []
        for step in range(20):
            obs = Observation(
                f"s{step}", "test.echo", "staging", f"pp-run{index}-s{step}", Outcome.ALLOWED, moment(step)
            )
            observations.append(obs)
            listener.step_finished(started, obs)
        listener.run_finished(Run(started.run_id, spec, env, moment(0), moment(30), tuple(observations)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = otel.finished()
    roots = {s.context.span_id: (s.attributes or {})["parityprobe.run_id"] for s in spans if s.parent is None}
    assert sorted(roots.values()) == sorted(f"run{i}" for i in range(8))
    for span in spans:
        if span.parent is not None:
            assert roots[span.parent.span_id] == (span.attributes or {})["parityprobe.run_id"]
    counts = {a["step"]: v for a, v in otel.points()["parityprobe.step.outcomes"]}
    assert counts == {f"s{step}": 8 for step in range(20)}


def test_close_ends_the_spans_of_runs_that_never_finished(otel: Otel) -> None:
    listener = TelemetryListener(otel.telemetry, Redactor())
    started, (failed, _), _ = leaky_run()
    listener.run_started(started)
    listener.step_finished(started, failed)
    assert [s.name for s in otel.finished()] == ["step login"]
    listener.close()
    root = next(s for s in otel.finished() if s.name == "run leaky")
    assert root.status.status_code is StatusCode.ERROR and root.status.description == "the run did not finish"
