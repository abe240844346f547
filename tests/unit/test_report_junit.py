"""The JUnit XML report: valid against the Ant/Jenkins JUnit schema that CI parsers follow, findings on the
test cases of the steps and environments they concern, what targets say escaped and redacted; and every
format accepted by ``parityprobe run``, its exit code the same whatever the format."""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.model import Category, Comparison, Outcome, Report, Severity
from parityprobe.redact import Redactor
from parityprobe.report import build_view, render
from parityprobe.report.junit import JunitRenderer
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import ReportView
from parityprobe.secret import Secret
from tests.fault_server import FaultServer, Reply, two_http_apis
from tests.report_support import TODAY, declared, decorated
from tests.unit.test_report_markdown import HOSTILE, hostile, read
from tests.unit.test_reports import SPECS, STEPS, T0, build, finding, obs, run

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "data" / "junit.xsd")


def cases(root: ET.Element, suite: str) -> dict[tuple[str, str], ET.Element]:
    """A suite's test cases by (classname, name)."""
    (element,) = [s for s in root.iter("testsuite") if s.get("name") == suite]
    return {(c.get("classname", ""), c.get("name", "")): c for c in element.iter("testcase")}


def test_valid_and_one_testcase_per_step_and_environment() -> None:
    fx = build()
    out = render(fx.report, "junit", fx.redactor)
    SCHEMA.validate(out)
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["forbidden-calls", "who-am-i"]
    by_case = cases(root, "forbidden-calls")
    assert set(by_case) == {
        (f"forbidden-calls.{env}", step) for env in ("staging", "production") for step in STEPS
    }

    # The critical violation names staging (and "expected") only; the outcome mismatch names both.
    staging = by_case[("forbidden-calls.staging", "read-other-team")]
    (failure,) = staging.findall("failure")
    assert failure.get("type") == "expectation_violation"
    assert failure.get("message") == "msg-critical-forbidden (cause #1, seen in 1 step) (and 1 more finding)"
    assert "staging grants billing/db; seen with ***" in (failure.text or "")
    assert "[high] outcome_mismatch · step read-other-team · field outcome" in (failure.text or "")
    (failure,) = by_case[("forbidden-calls.production", "read-other-team")].findall("failure")
    assert (failure.get("type"), failure.get("message")) == (
        "outcome_mismatch",
        "msg-high-outcome (cause #2, seen in 1 step)",
    )
    assert "because msg-high-outcome" in (failure.text or "")

    # Inconclusive alone is an error, never a failure; a skipped step is skipped; agreement passes.
    (error,) = by_case[("forbidden-calls.staging", "assume-break-glass")].findall("error")
    assert error.get("type") == "inconclusive"
    assert not by_case[("forbidden-calls.staging", "assume-break-glass")].findall("failure")
    (skipped,) = by_case[("forbidden-calls.staging", "read-after-rotate")].findall("skipped")
    assert skipped.get("message") == "skipped (login failed)"
    assert list(by_case[("forbidden-calls.production", "read-own")]) == []

    assert by_case[("forbidden-calls.staging", "login")].get("time") == "0.012340"  # 12.34 ms
    suite = suites["forbidden-calls"]
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "10",
        "failures": "4",
        "errors": "2",
        "skipped": "1",
    }
    assert suite.get("time") == "0.064940"  # the latencies' sum: 12.34+3+2.5+40+4+3.1 ms
    assert suite.get("timestamp") == "2025-03-01T12:00:00"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["environment.staging"] == "run-forbidden-calls-staging"
    assert properties["environment.production"] == "run-forbidden-calls-production"
    assert suites["who-am-i"].get("failures") == "0" and suites["who-am-i"].get("tests") == "2"
    for value in (fx.secret_value, fx.leaked_value):
        assert value not in out


def test_the_schema_refuses_what_parsers_would() -> None:
    # The check must be able to fail: a second result in one test case, a suite without its counts.
    out = render(build().report, "junit", Redactor())
    root = ET.fromstring(out)
    case = next(c for c in root.iter("testcase") if c.find("failure") is not None)
    ET.SubElement(case, "error", {"type": "inconclusive"})
    assert not SCHEMA.is_valid(ET.tostring(root, encoding="unicode"))
    root = ET.fromstring(out)
    del next(root.iter("testsuite")).attrib["failures"]
    assert not SCHEMA.is_valid(ET.tostring(root, encoding="unicode"))


def test_findings_on_no_step_get_a_testcase_of_their_own() -> None:
    fx = build(
        (
            finding(
                Category.CONFIG_DRIFT,
                Severity.MEDIUM,
                None,
                "different texts",
                values={"staging": "abc", "production": "def"},
            ),
            finding(
                Category.CLEANUP_FAILED, Severity.HIGH, "undo.1", "undo failed", values={"production": "e"}
            ),
        )
    )
    out = render(fx.report, "junit", fx.redactor)
    SCHEMA.validate(out)
    by_case = cases(ET.fromstring(out), "forbidden-calls")
    for env in ("staging", "production"):
        (drift,) = by_case[(f"forbidden-calls.{env}", "scenario")].findall("failure")
        assert drift.get("type") == "config_drift"
    (undo,) = by_case[("forbidden-calls.production", "undo 1")].findall("failure")
    assert undo.get("type") == "cleanup_failed"
    assert ("forbidden-calls.staging", "undo 1") not in by_case


def test_what_targets_say_is_escaped_redacted_and_stripped_of_forbidden_characters() -> None:
    fx = hostile()
    out = render(fx.report, "junit", fx.redactor)
    assert fx.secret not in out
    assert "<script" not in out and "<img" not in out  # escaped by ElementTree
    SCHEMA.validate(out)
    by_case = cases(ET.fromstring(out), "forbidden-calls")
    (failure,) = by_case[("forbidden-calls.production", "read-other-team")].findall("failure")
    shown = fx.text.replace(fx.secret, "***")
    assert failure.get("message") == f"production denied: {shown} (cause #1, seen in 1 step)"  # newline kept
    assert f"production: denied ({shown})" in (failure.text or "")
    (error,) = by_case[("forbidden-calls.staging", "login")].findall("error")
    assert error.get("message") == f"{shown} (cause #2, seen in 1 step)"

    # Control characters (an SDK's binary error body) cannot be written in XML 1.0 at all: dropped.
    noisy = "bell\x07 null\x00 escape\x1b[31m surrogate\ud800 end\ufffe"
    steps = tuple(obs(env, s, Outcome.ALLOWED) for env in ("staging",) for s in STEPS)
    report = Report(
        T0,
        (
            Comparison(
                SPECS["forbidden-calls"],
                (run("staging", "forbidden-calls", steps),),
                (finding(Category.INCONCLUSIVE, Severity.INFO, "login", noisy, values={"staging": noisy}),),
            ),
        ),
    )
    out = render(report, "junit", Redactor())
    SCHEMA.validate(out)
    (error,) = cases(ET.fromstring(out), "forbidden-calls")[("forbidden-calls.staging", "login")]
    assert error.get("message") == "bell null escape[31m surrogate end (cause #1, seen in 1 step)"


# ---------------------------------------------------------------- causes, divergences, guidance, latency


def junit(view: ReportView, redactor: Redactor | None = None) -> str:
    out = JunitRenderer().render(view, redactor or Redactor(), RenderOptions())
    SCHEMA.validate(out)  # accepted, expired and unmatched divergences and notes included
    return out


def failure_of(case: ET.Element) -> ET.Element:
    (failure,) = case.findall("failure")
    return failure


def system_out(root: ET.Element, suite: str) -> str:
    (element,) = [s for s in root.iter("testsuite") if s.get("name") == suite]
    out = element.find("system-out")
    assert out is not None
    return out.text or ""


def test_one_gap_failing_many_cases_names_its_cause_and_what_to_do() -> None:
    root = ET.fromstring(junit(decorated()))
    by_case = cases(root, "forbidden-calls")
    for env in ("staging", "production"):
        for step in ("login", "read-own"):
            failure = failure_of(by_case[(f"forbidden-calls.{env}", step)])
            assert failure.get("message") == "lifetimes differ (cause #2, seen in 2 steps)"
            text = failure.text or ""
            assert (
                "cause #2 (2 findings), seen in 2 steps: forbidden-calls/login, forbidden-calls/read-own"
                in (text)
            )
            assert "frameworks: OWASP NHI Top 10 NHI7:2025 (Long-lived secrets)" in text
            assert "fix: Shorten the role's token_ttl" in text
    text = failure_of(by_case[("forbidden-calls.staging", "read-other-team")]).text or ""
    assert (
        "frameworks: OWASP NHI Top 10 NHI5:2025 (Overprivileged NHI), NIST CSF 2.0 PR.AA-05 "
        "(Access permissions)\nfix: Remove billing/db from the staging policy" in text
    )


def test_accepted_are_skipped_expired_fail_saying_so_and_notes_go_to_system_out() -> None:
    root = ET.fromstring(junit(decorated()))
    by_case = cases(root, "forbidden-calls")
    suite = next(root.iter("testsuite"))
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "10", "failures": "6", "errors": "0", "skipped": "2"}
    for env in ("staging", "production"):
        case = by_case[(f"forbidden-calls.{env}", "read-after-rotate")]
        (skipped,) = list(case)
        assert skipped.tag == "skipped"
        assert skipped.get("message") == (
            "accepted divergence: platform-team, until 2026-12-31: staging keeps 24h tokens"
        )
        failure = failure_of(by_case[(f"forbidden-calls.{env}", "read-other-team")])
        assert failure.get("message") == (
            "⚠ accepted until 2026-01-31 (expired): staging allows a forbidden read "
            "(cause #1, seen in 1 step)"
        )
        assert "⚠ accepted until 2026-01-31 (expired) — security-team: migration (d.yaml:9)" in (
            failure.text or ""
        )
    # A latency mismatch, about the pair, on both environments' cases of its step, and in the suite's output.
    for env in ("staging", "production"):
        login = failure_of(by_case[(f"forbidden-calls.{env}", "login")]).text or ""
        assert "latency mismatch: 10x slower" in login
        assert "3 of 10 samples" not in login
    assert system_out(root, "forbidden-calls") == (
        "Latency:\n"
        "  login: latency mismatch: 10x slower\n"
        "  read-own: insufficient data: 3 of 10 samples\n"
        "\n"
        "Declared divergences that matched nothing (1): remove them\n"
        "  d.yaml:20: gone · grant_mismatch (nobody, until 2026-12-31)"
    )


def test_an_accepted_finding_on_a_failing_case_is_told_and_unmatched_go_to_their_suite() -> None:
    ttl = replace(
        finding(Category.GRANT_MISMATCH, Severity.MEDIUM, "login", "ttl", values={"staging": "24h"}),
        field="ttl",
    )
    refused = finding(Category.OUTCOME_MISMATCH, Severity.HIGH, "login", "staging: refused", field="outcome")
    report = build((ttl, refused)).report
    declarations = (
        declared(step="login"),
        declared(scenario="who-*", source="d.yaml:12"),
        declared(scenario="nothing-*", source="d.yaml:16"),
    )
    root = ET.fromstring(junit(build_view(report, declarations, TODAY)))
    failure = failure_of(cases(root, "forbidden-calls")[("forbidden-calls.staging", "login")])
    assert failure.get("message") == "staging: refused (cause #1, seen in 1 step)"
    assert (
        "accepted on this case too: grant_mismatch · step login · field ttl in forbidden-calls — "
        "platform-team, until 2026-12-31: staging keeps 24h tokens (divergences.yaml:2)"
        in (failure.text or "")
    )
    # A declaration names the suite of the scenarios it was written for; one naming none, the first suite.
    assert "d.yaml:12: who-*" in system_out(root, "who-am-i")
    assert "d.yaml:12" not in system_out(root, "forbidden-calls")
    assert "d.yaml:16: nothing-*" in system_out(root, "forbidden-calls")
    assert "d.yaml:16" not in system_out(root, "who-am-i")


def test_new_text_from_targets_files_and_hints_is_escaped_and_masked() -> None:
    secret = "s.hostile" + secrets.token_urlsafe(20)
    redactor = Redactor([Secret(secret, "vault token")])
    say = f" {HOSTILE} token={secret}"
    out = junit(decorated(say), redactor)
    assert secret not in out
    assert "<script" not in out and "<img" not in out
    shown = f" {HOSTILE} token=***"
    root = ET.fromstring(out)
    by_case = cases(root, "forbidden-calls")
    (skipped,) = list(by_case[("forbidden-calls.staging", "read-after-rotate")])
    assert skipped.get("message") == (
        f"accepted divergence: platform-team{shown}, until 2026-12-31: staging keeps 24h tokens{shown}"
    )
    failure = failure_of(by_case[("forbidden-calls.production", "read-other-team")])
    assert failure.get("message") == (
        f"⚠ accepted until 2026-01-31 (expired): staging allows a forbidden read{shown} "
        "(cause #1, seen in 1 step)"
    )
    assert f"security-team: migration{shown} (d.yaml:9)" in (failure.text or "")
    assert f"fix: Remove billing/db from the staging policy{shown}" in (failure.text or "")
    login = failure_of(by_case[("forbidden-calls.production", "login")]).text or ""
    assert f"frameworks: OWASP NHI Top 10 NHI7:2025 (Long-lived secrets{shown})" in login
    assert f"latency mismatch: 10x slower{shown}" in login
    output = system_out(root, "forbidden-calls")
    for piece in (f"10x slower{shown}", f"3 of 10 samples{shown}", f"(nobody{shown}, until 2026-12-31)"):
        assert piece in output, piece


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def apis(tmp_path: Path) -> Iterator[tuple[FaultServer, FaultServer, Path, Path]]:
    with two_http_apis(tmp_path) as made:
        yield made


@pytest.mark.parametrize(("production_status", "exit_code"), [(200, 0), (403, 1)])
def test_every_format_keeps_the_exit_code(
    apis: tuple[FaultServer, FaultServer, Path, Path], tmp_path: Path, production_status: int, exit_code: int
) -> None:
    staging, production, envs, scenario = apis
    staging.reply = Reply(200, "application/json", b"{}")
    production.reply = Reply(production_status, "text/plain", b"<script>alert(1)</script>")
    outputs = {}
    for fmt in ("terminal", "json", "markdown", "junit"):
        result = CliRunner().invoke(main, ["run", "-e", str(envs), "--quiet", "--format", fmt, str(scenario)])
        assert result.exit_code == exit_code, (fmt, result.output)
        outputs[fmt] = result.stdout
    assert json.loads(outputs["json"])["exit_code"] == exit_code
    verdict = (
        f"Verdict: {'NO PARITY GAPS FOUND' if exit_code == 0 else 'PARITY GAPS FOUND'} (exit {exit_code})"
    )
    assert verdict in read(outputs["markdown"]).text
    SCHEMA.validate(outputs["junit"])
    suite = ET.fromstring(outputs["junit"]).find("testsuite")
    assert suite is not None and suite.get("tests") == "2"
    assert suite.get("failures") == str(exit_code)  # production's step when it refuses, nothing otherwise
