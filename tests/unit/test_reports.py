"""The terminal and JSON reports, built from real model objects: content, verdicts, redaction, schema."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from parityprobe.config.durations import humanise
from parityprobe.model import (
    Category,
    Comparison,
    ErrorKind,
    ExitCode,
    Finding,
    Grant,
    Observation,
    Outcome,
    Report,
    Run,
    Severity,
    Tier,
)
from parityprobe.redact import Redactor
from parityprobe.report import REPORT_SCHEMA, Format, render, render_json, render_terminal
from parityprobe.secret import Secret
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ENVS = ("staging", "production")
STEPS = ("login", "read-own", "read-other-team", "assume-break-glass", "read-after-rotate")
ANSI = re.compile(r"\x1b\[")
SPECS = {
    "forbidden-calls": ScenarioSpec(
        "forbidden-calls",
        "digest-1",
        "The payments workload reads its own secret and nothing else.",
        tuple(StepSpec(s, "vault.kv_read", expect_outcome=Outcome.DENIED) for s in STEPS),
    ),
    "who-am-i": ScenarioSpec(
        "who-am-i", "digest-2", "Caller identity", (StepSpec("caller-identity", "aws.caller_identity"),)
    ),
}


@dataclass(frozen=True)
class Fixture:
    report: Report
    redactor: Redactor
    secret_value: str
    leaked_value: str


def obs(env: str, step: str, outcome: Outcome, probe: str = "vault.kv_read", **kw: Any) -> Observation:
    return Observation(
        step=step,
        probe=probe,
        environment=env,
        correlation_id=f"pp-{env}-run-{step}",
        outcome=outcome,
        started_at=T0 + timedelta(seconds=STEPS.index(step) if step in STEPS else 9),
        **kw,
    )


def finding(
    category: Category,
    severity: Severity,
    step: str | None,
    message: str,
    *,
    values: dict[str, str] | None = None,
    explanation: str | None = None,
    field: str | None = None,
) -> Finding:
    return Finding(
        category=category,
        severity=severity,
        scenario="forbidden-calls",
        step=step,
        environments=values or {"staging": f"staging-{message}", "production": "x"},
        message=message,
        explanation=f"because {message}" if explanation is None else explanation,
        field=field,
    )


def run(
    env: str, scenario: str, observations: tuple[Observation, ...], cleanup: tuple[Observation, ...] = ()
) -> Run:
    tier = Tier.PRODUCTION if env == "production" else Tier.STAGING
    return Run(
        id=f"run-{scenario}-{env}",
        spec=SPECS[scenario],
        env=EnvironmentFacts(env, tier),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=30),
        observations=observations,
        cleanup=cleanup,
    )


def comparison(
    findings: tuple[Finding, ...], *, with_secret: Secret | None = None, leaked: str = ""
) -> Comparison:
    token = with_secret or Secret("unused-" + secrets.token_hex(8))
    staging = (
        obs(
            "staging",
            "login",
            Outcome.ALLOWED,
            probe="vault.approle_login",
            latency_ms=12.34,
            grant=Grant(
                ttl_seconds=86400,
                policies=frozenset({"payments", "default"}),
                identity="approle/payments",
                renewable=True,
            ),
            outputs={"token": token, "accessor": "acc-public-1"},
        ),
        obs("staging", "read-own", Outcome.ALLOWED, latency_ms=3.0, grant=Grant(version=7)),
        obs("staging", "read-other-team", Outcome.ALLOWED, latency_ms=2.5),
        obs(
            "staging",
            "assume-break-glass",
            Outcome.ERROR,
            probe="aws.assume_role",
            error_kind=ErrorKind.TIMEOUT,
            reason="no answer in 5s",
            detail=f"POST https://sts.local/?token={leaked} [bold]markup[/bold]",
        ),
        obs("staging", "read-after-rotate", Outcome.SKIPPED, reason="login failed"),
    )
    production = (
        obs(
            "production",
            "login",
            Outcome.ALLOWED,
            probe="vault.approle_login",
            latency_ms=40.0,
            grant=Grant(ttl_seconds=3598, policies=frozenset({"payments"}), identity="approle/payments"),
            outputs={"token": token},
        ),
        obs("production", "read-own", Outcome.ALLOWED, latency_ms=4.0, grant=Grant(version=7)),
        obs("production", "read-other-team", Outcome.DENIED, reason="permission denied", latency_ms=3.1),
        obs(
            "production",
            "assume-break-glass",
            Outcome.DENIED,
            probe="aws.assume_role",
            reason="AccessDenied",
            grant=Grant(ttl_seconds=3600),
        ),
        obs("production", "read-after-rotate", Outcome.NOT_FOUND, reason="no such path"),
    )
    cleanup = (
        obs(
            "production",
            "revoke-token",
            Outcome.ERROR,
            error_kind=ErrorKind.UNREACHABLE,
            reason="connection refused",
        ),
        obs("production", "delete-lease", Outcome.NOT_FOUND),
    )
    return Comparison(
        spec=SPECS["forbidden-calls"],
        runs=(
            run("staging", "forbidden-calls", staging),
            run("production", "forbidden-calls", production, cleanup),
        ),
        findings=findings,
    )


def quiet_comparison() -> Comparison:
    """A second scenario where both environments agree."""
    runs = tuple(
        run(
            env,
            "who-am-i",
            (
                obs(
                    env,
                    "caller-identity",
                    Outcome.ALLOWED,
                    probe="aws.caller_identity",
                    latency_ms=8.0,
                    grant=Grant(identity="arn:aws:sts::<account>:assumed-role/app"),
                ),
            ),
        )
        for env in ENVS
    )
    return Comparison(spec=SPECS["who-am-i"], runs=runs, findings=())


# Deliberately not in severity order, so sorting is what puts them in order.
def mixed_findings(leaked: str = "") -> tuple[Finding, ...]:
    return (
        finding(Category.LATENCY_MISMATCH, Severity.LOW, "login", "msg-low-latency", field="latency_ms"),
        finding(Category.INCONCLUSIVE, Severity.INFO, "assume-break-glass", "msg-info-inconclusive"),
        finding(
            Category.GRANT_MISMATCH,
            Severity.MEDIUM,
            "login",
            "msg-medium-ttl",
            field="ttl_seconds",
            values={"staging": "24h", "production": "59m 58s"},
        ),
        finding(
            Category.EXPECTATION_VIOLATION,
            Severity.CRITICAL,
            "read-other-team",
            "msg-critical-forbidden",
            values={"staging": "allowed", "expected": "denied"},
            explanation=f"staging grants billing/db; seen with {leaked}",
        ),
        finding(
            Category.OUTCOME_MISMATCH, Severity.HIGH, "read-other-team", "msg-high-outcome", field="outcome"
        ),
    )


def build(findings: tuple[Finding, ...] | None = None) -> Fixture:
    secret_value = "s.tok" + secrets.token_urlsafe(24)
    leaked_value = "leak" + secrets.token_hex(16)
    secret = Secret(secret_value, "vault token")
    redactor = Redactor([secret, Secret(leaked_value, "aws secret key")])
    chosen = mixed_findings(leaked_value) if findings is None else findings
    report = Report(
        generated_at=T0,
        comparisons=(comparison(chosen, with_secret=secret, leaked=leaked_value), quiet_comparison()),
    )
    return Fixture(report, redactor, secret_value, leaked_value)


# ---------------------------------------------------------------- a tiny JSON Schema checker


def check(value: object, schema: dict[str, object], path: str = "$") -> list[str]:
    """Errors of ``value`` against the subset of JSON Schema that REPORT_SCHEMA uses."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is(value, str(n)) for n in names):
            return [f"{path}: {type(value).__name__} is not {names}"]
    if "enum" in schema and value not in schema["enum"]:  # type: ignore[operator]
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        props: dict[str, dict[str, object]] = schema.get("properties", {})  # type: ignore[assignment]
        for key in schema.get("required", []):  # type: ignore[attr-defined]
            if key not in value:
                errors.append(f"{path}: missing {key}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors += check(item, props[key], f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected key {key}")
            elif isinstance(extra, dict):
                errors += check(item, extra, f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += check(item, schema["items"], f"{path}[{i}]")  # type: ignore[arg-type]
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            if datetime.fromisoformat(value).tzinfo is None:
                errors.append(f"{path}: {value} has no timezone")
        except ValueError:
            errors.append(f"{path}: {value} is not ISO-8601")
    return errors


def _is(value: object, name: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[name]


def test_checker_rejects_broken_documents() -> None:
    doc = json.loads(render_json(build().report, Redactor()))
    assert check(doc, REPORT_SCHEMA) == []
    broken = json.loads(json.dumps(doc))
    del broken["summary"]["runs"]
    broken["exit_code"] = "1"
    broken["findings"][0]["severity"] = "SEVERE"
    broken["runs"][0]["observations"][0]["latency_ms"] = "12"
    broken["runs"][0]["started_at"] = "2025-03-01T12:00:00"
    broken["runs"][1]["surprise"] = 1
    errors = "\n".join(check(broken, REPORT_SCHEMA))
    for expected in (
        "missing runs",
        "$.exit_code",
        "SEVERE",
        "latency_ms",
        "no timezone",
        "unexpected key surprise",
    ):
        assert expected in errors


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("fmt", list(Format))
def test_no_secret_value_in_any_output(fmt: Format) -> None:
    fx = build()
    # Narrow widths make rich wrap long values across lines, where a search of the final text fails.
    # At width 30 an unredacted detail is split over lines, so this also proves redaction before rich.
    for color, width in ((False, 30), (False, 80), (True, 30), (True, 120)):
        out = render(fx.report, fmt, fx.redactor, color=color, width=width)
        for value in (fx.secret_value, fx.leaked_value):
            assert value not in out
            assert value[4:16] not in out  # not even a fragment left over from wrapping


def test_leaked_detail_is_masked_where_it_is_shown() -> None:
    fx = build()
    # The detail is really rendered: without the secret known, the value would show (proves the test bites).
    unaware = render_terminal(fx.report, Redactor(), width=400)
    assert fx.leaked_value in unaware
    aware = render_terminal(fx.report, fx.redactor, width=400)
    assert "POST https://sts.local/?token=*** [bold]markup[/bold]" in aware
    doc = json.loads(render_json(fx.report, fx.redactor))
    details = [o["detail"] for r in doc["runs"] for o in r["observations"] if o["detail"]]
    assert any(d.startswith("POST https://sts.local/?token=***") for d in details)
    explanations = [f["explanation"] for f in doc["findings"]]
    assert "staging grants billing/db; seen with ***" in explanations


def test_secret_output_is_masked_in_json_and_public_output_kept() -> None:
    fx = build()
    doc = json.loads(render_json(fx.report, fx.redactor))
    login = doc["runs"][0]["observations"][0]
    assert login["outputs"] == {"token": "***", "accessor": "acc-public-1"}
    # Even a redactor that knows nothing must not expose a Secret output.
    assert fx.secret_value not in render_json(fx.report, Redactor())


# ---------------------------------------------------------------- JSON


def test_json_document_shape_and_types() -> None:
    fx = build()
    text = render_json(fx.report, fx.redactor)
    doc = json.loads(text)
    assert check(doc, REPORT_SCHEMA) == []
    assert list(doc) == [
        "schema",
        "parityprobe_version",
        "generated_at",
        "exit_code",
        "summary",
        "findings",
        "causes",
        "divergences",
        "latency",
        "trend",
        "runs",
    ]
    assert doc["schema"] == "parityprobe.report/v5"
    assert doc["generated_at"] == "2025-03-01T12:00:00+00:00"
    assert doc["exit_code"] == int(fx.report.exit_code) == 1
    assert (
        doc["summary"]["scenarios"] == 2 and doc["summary"]["runs"] == 4 and doc["summary"]["findings"] == 5
    )
    assert doc["summary"]["causes"] == len(doc["causes"]) == 5  # five different differences
    assert doc["summary"]["by_severity"] == {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 1}
    assert doc["summary"]["by_category"]["inconclusive"] == 1
    assert doc["summary"]["by_category"]["config_drift"] == 0
    assert [f["category"] for f in doc["findings"]] == [f.category.value for f in fx.report.findings]
    critical = next(f for f in doc["findings"] if f["severity"] == "critical")
    assert critical["environments"] == {"staging": "allowed", "expected": "denied"}
    observations = [o for r in doc["runs"] for o in r["observations"]]
    assert {o["outcome"] for o in observations} == {"allowed", "denied", "not_found", "error", "skipped"}
    timeout = next(o for o in observations if o["error_kind"])
    assert timeout["error_kind"] == "timeout" and timeout["reason"] == "no answer in 5s"
    assert observations[0]["grant"] == {
        "ttl_seconds": 86400,
        "policies": ["default", "payments"],
        "identity": "approle/payments",
        "renewable": True,
    }
    assert [c["step"] for c in doc["runs"][1]["cleanup"]] == ["revoke-token", "delete-lease"]
    assert text.startswith('{\n  "schema"') and text == render_json(
        fx.report, fx.redactor
    )  # indent=2, stable


def test_json_timestamps_are_utc() -> None:
    cet = timezone(timedelta(hours=1))
    report = Report(generated_at=datetime(2025, 3, 1, 13, 0, tzinfo=cet), comparisons=(quiet_comparison(),))
    doc = json.loads(render_json(report, Redactor()))
    assert doc["generated_at"] == "2025-03-01T12:00:00+00:00"
    assert doc["exit_code"] == 0 and doc["findings"] == []


def test_json_exit_code_inconclusive() -> None:
    only = (finding(Category.INCONCLUSIVE, Severity.INFO, "assume-break-glass", "timeout"),)
    fx = build(only)
    doc = json.loads(render(fx.report, Format.JSON, fx.redactor))
    assert doc["exit_code"] == int(ExitCode.INCONCLUSIVE) == int(fx.report.exit_code)


# ---------------------------------------------------------------- terminal


def test_terminal_shows_every_step_environment_and_cell() -> None:
    fx = build()
    out = render_terminal(fx.report, fx.redactor, width=160)
    for name in (*STEPS, *ENVS, "caller-identity", "forbidden-calls", "who-am-i"):
        assert name in out
    assert "The payments workload reads its own secret and nothing else." in out
    for cell in (
        "denied (permission denied)",
        "error: timeout (no answer in 5s)",
        "skipped (login failed)",
        "not_found (no such path)",
        "12.3 ms",
        "policies default, payments",
        "identity approle/payments",
        "version 7",
        "! read-other-team",
    ):
        assert cell in out, cell
    assert "! read-own" not in out  # only steps with a finding are marked


def test_terminal_humanises_ttl() -> None:
    out = render_terminal(build().report, Redactor(), width=160)
    assert "ttl 24h" in out and "ttl 59m 58s" in out and "ttl 1h" in out
    assert "86400" not in out
    assert [humanise(s) for s in (86400, 3600, 3598, 61, 0, 90061)] == [
        "24h",
        "1h",
        "59m 58s",
        "1m 1s",
        "0s",
        "25h 1m 1s",
    ]


def test_terminal_findings_most_severe_first() -> None:
    out = render_terminal(build().report, Redactor(), width=160)
    order = [
        "msg-critical-forbidden",
        "msg-high-outcome",
        "msg-medium-ttl",
        "msg-low-latency",
        "msg-info-inconclusive",
    ]
    positions = [out.index(m) for m in order]
    assert positions == sorted(positions)
    badges = [out.index(f" {s.value.upper()} ") for s in Severity]
    assert badges == sorted(badges)
    # Side by side: one header line with the value keys, one line with both values.
    assert re.search(r"staging\s+expected\n\s+allowed\s+denied", out)
    assert "because msg-high-outcome" in out  # explanation


def test_terminal_shows_failed_cleanup_only() -> None:
    out = render_terminal(build().report, Redactor(), width=160)
    assert "Cleanup in production (run run-forbidden-calls-production): 1 of 2 failed" in out
    assert "error: unreachable (connection refused)" in out
    assert "Cleanup in staging" not in out


def verdict_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("Verdict:")]


def test_verdict_findings() -> None:
    fx = build()
    out = render_terminal(fx.report, fx.redactor, width=60)  # narrow: the two closing lines stay whole
    assert verdict_lines(out) == [
        "Verdict: PARITY GAPS FOUND (exit 1); also no verdict for forbidden-calls/assume-break-glass"
    ]
    assert (
        "Summary: 2 scenarios · 4 runs · 5 causes (1 critical, 1 high, 1 medium, 1 low, 1 info) "
        "from 5 findings · 1 inconclusive" in out
    )


def test_verdict_no_findings() -> None:
    fx = build(())
    out = render_terminal(fx.report, fx.redactor)
    assert fx.report.exit_code is ExitCode.OK
    assert verdict_lines(out) == ["Verdict: NO PARITY GAPS FOUND (exit 0)"]
    assert "Summary: 2 scenarios · 4 runs · 0 causes from 0 findings · 0 inconclusive" in out


def test_verdict_only_inconclusive_is_never_parity_ok() -> None:
    only = (
        finding(Category.INCONCLUSIVE, Severity.INFO, "assume-break-glass", "timeout"),
        finding(Category.INCONCLUSIVE, Severity.INFO, "read-other-team", "unreachable"),
    )
    fx = build(only)
    out = render_terminal(fx.report, fx.redactor)
    assert fx.report.exit_code is ExitCode.INCONCLUSIVE
    assert verdict_lines(out) == [
        "Verdict: INCONCLUSIVE — no verdict for forbidden-calls/assume-break-glass, "
        "forbidden-calls/read-other-team (exit 3)"
    ]
    assert "no parity gaps" not in out.lower() and "parity ok" not in out.lower()


def test_color_flag_controls_ansi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # the caller's environment must not turn colour on
    fx = build()
    plain = render_terminal(fx.report, fx.redactor, color=False)
    coloured = render_terminal(fx.report, fx.redactor, color=True)
    assert not ANSI.search(plain)
    assert ANSI.search(coloured)
    assert "\x1b[32m" in coloured  # allowed is green
    # Same content, only styled (styled header cells keep trailing blanks inside their codes).
    unstyled = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert [line.rstrip() for line in unstyled.splitlines()] == plain.splitlines()
