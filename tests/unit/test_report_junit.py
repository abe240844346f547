"""The JUnit XML report: valid against the Ant/Jenkins JUnit schema that CI parsers follow, findings on the
test cases of the steps and environments they concern, what targets say escaped and redacted; and every
format accepted by ``parityprobe run``, its exit code the same whatever the format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.model import Category, Comparison, Outcome, Report, Severity
from parityprobe.redact import Redactor
from parityprobe.report import render
from tests.fault_server import FaultServer, Reply, two_http_apis
from tests.unit.test_report_markdown import hostile, read
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
    assert failure.get("message") == "msg-critical-forbidden (and 1 more finding)"
    assert "staging grants billing/db; seen with ***" in (failure.text or "")
    assert "[high] outcome_mismatch · step read-other-team · field outcome" in (failure.text or "")
    (failure,) = by_case[("forbidden-calls.production", "read-other-team")].findall("failure")
    assert (failure.get("type"), failure.get("message")) == ("outcome_mismatch", "msg-high-outcome")
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
    assert failure.get("message") == f"production denied: {shown}"  # the newline kept, as &#10;
    assert f"production: denied ({shown})" in (failure.text or "")
    (error,) = by_case[("forbidden-calls.staging", "login")].findall("error")
    assert error.get("message") == shown

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
    assert error.get("message") == "bell null escape[31m surrogate end"


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
