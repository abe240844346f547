"""The JSON report: a versioned, machine-readable document for CI gates and other tools.

This format is a public contract. Within ``parityprobe.report/v2`` keys are only ever added, never
renamed, removed or retyped; anything else gets a new schema name. (v2 replaced v1 when grants became
typed: ``version`` is a number, a secret version's labels are ``stages``; runs carry their recorded facts.)
Findings and runs are the codec's records (:mod:`parityprobe.codec`), so a report can be read back and
compared again. :data:`REPORT_SCHEMA` describes it as
a JSON Schema (draft 2020-12 vocabulary, a subset: ``type``, ``required``, ``properties``, ``items``,
``enum``, ``additionalProperties``).

Document shape (keys appear in this order; ``indent=2``)::

    {
      "schema": "parityprobe.report/v2",
      "parityprobe_version": "0.1.0",
      "generated_at": "2025-01-01T12:00:00+00:00",       # ISO-8601, UTC
      "exit_code": 1,                                      # 0 ok, 1 findings, 3 only inconclusive
      "summary": {
        "scenarios": 2, "runs": 4, "findings": 5,
        "by_severity": {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 1},   # every severity
        "by_category": {"expectation_violation": 1, ..., "inconclusive": 1}           # every category
      },
      "findings": [                                        # scenario order, then as found
        {"category": "outcome_mismatch", "severity": "high", "scenario": "forbidden-calls",
         "step": "read-other-team" | null, "field": "outcome" | null,
         "environments": {"staging": "allowed", "production": "denied (permission denied)"},
         "message": "...", "explanation": "..."}
      ],
      "runs": [
        {"id": "...", "scenario": "...", "environment": "staging", "tier": "staging",
         "vars": {"team": "payments"}, "started_at": "...", "finished_at": "...",
         "spec": {"id": "...", "digest": "<sha256>", "description": "...", "cleanup": [...],
                  "steps": [{"id", "probe", "expect_outcome", "expect_ttl", "policies_include",
                             "policies_exclude", "ttl_tolerance"}]},
         "observations": [
           {"step": "login", "probe": "vault.approle_login", "environment": "staging",
            "correlation_id": "pp-...", "outcome": "allowed",
            "error_kind": "timeout" | null, "reason": str | null, "detail": str | null,
            "latency_ms": 12.5 | null, "started_at": "...",
            "grant": {"ttl_seconds": 3600, "policies": [...], "identity": "...", "renewable": true,
                      "version": 3, "stages": [...], ...},  # only the fields the probe filled
            "outputs": {"token": "***", "arn": "..."},      # secret outputs are always "***"
            "secret_outputs": {"token": "vault token"}}      # which outputs are secrets, and their kind
         ],
         "cleanup": [ ...observations, same shape... ]}
      ]
    }

Enums are written as their ``.value``. Timestamps are converted to UTC; a naive timestamp (which the
model should never hold) is taken to be UTC rather than rejected, so a report is always produced.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Union

from parityprobe import __version__
from parityprobe.codec import to_record
from parityprobe.grant import GRANT_FIELDS, Kind, iso_utc
from parityprobe.model import Category, ErrorKind, ExitCode, Outcome, Report, Severity, Tier
from parityprobe.redact import MASK, Redactor
from parityprobe.secret import Secret

SCHEMA_ID = "parityprobe.report/v2"

# A JSON value, as json.loads would return it.
Json = Union[dict[str, "Json"], list["Json"], str, int, float, bool, None]  # noqa: UP007


def _nullable(type_name: str) -> list[str]:
    return [type_name, "null"]


_STR: dict[str, object] = {"type": "string"}
_TIMESTAMP: dict[str, object] = {"type": "string", "format": "date-time"}
_COUNTS: dict[str, object] = {"type": "object", "additionalProperties": {"type": "integer"}}


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
        "started_at": _TIMESTAMP,
        "grant": _GRANT_SCHEMA,
        "outputs": {"type": "object", "additionalProperties": _STR},
        "secret_outputs": {"type": "object", "additionalProperties": _STR},
    }
)

_FINDING_SCHEMA = _object(
    {
        "category": {"type": "string", "enum": [c.value for c in Category]},
        "severity": {"type": "string", "enum": [s.value for s in Severity]},
        "scenario": _STR,
        "step": {"type": _nullable("string")},
        "field": {"type": _nullable("string")},
        "environments": {"type": "object", "additionalProperties": _STR},
        "message": _STR,
        "explanation": _STR,
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
                }
            ),
        },
        "cleanup": {"type": "array", "items": _STR},
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
    }
)

#: JSON Schema of the document :func:`render_json` writes. Objects are closed within v1 so a test
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
                    "by_severity": _COUNTS,
                    "by_category": _COUNTS,
                }
            ),
            "findings": {"type": "array", "items": _FINDING_SCHEMA},
            "runs": {"type": "array", "items": _RUN_SCHEMA},
        }
    ),
}


def render_json(report: Report, redactor: Redactor) -> str:
    """The report as a ``parityprobe.report/v2`` JSON document (see the module docstring)."""
    # ensure_ascii=False keeps non-ASCII text readable; redaction already happened value by value.
    # No final newline: the caller's print adds one.
    return json.dumps(report_document(report, redactor), indent=2, ensure_ascii=False)


def report_document(report: Report, redactor: Redactor) -> dict[str, Json]:
    """The report as a JSON-ready dict, every string (keys included) passed through ``redactor``."""
    runs = [run for comparison in report.comparisons for run in comparison.runs]
    findings = report.findings
    severities = Counter(f.severity for f in findings)
    categories = Counter(f.category for f in findings)
    document: dict[str, object] = {
        "schema": SCHEMA_ID,
        "parityprobe_version": __version__,
        "generated_at": iso_utc(report.generated_at),
        "exit_code": int(report.exit_code),
        "summary": {
            "scenarios": len(report.comparisons),
            "runs": len(runs),
            "findings": len(findings),
            # Every member, zeros included: a CI gate can read .by_severity.critical without a default.
            "by_severity": {s.value: severities[s] for s in Severity},
            "by_category": {c.value: categories[c] for c in Category},
        },
        "findings": [to_record(f) for f in findings],
        "runs": [to_record(run) for run in runs],
    }
    # The last step: one walk over the finished document, so no string can skip redaction. It runs on
    # values, not on the serialised text, because JSON escaping (quotes, backslashes) could hide a
    # secret from a text search, and a match across syntax would corrupt the document.
    scrubbed = _scrub(document, redactor)
    assert isinstance(scrubbed, dict)
    return scrubbed


def _scrub(value: object, redactor: Redactor) -> Json:
    """``value`` as JSON with every string redacted; unknown types fail loudly instead of ``str()``."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, str):
        return redactor.redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {redactor.redact(str(k)): _scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, redactor) for item in value]
    raise TypeError(f"cannot write {type(value).__name__} to a JSON report")
