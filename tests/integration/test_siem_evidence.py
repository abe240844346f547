"""SIEM evidence through the running lab: each environment's OpenBao audit log read directly (``file``) and
through the lab's forwarder in CloudWatch Logs (``logs``); present and absent expectations, matching, the
staging forwarder that drops denied requests, one query per connector per poll, and a SIEM that is down
giving no verdict, never a gap nor a receipt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parityprobe.lab.servers import free_port
from parityprobe.lab.state import LabState
from parityprobe.model import Category, EvidenceStatus, Report, Run
from parityprobe.pipeline import execute, plan
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from tests.integration.test_end_to_end import edited_environments

pytestmark = pytest.mark.lab

SCENARIO = """\
id: siem-evidence
steps:
  - id: login
    probe: vault.approle_login
    siem:
      - {connector: audit, match: {type: response, request.path: auth/approle/login}, within: 10s}
      - {connector: logs, match: {type: response}, within: 10s}
  - id: read-other
    probe: vault.kv_read
    with: {token: "${{ steps.login.outputs.token }}", path: security/db}
    expect: {outcome: denied}
    siem:
      - {connector: audit, match: {error: "*"}, within: 10s}
      - {connector: logs, match: {error: "*"}, within: 10s}
      # A denied read is never a response carrying data: nothing of that shape may be logged.
      - {connector: audit, match: {response.data.data: "*"}, within: 3s, expect: absent}
"""


@pytest.fixture(scope="module")
def report(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    folder = tmp_path_factory.mktemp("siem")
    (folder / "siem.yaml").write_text(SCENARIO)
    redactor, registry = Redactor(), ProbeRegistry()
    yield execute(plan(lab.environments_file, [folder / "siem.yaml"], redactor, registry), redactor, registry)


def runs(report: Report) -> dict[str, Run]:
    (comparison,) = report.comparisons
    return {run.environment: run for run in comparison.runs}


def statuses(run: Run) -> list[tuple[str, int, str, EvidenceStatus]]:
    return [(e.step, e.index, e.connector, e.status) for e in run.evidence]


def test_each_expectation_is_decided_per_connector(report: Report) -> None:
    received, missing = EvidenceStatus.RECEIVED, EvidenceStatus.MISSING
    by_env = runs(report)
    assert statuses(by_env["production"]) == [
        ("login", 0, "audit", received),
        ("login", 1, "logs", received),
        ("read-other", 0, "audit", received),
        ("read-other", 1, "logs", received),
        ("read-other", 2, "audit", missing),
    ]
    # Staging's forwarder ships only successes: the denial is in its audit log, not in its SIEM.
    assert statuses(by_env["staging"]) == [
        ("login", 0, "audit", received),
        ("login", 1, "logs", received),
        ("read-other", 0, "audit", received),
        ("read-other", 1, "logs", missing),
        ("read-other", 2, "audit", missing),
    ]
    for run in by_env.values():
        for e in run.evidence:
            assert e.correlation_id == run.observation(e.step).correlation_id  # type: ignore[union-attr]
            if e.status is received:
                assert e.events >= 1 and e.event_at is not None and e.receipt_seconds is not None
                assert e.receipt_seconds < 10 and e.seen_after_seconds is not None
    (gap,) = [f for f in report.findings if f.category is Category.EVIDENCE_GAP]
    assert (gap.step, gap.field, gap.severity.value) == ("read-other", "siem[1]", "medium")
    assert gap.message.startswith("staging: no SIEM event") and "connector logs" in gap.message
    assert by_env["staging"].observation("read-other").correlation_id in gap.message  # type: ignore[union-attr]


def test_the_wait_asks_each_connector_once_per_poll_for_all_its_ids(report: Report) -> None:
    """Each connector answered all its expectations from one series of polls (one search for every id per
    poll): the expectations found at once share the first poll, and none needed more polls than the
    backoff allows in its 10 seconds."""
    for run in runs(report).values():
        for connector in ("audit", "logs"):
            polls = [e.polls for e in run.evidence if e.connector == connector]
            assert polls and all(1 <= n <= 8 for n in polls)
        received = [e for e in run.evidence if e.status is EvidenceStatus.RECEIVED and e.connector == "audit"]
        assert len(received) >= 2 and {e.polls for e in received} == {1}


def test_a_siem_that_is_down_gives_no_verdict(lab: LabState, tmp_path: Path) -> None:
    """CloudWatch Logs unreachable in production: its expectations have no verdict (inconclusive), never a
    gap, and the other connector still decides."""
    down = f"http://127.0.0.1:{free_port()}"
    moto = lab.server("production", "moto").url
    text = lab.environments_file.read_text()
    # The siem section's endpoint comes after the aws section's: replace the second occurrence.
    first = text.index(moto)
    second = text.index(moto, first + 1)
    edited = tmp_path / "edited"
    edited.mkdir()
    copy = edited_environments(
        lab, edited, text[second - 30 : second + len(moto)], text[second - 30 : second] + down
    )
    (tmp_path / "siem.yaml").write_text(SCENARIO)
    redactor, registry = Redactor(), ProbeRegistry()
    report = execute(plan(copy, [tmp_path / "siem.yaml"], redactor, registry), redactor, registry)
    production = runs(report)["production"]
    logs = [e for e in production.evidence if e.connector == "logs"]
    assert logs and all(e.status is EvidenceStatus.NO_VERDICT and e.reason for e in logs)
    assert all(
        e.status is not EvidenceStatus.NO_VERDICT for e in production.evidence if e.connector == "audit"
    )
    categories = {(f.category, f.field) for f in report.findings if f.step == "login"}
    assert (Category.INCONCLUSIVE, "siem[1]") in categories
    assert not [
        f for f in report.findings if f.category is Category.EVIDENCE_GAP and "production" in f.message
    ]
