"""Stored runs compare like live ones: runs made by the real runner, written through the codec to JSON text
and read back, give exactly the findings they gave live — every kind of finding included. Runs of
different texts of one scenario say so (config_drift)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from parityprobe.codec import from_record, to_record
from parityprobe.compare.comparator import compare
from parityprobe.model import Category, Comparison, Finding, Outcome, Run, Severity
from parityprobe.pipeline import execute
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from tests.plugins import Inventory, build, registry

ENVS = """\
environments:
  staging:
    tier: staging
    vars:
      {account_id: "111111111111", ttl: "3600", lease_ttl: "100", session_ttl: "86400", refuse: "false",
       stuck: "false"}
    safety: {allow_effects: [read, write]}
  production:
    tier: production
    vars:
      {account_id: "222222222222", ttl: "3700", lease_ttl: "200", session_ttl: "3600", refuse: "true",
       stuck: "true"}
    safety: {allow_effects: [read, write]}
"""
# One scenario with something for every rule: an identity that differs only by vars (no finding), TTLs
# that differ beyond a step's tolerance tighter than the default (grant_mismatch) and within one looser than
# it (no finding), TTLs beyond the default tolerance (grant_mismatch), a forbidden call one environment
# allows (expectation_violation), a denied step and the step that needed it (skipped, so inconclusive), and
# an undo production refuses (cleanup_failed).
SCENARIO = """\
id: seams
description: Every kind of finding, live and stored.
steps:
  - id: login
    probe: test.echo
    with:
      value: app
      identity: "arn:aws:iam::${{ vars.account_id }}:role/app"
      ttl: "${{ vars.ttl }}"
      policies: [default, app]
    expect: {outcome: allowed, ttl: {max: 2h}, policies: {includes: [app], excludes: [admin]}}
    tolerance: {ttl: 1m}
  - id: lease
    probe: test.echo
    with: {ttl: "${{ vars.lease_ttl }}"}
    tolerance: {ttl: 2m}
  - id: session
    probe: test.echo
    with: {ttl: "${{ vars.session_ttl }}"}
  - id: forbidden
    probe: test.echo
    with: {refuse: "${{ vars.refuse }}"}
    expect: {outcome: denied}
  - id: denied-login
    probe: test.echo
    with: {refuse: true}
    expect: {outcome: denied}
  - id: use
    probe: test.echo
    with: {token: "${{ steps.denied-login.outputs.token }}"}
  - id: make
    probe: test.create
    with: {name: thing, undo_refuse: "${{ vars.stuck }}"}
cleanup:
  - {id: tidy, probe: test.echo, with: {value: "${{ steps.make.outputs.name }}"}}
"""


@pytest.fixture(autouse=True)
def _fresh_inventory() -> Iterator[None]:
    Inventory.reset()
    yield
    Inventory.reset()


def stored(runs: Sequence[Run]) -> list[Run]:
    """The runs as ``compare --store`` would get them: each written to JSON text and read back."""
    texts = [json.dumps(to_record(run)) for run in runs]
    return [from_record(Run, json.loads(text)) for text in texts]


def records(findings: Sequence[Finding]) -> list[dict[str, object]]:
    return [to_record(f) for f in findings]


def test_stored_runs_give_the_findings_live_runs_give(tmp_path: Path) -> None:
    plan = build(tmp_path, ENVS, SCENARIO)
    (live,) = Runner(registry(), Redactor(), step_timeout=5).run(plan)
    staging, production = live.runs

    observed = {o.step: o.outcome for o in staging.observations}
    assert observed == {
        "login": Outcome.ALLOWED,
        "lease": Outcome.ALLOWED,
        "session": Outcome.ALLOWED,
        "forbidden": Outcome.ALLOWED,
        "denied-login": Outcome.DENIED,
        "use": Outcome.SKIPPED,
        "make": Outcome.ALLOWED,
    }
    assert [o.step for o in production.cleanup] == ["tidy", "undo.1"]
    assert production.cleanup[1].outcome is Outcome.DENIED  # production refuses to remove what was made

    now = compare(live.spec, live.runs)
    assert {(f.category, f.severity, f.step, f.field) for f in now.findings} == {
        (Category.EXPECTATION_VIOLATION, Severity.HIGH, "forbidden", "outcome"),
        (Category.CLEANUP_FAILED, Severity.HIGH, "undo.1", None),
        (Category.GRANT_MISMATCH, Severity.MEDIUM, "login", "ttl"),
        (Category.GRANT_MISMATCH, Severity.MEDIUM, "session", "ttl"),
        (Category.INCONCLUSIVE, Severity.MEDIUM, "use", None),
    }

    later = stored(live.runs)
    # Compared from the stored runs alone: the spec is the one the first run recorded.
    then = compare(later[0].spec, later)
    assert records(then.findings) == records(now.findings)
    assert to_record(then) == to_record(now)
    # The whole comparison reads back as well.
    assert to_record(from_record(Comparison, json.loads(json.dumps(to_record(now))))) == to_record(now)
    # Each run reads back equal (this scenario's outputs hold a secret, which reads back withheld).
    for before, after in zip(live.runs, later, strict=True):
        assert (after.id, after.spec, after.env, after.started_at) == (
            before.id,
            before.spec,
            before.env,
            before.started_at,
        )
        assert [o.outcome for o in after.observations] == [o.outcome for o in before.observations]
        assert [o.grant for o in after.observations] == [o.grant for o in before.observations]


def test_the_pipeline_finds_what_stored_runs_find(tmp_path: Path) -> None:
    plan = build(tmp_path, ENVS, SCENARIO)
    report = execute(plan, Redactor(), registry(), 5)
    (comparison,) = report.comparisons
    later = stored(comparison.runs)
    assert records(compare(later[0].spec, later).findings) == records(comparison.findings)
    assert len(comparison.findings) == 5


def test_runs_of_different_texts_of_one_scenario_are_config_drift_live_and_stored(tmp_path: Path) -> None:
    text = "id: drift\nsteps:\n  - {id: a, probe: test.echo, expect: {outcome: allowed}}\n"
    edited = text.replace("{outcome: allowed}", "{outcome: allowed, ttl: {max: 1h}}")
    (first,) = Runner(registry(), Redactor()).run(build(tmp_path / "first", ENVS, text))
    (second,) = Runner(registry(), Redactor()).run(build(tmp_path / "second", ENVS, edited))
    assert first.spec.digest != second.spec.digest
    runs = [first.runs[0], second.runs[1]]  # staging ran one text, production the other

    now = compare(first.spec, runs)
    (drift,) = [f for f in now.findings if f.category is Category.CONFIG_DRIFT]
    assert (drift.severity, drift.step, drift.field) == (Severity.MEDIUM, None, "scenario")
    assert dict(drift.environments) == {
        "staging": first.spec.digest[:12],
        "production": second.spec.digest[:12],
    }

    later = stored(runs)
    assert records(compare(later[0].spec, later).findings) == records(now.findings)
    # The same text everywhere: no drift.
    same = stored(first.runs)
    assert Category.CONFIG_DRIFT not in {f.category for f in compare(same[0].spec, same).findings}
