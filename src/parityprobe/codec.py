"""The codec: the one way result records become JSON-ready dicts (reports, store rows) and back.

``to_record(obj)`` takes a :class:`~parityprobe.model.Observation`, :class:`~parityprobe.grant.Grant`,
:class:`~parityprobe.model.Run`, :class:`~parityprobe.model.Finding`, :class:`~parityprobe.model.Comparison`
or :class:`~parityprobe.spec.ScenarioSpec`; ``from_record(cls, record)`` reads one back and raises
:class:`RecordError` naming the field for a record of the wrong shape. Enums are written as their values,
timestamps as ISO-8601 UTC, sets as sorted lists, and only the grant fields a probe filled.

Keys added after a record's first version are optional when reading (an older record lacks them), and
every key that is present must have the right type.

A secret never enters a record: a :class:`~parityprobe.secret.Secret` output is written as ``"***"``, with
its kind (the secret's label) under ``secret_outputs``, and reads back as a withheld secret that cannot be
revealed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar, cast

from parityprobe.errors import ParityProbeError
from parityprobe.grant import FIELDS_BY_NAME, Grant, iso_utc
from parityprobe.model import (
    Category,
    Comparison,
    ErrorKind,
    Evidence,
    EvidenceStatus,
    Finding,
    JudgeOutcome,
    LatencyJudgement,
    Observation,
    Outcome,
    OutputValue,
    Run,
    Severity,
    Tier,
)
from parityprobe.redact import MASK
from parityprobe.secret import Secret
from parityprobe.spec import Bounds, EnvironmentFacts, ScenarioSpec, StepSpec

Record = dict[str, Any]
T = TypeVar("T")


class RecordError(ParityProbeError):
    """A record that does not have the shape of what it claims to be; the message names the field."""


def to_record(obj: object) -> Record:
    """``obj`` as a JSON-ready dict."""
    writer = _WRITERS.get(type(obj))
    if writer is None:
        raise TypeError(f"no record form for {type(obj).__name__}")
    return writer(obj)


def from_record(cls: type[T], record: Any) -> T:
    """The ``cls`` instance ``record`` describes; RecordError when it has the wrong shape."""
    reader = _READERS.get(cls)
    if reader is None:
        raise TypeError(f"no record form for {cls.__name__}")
    return cast(T, reader(_Reader(record, cls.__name__)))


# --- writing ---------------------------------------------------------------------------------------------


def _grant(grant: Grant) -> Record:
    out: Record = {f.name: f.record(value) for f, value in grant.filled()}
    if grant.attributes:
        out["attributes"] = dict(sorted(grant.attributes.items()))
    return out


def _observation(obs: Observation) -> Record:
    secrets = {name: v.label for name, v in obs.outputs.items() if isinstance(v, Secret)}
    record: Record = {
        "step": obs.step,
        "probe": obs.probe,
        "environment": obs.environment,
        "correlation_id": obs.correlation_id,
        "outcome": obs.outcome.value,
        "error_kind": obs.error_kind.value if obs.error_kind else None,
        "reason": obs.reason,
        "detail": obs.detail,
        "latency_ms": obs.latency_ms,
        "waited_seconds": obs.waited_seconds,
        "attempts": obs.attempts,
        "declared": obs.declared.value if obs.declared else None,
        "declared_reason": obs.declared_reason,
        "target": obs.target,
        "started_at": iso_utc(obs.started_at),
        "grant": _grant(obs.grant),
        # Explicit rather than str(Secret): the mask must not depend on Secret's dunder methods.
        "outputs": {name: MASK if name in secrets else v for name, v in obs.outputs.items()},
        "secret_outputs": secrets,
        "waits": dict(sorted(obs.waits.items())),
        "latency_samples_ms": list(obs.latency_samples_ms),
        "server": obs.server,
    }
    return record


def _step_spec(step: StepSpec) -> Record:
    bounds = step.expect_ttl
    return {
        "id": step.id,
        "probe": step.probe,
        "expect_outcome": step.expect_outcome.value if step.expect_outcome else None,
        "expect_ttl": None if bounds is None else {"min": bounds.min, "max": bounds.max},
        "policies_include": None if step.policies_include is None else sorted(step.policies_include),
        "policies_exclude": None if step.policies_exclude is None else sorted(step.policies_exclude),
        "ttl_tolerance": step.ttl_tolerance,
        "expect_within": step.expect_within,
        "expect_valid_for": step.expect_valid_for,
        "within_tolerance": step.within_tolerance,
        "latency_threshold": step.latency_threshold,
    }


def _spec(spec: ScenarioSpec) -> Record:
    return {
        "id": spec.id,
        "digest": spec.digest,
        "description": spec.description,
        "steps": [_step_spec(s) for s in spec.steps],
        "cleanup": list(spec.cleanup),
    }


def _run(run: Run) -> Record:
    return {
        "id": run.id,
        "scenario": run.scenario,
        "environment": run.environment,
        "tier": run.env.tier.value,
        "vars": dict(run.env.vars),
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_utc(run.finished_at),
        "spec": _spec(run.spec),
        "observations": [_observation(o) for o in run.observations],
        "cleanup": [_observation(o) for o in run.cleanup],
        "evidence": [_evidence(e) for e in run.evidence],
        "servers": dict(sorted(run.servers.items())),
    }


def _evidence(evidence: Evidence) -> Record:
    return {
        "step": evidence.step,
        "index": evidence.index,
        "connector": evidence.connector,
        "correlation_id": evidence.correlation_id,
        "expect": evidence.expect,
        "match": dict(sorted(evidence.match.items())),
        "status": evidence.status.value,
        "action_at": iso_utc(evidence.action_at),
        "window_start": iso_utc(evidence.window_start),
        "window_end": iso_utc(evidence.window_end),
        "events": evidence.events,
        "event_at": iso_utc(evidence.event_at) if evidence.event_at else None,
        "seen_after_seconds": evidence.seen_after_seconds,
        "reason": evidence.reason,
        "polls": evidence.polls,
    }


def _finding(finding: Finding) -> Record:
    return {
        "category": finding.category.value,
        "severity": finding.severity.value,
        "scenario": finding.scenario,
        "step": finding.step,
        "field": finding.field,
        "probe": finding.probe,
        "environments": dict(finding.environments),
        "message": finding.message,
        "explanation": finding.explanation,
    }


def _comparison(comparison: Comparison) -> Record:
    return {
        "spec": _spec(comparison.spec),
        "runs": [_run(r) for r in comparison.runs],
        "findings": [_finding(f) for f in comparison.findings],
        "latency": [to_judgement(j) for j in comparison.latency],
    }


def to_judgement(judgement: LatencyJudgement) -> Record:
    """A latency judgement's record: what a comparison's record and the JSON report hold of it."""
    return {
        "step": judgement.step,
        "reference": judgement.reference,
        "environment": judgement.environment,
        "outcome": judgement.outcome.value,
        "explanation": judgement.explanation,
        "ratio": judgement.ratio,
        "samples": {env: list(values) for env, values in judgement.samples.items()},
    }


_WRITERS: dict[type, Callable[[Any], Record]] = {
    Grant: _grant,
    Observation: _observation,
    StepSpec: _step_spec,
    ScenarioSpec: _spec,
    Run: _run,
    Finding: _finding,
    Comparison: _comparison,
}


# --- reading ---------------------------------------------------------------------------------------------


class _Reader:
    """A record being read, with the path to it for error messages."""

    def __init__(self, record: Any, path: str) -> None:
        if not isinstance(record, dict):
            raise RecordError(f"{path}: expected an object")
        self.record = record
        self.path = path

    def _fail(self, key: str, what: str) -> RecordError:
        return RecordError(f"{self.path}.{key}: expected {what}")

    def raw(self, key: str) -> Any:
        if key not in self.record:
            raise RecordError(f"{self.path}.{key}: missing")
        return self.record[key]

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def opt_str(self, key: str) -> str | None:
        return None if self.record.get(key) is None else self.text(key)

    def opt_int(self, key: str) -> int | None:
        value = self.record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._fail(key, "an integer")
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer")
        return value

    def opt_float(self, key: str) -> float | None:
        value = self.record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise self._fail(key, "a number")
        return None if value is None else float(value)

    def moment(self, key: str) -> datetime:
        try:
            moment = datetime.fromisoformat(self.text(key))
        except ValueError:
            raise self._fail(key, "an ISO-8601 timestamp") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def enum(self, key: str, cls: type[Any]) -> Any:
        try:
            return cls(self.raw(key))
        except ValueError:
            raise self._fail(key, "one of " + ", ".join(str(m.value) for m in cls)) from None

    def strings(self, key: str) -> dict[str, str]:
        value = self.record.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._fail(key, "an object of strings")
        return {str(k): v for k, v in value.items()}

    def numbers(self, key: str) -> dict[str, float]:
        value = self.record.get(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, "an object of numbers")
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise RecordError(f"{self.path}.{key}.{name}: expected a number")
        return {str(k): float(v) for k, v in value.items()}

    def latencies(self, key: str) -> tuple[float, ...]:
        """A list of milliseconds (finite, not negative); empty when the key is missing."""
        value = self.record.get(key, [])
        if not isinstance(value, list):
            raise self._fail(key, "a list of milliseconds")
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int | float) or not 0 <= item < math.inf:
                raise RecordError(f"{self.path}.{key}[{i}]: expected a latency in milliseconds")
        return tuple(float(v) for v in value)

    def names(self, key: str) -> frozenset[str] | None:
        value = self.record.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return frozenset(value)

    def child(self, key: str) -> _Reader:
        return _Reader(self.raw(key), f"{self.path}.{key}")

    def children(self, key: str) -> list[_Reader]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list")
        return [_Reader(item, f"{self.path}.{key}[{i}]") for i, item in enumerate(value)]


def _read_grant(r: _Reader) -> Grant:
    values: dict[str, Any] = {}
    for key, value in r.record.items():
        if key == "attributes":
            values[key] = MappingProxyType(r.strings(key))
            continue
        descriptor = FIELDS_BY_NAME.get(key)
        if descriptor is None:
            raise RecordError(f"{r.path}.{key}: not a grant field")
        try:
            values[key] = descriptor.read(value)
        except ValueError as exc:
            raise RecordError(f"{r.path}.{key}: {exc}") from None
    return Grant(**values)


def _read_observation(r: _Reader) -> Observation:
    labels = r.strings("secret_outputs")
    outputs: dict[str, OutputValue] = {
        name: Secret.withheld(labels[name]) if name in labels else value
        for name, value in r.strings("outputs").items()
    }
    kind = r.record.get("error_kind")
    return Observation(
        step=r.text("step"),
        probe=r.text("probe"),
        environment=r.text("environment"),
        correlation_id=r.text("correlation_id"),
        outcome=r.enum("outcome", Outcome),
        started_at=r.moment("started_at"),
        error_kind=None if kind is None else r.enum("error_kind", ErrorKind),
        reason=r.opt_str("reason"),
        detail=r.opt_str("detail"),
        latency_ms=r.opt_float("latency_ms"),
        waited_seconds=r.opt_float("waited_seconds"),
        attempts=r.opt_int("attempts"),
        declared=None if r.record.get("declared") is None else r.enum("declared", Outcome),
        declared_reason=r.opt_str("declared_reason"),
        target=r.opt_str("target"),
        grant=_read_grant(r.child("grant")),
        outputs=MappingProxyType(outputs),
        # Added with named waits: a record written before them has none.
        waits=MappingProxyType(r.numbers("waits")),
        latency_samples_ms=r.latencies("latency_samples_ms"),
        server=r.opt_str("server"),
    )


def _read_step_spec(r: _Reader) -> StepSpec:
    outcome = r.record.get("expect_outcome")
    ttl = r.record.get("expect_ttl")
    bounds = None
    if ttl is not None:
        b = r.child("expect_ttl")
        bounds = Bounds(b.opt_int("min"), b.opt_int("max"))
    return StepSpec(
        id=r.text("id"),
        probe=r.text("probe"),
        expect_outcome=None if outcome is None else r.enum("expect_outcome", Outcome),
        expect_ttl=bounds,
        policies_include=r.names("policies_include"),
        policies_exclude=r.names("policies_exclude"),
        ttl_tolerance=r.opt_int("ttl_tolerance"),
        expect_within=r.opt_int("expect_within"),
        expect_valid_for=r.opt_int("expect_valid_for"),
        within_tolerance=r.opt_int("within_tolerance"),
        latency_threshold=r.opt_float("latency_threshold"),
    )


def _read_spec(r: _Reader) -> ScenarioSpec:
    cleanup = r.raw("cleanup")
    if not isinstance(cleanup, list) or not all(isinstance(c, str) for c in cleanup):
        raise RecordError(f"{r.path}.cleanup: expected a list of strings")
    return ScenarioSpec(
        id=r.text("id"),
        digest=r.text("digest"),
        description=r.text("description"),
        steps=tuple(_read_step_spec(s) for s in r.children("steps")),
        cleanup=tuple(cleanup),
    )


def _read_run(r: _Reader) -> Run:
    env = EnvironmentFacts(r.text("environment"), r.enum("tier", Tier), MappingProxyType(r.strings("vars")))
    spec = _read_spec(r.child("spec"))
    if r.text("scenario") != spec.id:
        raise RecordError(f"{r.path}.scenario: {r.record['scenario']!r} is not its spec's id {spec.id!r}")
    return Run(
        id=r.text("id"),
        spec=spec,
        env=env,
        started_at=r.moment("started_at"),
        finished_at=r.moment("finished_at"),
        observations=tuple(_read_observation(o) for o in r.children("observations")),
        cleanup=tuple(_read_observation(o) for o in r.children("cleanup")),
        # Runs recorded before SIEM evidence existed have none.
        evidence=tuple(_read_evidence(e) for e in r.children("evidence")) if "evidence" in r.record else (),
        # Runs recorded before server versions were asked have none.
        servers=MappingProxyType(r.strings("servers")),
    )


def _read_evidence(r: _Reader) -> Evidence:
    expect = r.text("expect")
    if expect not in ("present", "absent"):
        raise RecordError(f"{r.path}.expect: expected present or absent")
    event_at = r.opt_str("event_at")
    return Evidence(
        step=r.text("step"),
        index=r.integer("index"),
        connector=r.text("connector"),
        correlation_id=r.text("correlation_id"),
        expect=expect,
        match=MappingProxyType(r.strings("match")),
        status=r.enum("status", EvidenceStatus),
        action_at=r.moment("action_at"),
        window_start=r.moment("window_start"),
        window_end=r.moment("window_end"),
        events=r.integer("events"),
        event_at=None if event_at is None else r.moment("event_at"),
        seen_after_seconds=r.opt_float("seen_after_seconds"),
        reason=r.opt_str("reason"),
        polls=r.integer("polls"),
    )


def _read_finding(r: _Reader) -> Finding:
    return Finding(
        category=r.enum("category", Category),
        severity=r.enum("severity", Severity),
        scenario=r.text("scenario"),
        step=r.opt_str("step"),
        environments=r.strings("environments"),
        message=r.text("message"),
        explanation=r.text("explanation"),
        field=r.opt_str("field"),
        probe=None if r.raw("probe") is None else r.text("probe"),
    )


def _read_comparison(r: _Reader) -> Comparison:
    return Comparison(
        spec=_read_spec(r.child("spec")),
        runs=tuple(_read_run(x) for x in r.children("runs")),
        findings=tuple(_read_finding(x) for x in r.children("findings")),
        # Added with the latency judge: a record written before it has none.
        latency=tuple(_read_judgement(x) for x in r.children("latency")) if "latency" in r.record else (),
    )


def _read_judgement(r: _Reader) -> LatencyJudgement:
    samples = r.child("samples")
    return LatencyJudgement(
        step=r.text("step"),
        reference=r.text("reference"),
        environment=r.text("environment"),
        outcome=r.enum("outcome", JudgeOutcome),
        explanation=r.text("explanation"),
        ratio=r.opt_float("ratio"),
        samples=MappingProxyType({str(env): samples.latencies(env) for env in samples.record}),
    )


_READERS: Mapping[type, Callable[[_Reader], Any]] = {
    Grant: _read_grant,
    Observation: _read_observation,
    StepSpec: _read_step_spec,
    ScenarioSpec: _read_spec,
    Run: _read_run,
    Finding: _read_finding,
    Comparison: _read_comparison,
}
