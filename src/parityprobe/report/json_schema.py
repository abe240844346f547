"""The JSON Schema of the ``parityprobe.report/v5`` document (see :mod:`parityprobe.report.json_report`).

Draft 2020-12 vocabulary, a subset: ``type``, ``required``, ``properties``, ``items``, ``enum``,
``additionalProperties``. Grant properties and enums are derived from the model's tables, so a field or
member added there is in the schema at once.
"""

from __future__ import annotations

from parityprobe.grant import GRANT_FIELDS, Kind
from parityprobe.model import (
    Category,
    ErrorKind,
    EvidenceStatus,
    ExitCode,
    JudgeOutcome,
    Outcome,
    Severity,
    Tier,
)

SCHEMA_ID = "parityprobe.report/v5"


def _nullable(type_name: str) -> list[str]:
    return [type_name, "null"]


_STR: dict[str, object] = {"type": "string"}
_TIMESTAMP: dict[str, object] = {"type": "string", "format": "date-time"}
_COUNTS: dict[str, object] = {"type": "object", "additionalProperties": {"type": "integer"}}
_LATENCIES: dict[str, object] = {"type": "array", "items": {"type": "number"}}


def _object(properties: dict[str, object], *, closed: bool = True) -> dict[str, object]:
    """An object schema whose every listed property is required."""
    schema: dict[str, object] = {"type": "object", "required": list(properties), "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    return schema


_GRANT_KINDS: dict[Kind, dict[str, object]] = {
    Kind.DURATION: {"type": "integer"},
    Kind.NUMBER: {"type": "integer"},
    Kind.TEXT: _STR,
    Kind.FLAG: {"type": "boolean"},
    Kind.NAMES: {"type": "array", "items": _STR},
    Kind.MOMENT: _TIMESTAMP,
}
_GRANT_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        **{f.name: _GRANT_KINDS[f.kind] for f in GRANT_FIELDS},
        "attributes": {"type": "object", "additionalProperties": _STR},
    },
    "additionalProperties": False,
}

_OBSERVATION_SCHEMA = _object(
    {
        "step": _STR,
        "probe": _STR,
        "environment": _STR,
        "correlation_id": _STR,
        "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
        "error_kind": {"type": _nullable("string"), "enum": [*(k.value for k in ErrorKind), None]},
        "reason": {"type": _nullable("string")},
        "detail": {"type": _nullable("string")},
        "latency_ms": {"type": _nullable("number")},
        "waited_seconds": {"type": _nullable("number")},
        "attempts": {"type": _nullable("integer")},
        "declared": {"type": _nullable("string"), "enum": [*(o.value for o in Outcome), None]},
        "declared_reason": {"type": _nullable("string")},
        "target": {"type": _nullable("string")},
        "started_at": _TIMESTAMP,
        "grant": _GRANT_SCHEMA,
        "outputs": {"type": "object", "additionalProperties": _STR},
        "secret_outputs": {"type": "object", "additionalProperties": _STR},
        "waits": {"type": "object", "additionalProperties": {"type": "number"}},
        "latency_samples_ms": _LATENCIES,
        "server": {"type": _nullable("string")},
    }
)

# A finding's framework mapping and remediation hint (parityprobe.report.guidance), on findings and causes.
_GUIDANCE: dict[str, object] = {
    "frameworks": {
        "type": "array",
        "items": _object({"framework": _STR, "id": _STR, "title": _STR}),
    },
    "remediation": _STR,
}

_FINDING_SCHEMA = _object(
    {
        "category": {"type": "string", "enum": [c.value for c in Category]},
        "severity": {"type": "string", "enum": [s.value for s in Severity]},
        "scenario": _STR,
        "step": {"type": _nullable("string")},
        "field": {"type": _nullable("string")},
        "probe": {"type": _nullable("string")},
        "environments": {"type": "object", "additionalProperties": _STR},
        "message": _STR,
        "explanation": _STR,
        **_GUIDANCE,
    }
)

_CAUSE_SCHEMA = _object(
    {
        "category": {"type": "string", "enum": [c.value for c in Category]},
        "severity": {"type": "string", "enum": [s.value for s in Severity]},
        "field": {"type": _nullable("string")},
        "environments": {"type": "object", "additionalProperties": _STR},
        "message": _STR,
        "explanation": _STR,
        **_GUIDANCE,
        "steps": {"type": "integer"},
        "occurrences": {"type": "array", "items": _FINDING_SCHEMA},
    }
)

_ACCEPTANCE: dict[str, object] = {
    "owner": _STR,
    "reason": _STR,
    "expires": {"type": "string", "format": "date"},
}
_ACCEPTED_SCHEMA = _object({"finding": _FINDING_SCHEMA, **_ACCEPTANCE, "declared_at": _STR})
_DIVERGENCES_SCHEMA = _object(
    {
        "accepted": {"type": "array", "items": _ACCEPTED_SCHEMA},
        "expired": {"type": "array", "items": _ACCEPTED_SCHEMA},
        "unmatched": {
            "type": "array",
            "items": _object(
                {
                    "declared_at": _STR,
                    "scenario": _STR,
                    "step": {"type": _nullable("string")},
                    "category": {"type": "string", "enum": [c.value for c in Category]},
                    "field": {"type": _nullable("string")},
                    "environments": {"type": "array", "items": _STR},
                    **_ACCEPTANCE,
                }
            ),
        },
    }
)

_NULLABLE_NAMES: dict[str, object] = {"type": _nullable("array"), "items": _STR}
_SPEC_SCHEMA = _object(
    {
        "id": _STR,
        "digest": _STR,
        "description": _STR,
        "steps": {
            "type": "array",
            "items": _object(
                {
                    "id": _STR,
                    "probe": _STR,
                    "expect_outcome": {"type": _nullable("string")},
                    "expect_ttl": {
                        "type": _nullable("object"),
                        "properties": {
                            "min": {"type": _nullable("integer")},
                            "max": {"type": _nullable("integer")},
                        },
                    },
                    "policies_include": _NULLABLE_NAMES,
                    "policies_exclude": _NULLABLE_NAMES,
                    "ttl_tolerance": {"type": _nullable("integer")},
                    "expect_within": {"type": _nullable("integer")},
                    "expect_valid_for": {"type": _nullable("integer")},
                    "within_tolerance": {"type": _nullable("integer")},
                    "latency_threshold": {"type": _nullable("number")},
                }
            ),
        },
        "cleanup": {"type": "array", "items": _STR},
    }
)

_EVIDENCE_SCHEMA = _object(
    {
        "step": _STR,
        "index": {"type": "integer"},
        "connector": _STR,
        "correlation_id": _STR,
        "expect": {"type": "string", "enum": ["present", "absent"]},
        "match": {"type": "object", "additionalProperties": _STR},
        "status": {"type": "string", "enum": [s.value for s in EvidenceStatus]},
        "action_at": _TIMESTAMP,
        "window_start": _TIMESTAMP,
        "window_end": _TIMESTAMP,
        "events": {"type": "integer"},
        "event_at": {"type": _nullable("string")},
        "seen_after_seconds": {"type": _nullable("number")},
        "reason": {"type": _nullable("string")},
        "polls": {"type": "integer"},
    }
)

_RUN_SCHEMA = _object(
    {
        "id": _STR,
        "scenario": _STR,
        "environment": _STR,
        "tier": {"type": "string", "enum": [t.value for t in Tier]},
        "vars": {"type": "object", "additionalProperties": _STR},
        "spec": _SPEC_SCHEMA,
        "started_at": _TIMESTAMP,
        "finished_at": _TIMESTAMP,
        "observations": {"type": "array", "items": _OBSERVATION_SCHEMA},
        "cleanup": {"type": "array", "items": _OBSERVATION_SCHEMA},
        "evidence": {"type": "array", "items": _EVIDENCE_SCHEMA},
        "servers": {"type": "object", "additionalProperties": _STR},
    }
)

_JUDGEMENT_SCHEMA = _object(
    {
        "scenario": _STR,
        "step": _STR,
        "reference": _STR,
        "environment": _STR,
        "outcome": {"type": "string", "enum": [o.value for o in JudgeOutcome]},
        "explanation": _STR,
        "ratio": {"type": _nullable("number")},
        "samples": {"type": "object", "additionalProperties": _LATENCIES},
    }
)

_TREND_SCHEMA = _object(
    {"at": _TIMESTAMP, "runs": {"type": "integer"}, "causes": {"type": "integer"}, "by_severity": _COUNTS}
)

#: JSON Schema of the document the ``json`` renderer writes. Objects are closed within v5 so a test
#: notices an undocumented key; consumers should still ignore keys they do not know.
REPORT_SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "parityprobe report",
    **_object(
        {
            "schema": {"type": "string", "enum": [SCHEMA_ID]},
            "parityprobe_version": _STR,
            "generated_at": _TIMESTAMP,
            "exit_code": {"type": "integer", "enum": [int(code) for code in ExitCode]},
            "summary": _object(
                {
                    "scenarios": {"type": "integer"},
                    "runs": {"type": "integer"},
                    "findings": {"type": "integer"},
                    "causes": {"type": "integer"},
                    "by_severity": _COUNTS,
                    "by_category": _COUNTS,
                    "environments": {"type": "array", "items": _STR},
                    "compared": {"type": "boolean"},
                    "unchecked_steps": {"type": "integer"},
                }
            ),
            "findings": {"type": "array", "items": _FINDING_SCHEMA},
            "causes": {"type": "array", "items": _CAUSE_SCHEMA},
            "divergences": _DIVERGENCES_SCHEMA,
            "latency": {"type": "array", "items": _JUDGEMENT_SCHEMA},
            "trend": {"type": "array", "items": _TREND_SCHEMA},
            "runs": {"type": "array", "items": _RUN_SCHEMA},
        }
    ),
}
