"""The JSON report: a versioned, machine-readable document for CI gates and other tools.

This format is a public contract. Within ``parityprobe.report/v5`` keys are only ever added, never renamed,
removed or retyped; anything else gets a new schema name. (v5 replaced v4 when findings carried their
framework mapping: every finding — in ``findings``, in a cause's ``occurrences``, in ``divergences`` — and
every cause has ``frameworks``, the OWASP Non-Human Identities Top 10 risks and NIST CSF 2.0 subcategories it
bears on, and ``remediation``, a hint of what to change (:mod:`parityprobe.report.guidance`); and when the
latency judge was wired in: ``latency`` holds its verdict on every step it weighed, a repeated step's
observation its ``latency_samples_ms``, a spec step its ``latency_threshold``; ``trend`` the store's history
for ``parityprobe report``; and when runs recorded the version of each plane's server they reached:
``servers`` on every run. v4 replaced v3
when findings could be accepted as known divergences: ``divergences`` says which findings are accepted, which
acceptances expired and which declarations matched nothing; ``findings`` still holds every finding, accepted
ones included, while ``causes``, ``summary`` and ``exit_code`` leave accepted findings out. v3 replaced v2
when findings were grouped by cause: ``causes`` lists each cause with every finding of it as an occurrence,
``summary.causes`` counts them, and ``summary.by_severity`` / ``by_category`` count causes, not findings;
``findings`` is unchanged. v2 replaced v1 when grants became typed: ``version`` is a number, a secret
version's labels are ``stages``; runs carry their recorded facts, a step's wait and cross-check, an
observation's target and named waits, the ``declared_mismatch`` category.)
Findings and runs are the codec's records (:mod:`parityprobe.codec`; a finding's ``frameworks`` and
``remediation`` are added to its record, and reading it back ignores them), so a report can be read back and
compared again; the summary and the exit code are the report view's (:mod:`parityprobe.report.view`), the
same the terminal shows. :data:`~parityprobe.report.json_schema.REPORT_SCHEMA` describes the document as a
JSON Schema.

Document shape (keys appear in this order; ``indent=2``)::

    {
      "schema": "parityprobe.report/v5",
      "parityprobe_version": "0.1.0",
      "generated_at": "2025-01-01T12:00:00+00:00",       # ISO-8601, UTC
      "exit_code": 1,                       # 0 ok, 1 findings, 3 only inconclusive or nothing checked
      "summary": {
        "scenarios": 2, "runs": 4, "findings": 5, "causes": 5,      # findings grouped into causes
        "by_severity": {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 1},  # causes, every severity
        "by_category": {"expectation_violation": 1, "outcome_mismatch": 1, "grant_mismatch": 1,
                        "latency_mismatch": 0, "evidence_gap": 0, "config_drift": 0,
                        "cleanup_failed": 1, "declared_mismatch": 0, "inconclusive": 1},  # every category
        "environments": ["staging", "production"],   # every environment that ran, first appearance first
        "compared": true,                  # every scenario ran in two or more environments
        "unchecked_steps": 0               # steps nothing judged: one environment and no expectation
      },
      "findings": [                                        # scenario order, then as found
        {"category": "outcome_mismatch", "severity": "high", "scenario": "forbidden-calls",
         "step": "read-other-team" | null, "field": "outcome" | null, "probe": "vault.kv_read" | null,
         "environments": {"staging": "allowed", "production": "denied (permission denied)"},
         "message": "...", "explanation": "...",
         "frameworks": [{"framework": "OWASP NHI Top 10", "id": "NHI5:2025", "title": "Overprivileged NHI"},
                        {"framework": "NIST CSF 2.0", "id": "PR.AA-05", "title": "Access permissions, ..."}],
         "remediation": "Find the rule that decides this action ..."}   # one or two sentences
      ],
      "causes": [                      # most severe first, then in order of first appearance
        {"category": "grant_mismatch", "severity": "medium",      # the representative finding's category;
         "field": "ttl" | null,                                   # the most severe occurrence's severity
         "environments": {"staging": "24h", "production": "1h"},  # the representative finding's values
         "message": "...", "explanation": "...",                   # the representative finding's words
         "frameworks": [...], "remediation": "...",                 # the representative finding's mapping
         "steps": 3,                                  # distinct scenario/step places it was seen on
         "occurrences": [ ...findings, same shape as above, every one of the cause, in report order... ]}
      ],
      "divergences": {                 # --divergences FILE; all three lists empty without one
        "accepted": [{"finding": {...finding...}, "owner": "platform-team", "reason": "...",
                      "expires": "2026-03-31", "declared_at": "divergences.yaml:3"}],   # in no cause
        "expired": [ ...same shape: findings counted again, their acceptance past its date... ],
        "unmatched": [{"declared_at": "divergences.yaml:12", "scenario": "token-*", "step": "login*" | null,
                       "category": "grant_mismatch", "field": "ttl" | null, "environments": ["staging"],
                       "owner": "...", "reason": "...", "expires": "2026-03-31"}]
      },
      "latency": [                     # the latency judge, per step: each environment against the first
        {"scenario": "token-fetch", "step": "lookup", "reference": "staging", "environment": "production",
         "outcome": "mismatch" | "no_difference" | "insufficient_data",
         "explanation": "production's median 52 ms is 10x staging's 5.1 ms (95% CI ...)",
         "ratio": 10.2 | null,          # the environment's median over the reference's
         "samples": {"staging": [5.1, ...], "production": [52.0, ...]}}   # ms judged, oldest first
      ],
      "trend": [                       # parityprobe report only: findings over the store's history
        {"at": "...", "runs": 4, "causes": 2, "by_severity": {"critical": 0, "high": 1, ...}}
      ],
      "runs": [
        {"id": "...", "scenario": "...", "environment": "staging", "tier": "staging",
         "vars": {"team": "payments"}, "started_at": "...", "finished_at": "...",
         "spec": {"id": "...", "digest": "<sha256>", "description": "...", "cleanup": [...],
                  "steps": [{"id", "probe", "expect_outcome", "expect_ttl", "policies_include",
                             "policies_exclude", "ttl_tolerance", "expect_within", "expect_valid_for",
                             "within_tolerance", "latency_threshold"}]},
         "observations": [
           {"step": "login", "probe": "vault.approle_login", "environment": "staging",
            "correlation_id": "pp-...", "outcome": "allowed",
            "error_kind": "timeout" | null, "reason": str | null, "detail": str | null,
            "latency_ms": 12.5 | null,
            "waited_seconds": 0.4 | null, "attempts": 3 | null,   # a step that waited (expect.within)
            "declared": "allowed" | "denied" | "skipped" | "error" | null,  # a step with crosscheck
            "declared_reason": str | null,                         # why skipped (no policy simulator)
            "target": "secret/data/payments/db" | null,            # what the action was aimed at
            "started_at": "...",
            "grant": {"ttl_seconds": 3600, "policies": [...], "identity": "...", "renewable": true,
                      "version": 3, "stages": [...], ...},  # only the fields the probe filled
            "outputs": {"token": "***", "arn": "..."},      # secret outputs are always "***"
            "secret_outputs": {"token": "vault token"},      # which outputs are secrets, and their kind
            "waits": {"new key works": 0.2},                 # conditions the probe awaited: name -> seconds
            "latency_samples_ms": [4.1, 3.9, ...],           # a step with repeat: N, else []
            "server": "TLSv1.3 TLS_AES_256_GCM_SHA384" | null}  # what server the step met, where it says
         ],
         "cleanup": [ ...observations, same shape... ],
         "evidence": [                                      # a step's siem expectations, one record each
           {"step": "read-security-team", "index": 0, "connector": "logs", "correlation_id": "pp-...",
            "expect": "present" | "absent", "match": {"type": "response"},
            "status": "received" | "missing" | "no_verdict", "action_at": "...",
            "window_start": "...", "window_end": "...", "events": 1,
            "event_at": "..." | null,                       # the event's own time, by the SIEM
            "seen_after_seconds": 1.2 | null,               # from the action to the poll that found it
            "reason": str | null, "polls": 3}],              # why no verdict; queries asked so far
         "servers": {"vault": "2.1.0"}}                     # each plane's server version, asked once per run
      ]
    }

Enums are written as their ``.value``. Timestamps are converted to UTC; a naive timestamp (which the
model should never hold) is taken to be UTC rather than rejected, so a report is always produced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar, Union

from parityprobe import __version__
from parityprobe.codec import to_judgement, to_record
from parityprobe.grant import iso_utc
from parityprobe.model import Finding, Report
from parityprobe.redact import MASK, Redactor
from parityprobe.report.build import build_view
from parityprobe.report.guidance import guidance
from parityprobe.report.json_schema import REPORT_SCHEMA, SCHEMA_ID
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import AcceptedView, Guidance, ReportView
from parityprobe.secret import Secret

__all__ = ["REPORT_SCHEMA", "SCHEMA_ID", "JsonRenderer", "render_json", "report_document"]

# A JSON value, as json.loads would return it.
Json = Union[dict[str, "Json"], list["Json"], str, int, float, bool, None]  # noqa: UP007


class JsonRenderer:
    """The ``json`` format: the ``parityprobe.report/v5`` document (colour and width do not apply)."""

    name: ClassVar[str] = "json"

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The document, indented by two spaces."""
        # ensure_ascii=False keeps non-ASCII text readable; redaction already happened value by value.
        # No final newline: the caller's print adds one.
        return json.dumps(view_document(view, redactor), indent=2, ensure_ascii=False)


def render_json(report: Report, redactor: Redactor) -> str:
    """The report as a ``parityprobe.report/v5`` JSON document (see the module docstring)."""
    return JsonRenderer().render(build_view(report), redactor, RenderOptions())


def report_document(report: Report, redactor: Redactor) -> dict[str, Json]:
    """The report as a JSON-ready dict, every string (keys included) passed through ``redactor``."""
    return view_document(build_view(report), redactor)


def view_document(view: ReportView, redactor: Redactor) -> dict[str, Json]:
    """The document of a report view, every string (keys included) passed through ``redactor``."""
    report = view.report
    summary = view.summary
    document: dict[str, object] = {
        "schema": SCHEMA_ID,
        "parityprobe_version": __version__,
        "generated_at": iso_utc(view.generated_at),
        "exit_code": int(view.verdict.exit_code),
        "summary": {
            "scenarios": summary.scenarios,
            "runs": summary.runs,
            "findings": summary.findings,
            "causes": summary.causes,
            # Every member, zeros included: a CI gate can read .by_severity.critical without a default.
            "by_severity": {s.value: n for s, n in summary.by_severity.items()},
            "by_category": {c.value: n for c, n in summary.by_category.items()},
            "environments": list(summary.environments),
            "compared": summary.compared,
            "unchecked_steps": summary.unchecked_steps,
        },
        # Scenario order, then as the comparator found them: the records, not the view's severity order.
        "findings": [_finding(f) for f in report.findings],
        # One entry per cause, the representative's words first; every finding kept as an occurrence.
        "causes": [
            {
                "category": shown.cause.category.value,
                "severity": shown.cause.severity.value,
                "field": shown.cause.finding.field,
                "environments": dict(shown.cause.finding.environments),
                "message": shown.cause.finding.message,
                "explanation": shown.cause.finding.explanation,
                **_guided(shown.shown.guidance or guidance(shown.cause.finding)),
                "steps": shown.cause.steps,
                "occurrences": [_finding(f) for f in shown.cause.occurrences],
            }
            for shown in view.causes
        ],
        "divergences": {
            "accepted": [_acceptance(a) for a in view.accepted],
            "expired": [_acceptance(a) for a in view.expired],
            "unmatched": [
                {
                    "declared_at": u.source,
                    "scenario": u.declaration.scenario,
                    "step": u.declaration.step,
                    "category": u.declaration.category.value,
                    "field": u.declaration.field,
                    "environments": list(u.declaration.environments),
                    "owner": u.declaration.owner,
                    "reason": u.declaration.reason,
                    "expires": u.declaration.expires.isoformat(),
                }
                for u in view.unmatched
            ],
        },
        # The latency judge's verdict on every step it weighed, "insufficient data" included.
        "latency": [
            {"scenario": comparison.scenario, **to_judgement(judgement)}
            for comparison in report.comparisons
            for judgement in comparison.latency
        ],
        # Reports made from a store: what comparing its runs found at the end of each period, oldest first.
        "trend": [
            {
                "at": iso_utc(point.at),
                "runs": point.runs,
                "causes": point.causes,
                "by_severity": {s.value: n for s, n in point.by_severity.items()},
            }
            for point in view.trend
        ],
        "runs": [to_record(run) for comparison in report.comparisons for run in comparison.runs],
    }
    # The last step: one walk over the finished document, so no string can skip redaction. It runs on
    # values, not on the serialised text, because JSON escaping (quotes, backslashes) could hide a
    # secret from a text search, and a match across syntax would corrupt the document.
    scrubbed = _scrub(document, redactor)
    assert isinstance(scrubbed, dict)
    return scrubbed


def _finding(finding: Finding) -> dict[str, object]:
    """A finding's record (the codec's, so it reads back as a finding) with its framework mapping."""
    return {**to_record(finding), **_guided(guidance(finding))}


def _guided(found: Guidance) -> dict[str, object]:
    """``frameworks`` (OWASP NHI risks, then NIST CSF subcategories) and ``remediation``."""
    return {
        "frameworks": [{"framework": r.framework, "id": r.id, "title": r.title} for r in found.references],
        "remediation": found.remediation,
    }


def _acceptance(accepted: AcceptedView) -> dict[str, object]:
    return {
        "finding": _finding(accepted.shown.finding),
        "owner": accepted.owner,
        "reason": accepted.reason,
        "expires": accepted.expires,
        "declared_at": accepted.source,
    }


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
