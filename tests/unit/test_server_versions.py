"""Server versions as drift: a plane whose server versions differ between environments is a low
config_drift finding, medium when a behavioural finding on the same plane may be explained by it; a version
missing in one environment is no difference; versions survive the codec and reach the JSON report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.model import Category, Observation, Outcome, Report, Run, Severity, Tier
from parityprobe.redact import Redactor
from parityprobe.report import REPORT_SCHEMA, render_json
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec
from tests.unit.test_reports import check

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
SPEC = ScenarioSpec(
    "reads", "d", steps=(StepSpec("read", "vault.kv_read"), StepSpec("who", "aws.caller_identity"))
)


def run(env: str, servers: dict[str, str], read: Outcome = Outcome.DENIED) -> Run:
    steps = (
        Observation("read", "vault.kv_read", env, f"c-{env}-0", read, T0),
        Observation("who", "aws.caller_identity", env, f"c-{env}-1", Outcome.ALLOWED, T0),
    )
    tier = Tier.PRODUCTION if env == "production" else Tier.STAGING
    facts = EnvironmentFacts(env, tier)
    return Run(
        f"r-{env}", SPEC, facts, T0, T0 + timedelta(seconds=1), steps, servers=MappingProxyType(servers)
    )


def drift(comparison_findings: tuple) -> list:  # type: ignore[type-arg]
    return [f for f in comparison_findings if (f.field or "").startswith("server ")]


def test_different_versions_alone_are_low_drift() -> None:
    c = compare(SPEC, [run("staging", {"vault": "2.1.0"}), run("production", {"vault": "2.0.3"})])
    (finding,) = drift(c.findings)
    assert (finding.category, finding.severity, finding.field) == (
        Category.CONFIG_DRIFT,
        Severity.LOW,
        "server vault",
    )
    assert finding.environments == {"staging": "2.1.0", "production": "2.0.3"}
    assert finding.step is None and "may explain" not in finding.message


def test_a_behavioural_finding_on_the_plane_raises_it_to_medium_and_is_named() -> None:
    staging = run("staging", {"vault": "2.1.0", "aws": "x"}, read=Outcome.ALLOWED)
    c = compare(SPEC, [staging, run("production", {"vault": "2.0.3", "aws": "x"})])
    (finding,) = drift(c.findings)
    assert finding.severity is Severity.MEDIUM and finding.message.endswith(
        "may explain what differs on read"
    )
    assert any(f.category is Category.OUTCOME_MISMATCH and f.step == "read" for f in c.findings)


def test_a_difference_on_another_plane_does_not_raise_it() -> None:
    staging = run("staging", {"aws": "1"}, read=Outcome.ALLOWED)
    (finding,) = drift(compare(SPEC, [staging, run("production", {"aws": "2"})]).findings)
    assert finding.field == "server aws" and finding.severity is Severity.LOW


def test_equal_or_missing_versions_are_no_finding() -> None:
    assert (
        drift(
            compare(
                SPEC, [run("staging", {"vault": "2.1.0"}), run("production", {"vault": "2.1.0"})]
            ).findings
        )
        == []
    )
    assert drift(compare(SPEC, [run("staging", {"vault": "2.1.0"}), run("production", {})]).findings) == []


def test_versions_survive_the_codec_and_reach_the_json_report() -> None:
    original = run("staging", {"vault": "2.1.0"})
    assert from_record(Run, json.loads(json.dumps(to_record(original)))).servers == {"vault": "2.1.0"}
    legacy = to_record(original)
    del legacy["servers"]  # a run recorded before versions were asked
    assert from_record(Run, legacy).servers == {}
    report = Report(T0, (compare(SPEC, [original, run("production", {"vault": "2.0.3"})]),))
    document = json.loads(render_json(report, Redactor()))
    assert check(document, REPORT_SCHEMA) == []
    assert [r["servers"] for r in document["runs"]] == [{"vault": "2.1.0"}, {"vault": "2.0.3"}]


# ---------------------------------------------------------------- expect.valid_for


def test_a_grant_expiring_within_valid_for_is_a_finding_in_its_own_environment() -> None:
    from dataclasses import replace

    from parityprobe.grant import Grant

    spec = ScenarioSpec(
        "tls", "d", steps=(StepSpec("handshake", "tls.handshake", expect_valid_for=30 * 86400),)
    )

    def tls_run(env: str, days: float) -> Run:
        grant = Grant(identity="CN=api", expires_at=T0 + timedelta(days=days))
        obs = Observation("handshake", "tls.handshake", env, f"c-{env}", Outcome.ALLOWED, T0, grant=grant)
        return replace(run(env, {}), spec=spec, observations=(obs,))

    c = compare(spec, [tls_run("staging", 12), tls_run("production", 300)])
    (finding,) = c.findings
    assert (finding.category, finding.field, finding.severity) == (
        Category.EXPECTATION_VIOLATION,
        "expires",
        Severity.MEDIUM,
    )
    assert finding.message.startswith("staging: what tls.handshake was granted expires in 12d")
    assert finding.environments == {"staging": "valid for 12d", "production": "valid for 300d"}
    assert compare(spec, [tls_run("staging", 31), tls_run("production", 300)]).findings == ()


def test_a_step_that_met_different_servers_is_drift_on_that_step() -> None:
    from dataclasses import replace

    spec = ScenarioSpec("tls", "d", steps=(StepSpec("a", "tls.handshake"), StepSpec("b", "tls.handshake")))

    def tls_run(env: str, server: str) -> Run:
        steps = tuple(
            Observation(s, "tls.handshake", env, f"c-{env}-{s}", Outcome.ALLOWED, T0, server=server)
            for s in ("a", "b")
        )
        return replace(run(env, {}), spec=spec, observations=steps)

    c = compare(
        spec,
        [
            tls_run("staging", "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256"),
            tls_run("production", "TLSv1.3 TLS_AES_256_GCM_SHA384"),
        ],
    )
    assert [(f.step, f.field, f.severity) for f in drift(c.findings)] == [
        ("a", "server tls", Severity.LOW),
        ("b", "server tls", Severity.LOW),
    ]
    same = compare(spec, [tls_run("staging", "TLSv1.3 X"), tls_run("production", "TLSv1.3 X")])
    assert drift(same.findings) == []
