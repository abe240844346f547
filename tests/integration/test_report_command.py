"""``parityprobe report`` and the trend, against real stores (SQLite in a temporary file, the session's
PostgreSQL): each point of the trend says what ``compare --store`` says of the runs stored before it; a gap
that appears on day 2 and is fixed on day 4 shows as such; each run is read once however many points pair
it; an accepted divergence counts for nothing until the day after it expires. The command writes HTML, JUnit
and JSON in one invocation, no secret in any, and keeps compare's exit codes."""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event

from parityprobe.cli import main
from parityprobe.grant import Grant
from parityprobe.model import Category, Observation, Outcome, Run, Severity, Tier
from parityprobe.report.divergences import Declaration
from parityprobe.report.trend import trend
from parityprobe.secret import Secret
from parityprobe.spec import EnvironmentFacts, ScenarioSpec, StepSpec
from parityprobe.store import ResultStore

ENVS = ("staging", "production")
DAY0 = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday, midnight UTC
SPEC = ScenarioSpec(
    "forbidden-calls", "d1", steps=(StepSpec("login", "test.login"), StepSpec("read", "test.read"))
)
GAP_DAYS = {2, 3}  # staging allows the forbidden read on these days; fixed from day 4


def made(env: str, at: datetime, gap: bool, token: str = "") -> Run:
    """Two steps: a login with a grant, and a read production denies (staging too, unless ``gap``)."""
    run_id = secrets.token_hex(6)
    read = Outcome.ALLOWED if gap and env == "staging" else Outcome.DENIED
    outputs = {"token": Secret(token, "token")} if token else {}
    steps = (
        Observation("login", "test.login", env, f"c-{run_id}-0", Outcome.ALLOWED, at, latency_ms=4.5,
                    grant=Grant(ttl_seconds=3600, policies=frozenset({"default"})), outputs=outputs),
        Observation("read", "test.read", env, f"c-{run_id}-1", read, at + timedelta(seconds=1),
                    reason=None if read is Outcome.ALLOWED else "permission denied", latency_ms=2.0),
    )  # fmt: skip
    tier = Tier.STAGING if env == "staging" else Tier.PRODUCTION
    facts = EnvironmentFacts(env, tier, {"team": "payments"})
    return Run(run_id, SPEC, facts, at, at + timedelta(seconds=2), steps)


def week(start: datetime, days: int = 6) -> list[Run]:
    """Each day from ``start``, at 06:00, a run in each environment (the gap on :data:`GAP_DAYS`)."""
    return [
        made(env, start + timedelta(days=day, hours=6, minutes=i), gap=day in GAP_DAYS)
        for day in range(days)
        for i, env in enumerate(ENVS)
    ]


@pytest.fixture
def store(url: str) -> Iterator[ResultStore]:
    opened = ResultStore(url)
    yield opened
    opened.close()


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def compare_says(runs: list[Run], path: Path) -> dict[str, Any]:
    """The summary ``compare --store`` prints for exactly these runs, in a store of their own."""
    alone = ResultStore(f"sqlite:///{path}")
    try:
        for run in runs:
            alone.write(run)
    finally:
        alone.close()
    code, out, err = invoke("compare", "--store", f"sqlite:///{path}", "--since", "36500d",
                            "--env", "staging", "--env", "production", "--format", "json")  # fmt: skip
    assert code in (0, 1), err
    summary: dict[str, Any] = json.loads(out)["summary"]
    return summary


def test_each_point_says_what_compare_store_said_of_the_runs_before_it(
    store: ResultStore, tmp_path: Path
) -> None:
    runs = week(DAY0)
    for run in runs:
        store.write(run)
    until = DAY0 + timedelta(days=9)  # days 6-8 have no new runs: their points pair day 5's again
    points = trend(store, DAY0, until, environments=list(ENVS))
    assert [p.at for p in points] == [DAY0 + timedelta(days=d) for d in range(1, 10)]
    # The gap appears with day 2's runs and is gone with day 4's.
    assert [p.causes for p in points] == [0, 0, 1, 1, 0, 0, 0, 0, 0]
    for i, point in enumerate(points):
        said = compare_says([r for r in runs if r.started_at < point.at], tmp_path / f"at-{i}.db")
        assert point.runs == said["runs"] == 2
        assert point.causes == said["causes"]
        assert {s.value: n for s, n in point.by_severity.items()} == said["by_severity"]
    assert sum(points[2].by_severity.values()) == 1


def test_a_run_is_read_once_however_many_points_pair_it(store: ResultStore) -> None:
    for run in week(DAY0):
        store.write(run)
    asked: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "runs.record" in statement:  # what runs_by_id reads; run heads never select the record
            asked.append(len(parameters))

    event.listen(store.engine, "before_cursor_execute", count)
    points = trend(store, DAY0, DAY0 + timedelta(days=9), environments=list(ENVS))
    assert len(points) == 9  # nine points, of two runs each
    assert sum(asked) == 12  # every stored run read once: not 9 x 2


def test_an_empty_window_has_no_points_and_points_before_the_first_run_are_left_out(
    store: ResultStore,
) -> None:
    assert trend(store, DAY0, DAY0 + timedelta(days=5)) == ()
    for run in week(DAY0 + timedelta(days=3), days=1):
        store.write(run)
    points = trend(store, DAY0, DAY0 + timedelta(days=5), environments=list(ENVS))
    assert [p.at for p in points] == [DAY0 + timedelta(days=4), DAY0 + timedelta(days=5)]


def test_an_accepted_gap_counts_for_nothing_until_its_acceptance_expires(store: ResultStore) -> None:
    for run in week(DAY0):
        store.write(run)
    accepted = Declaration(
        "forbidden-calls", "read", Category.OUTCOME_MISMATCH, None, (), "migration", "platform-team",
        expires=date(2025, 1, 8), source="divergences.yaml:1",
    )  # fmt: skip
    points = trend(store, DAY0, DAY0 + timedelta(days=6), environments=list(ENVS), divergences=[accepted])
    # Day 2 (the 8th) is the expiry day, still accepted; day 3 (the 9th) counts the gap again.
    assert [p.causes for p in points] == [0, 0, 0, 1, 0, 0]


# ---------------------------------------------------------------- the command


def test_report_writes_html_junit_and_json_at_once(url: str, tmp_path: Path) -> None:
    token = "s." + secrets.token_urlsafe(24)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    store = ResultStore(url)
    try:
        # Days -6 .. -1 from today; the gap days (2, 3 from the start) are days -4 and -3: fixed since.
        for run in week(today - timedelta(days=6)):
            store.write(run)
        # Today's latest runs: staging allows the read again, with a secret among its outputs.
        later = datetime.now(UTC) - timedelta(minutes=5)
        for env in ENVS:
            store.write(made(env, later, gap=True, token=token))
    finally:
        store.close()
    where = ["--store", url, "--since", "7d", "--env", "staging", "--env", "production"]
    html, junit, document = tmp_path / "r" / "report.html", tmp_path / "junit.xml", tmp_path / "report.json"
    code, out, err = invoke("report", *where, "-o", html, "-o", junit, "-o", document)
    compared = invoke("compare", *where, "--format", "json")
    assert code == compared[0] == 1, err
    assert out == ""
    for path, fmt in ((html, "html"), (junit, "junit"), (document, "json")):
        assert f"report written to {path} ({fmt})" in err
        assert token not in path.read_text(encoding="utf-8")
    written = json.loads(document.read_text(encoding="utf-8"))
    assert written["summary"] == json.loads(compared[1])["summary"]
    assert written["summary"]["causes"] == 1 and written["exit_code"] == 1
    trend_causes = [point["causes"] for point in written["trend"]]
    assert len(trend_causes) == 7 and max(trend_causes) >= 1 and trend_causes[-1] == 1
    assert ET.fromstring(junit.read_text(encoding="utf-8")).tag in ("testsuites", "testsuite")
    assert "<html" in html.read_text(encoding="utf-8").lower()
    # Without -o: the terminal report on standard output.
    code, out, _ = invoke("report", *where, "--no-color")
    assert code == 1 and "Verdict:" in out and token not in out
    trend_line = next(line for line in out.splitlines() if line.startswith("Trend since"))
    assert " ".join(map(str, trend_causes)) in trend_line


def test_report_refuses_bad_input_and_says_when_the_store_is_empty(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    code, _, err = invoke("report", "--store", empty, "-o", tmp_path / "a.html", "-o", tmp_path / "b.docx")
    assert code == 2 and "b.docx" in err and "'-o' / '--output'" in err
    for since in ("yesterday", "0s", "9999999999d"):
        code, _, err = invoke("report", "--store", empty, "--since", since)
        assert code == 2 and "--since" in err and "Traceback" not in err
    code, _, err = invoke("report", "--since", "7d")
    assert code == 2 and "--store" in err
    code, _, err = invoke("report", "--store", empty, "--scenario", "token-fetch")
    assert code == 3 and "no stored runs in the last 7d of token-fetch" in err


def test_severity_counts_hold_every_member(store: ResultStore) -> None:
    for run in week(DAY0):
        store.write(run)
    (point,) = [p for p in trend(store, DAY0, DAY0 + timedelta(days=3), environments=list(ENVS)) if p.causes]
    assert set(point.by_severity) == set(Severity)
