"""Accepted divergences: the file validated and located like every input, declarations matched to findings
(globs, environments, expiry against an injected day), and what reports and the exit code make of them,
down to ``parityprobe run --divergences`` over loopback HTTP servers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.config.divergences import load_divergences
from parityprobe.errors import InputError
from parityprobe.model import Category, Comparison, ExitCode, Finding, Outcome, Report, Severity
from parityprobe.redact import Redactor
from parityprobe.report import REPORT_SCHEMA, build_view, render
from parityprobe.report.divergences import Declaration, apply, matches
from parityprobe.secret import Secret
from tests.fault_server import FaultServer, Reply, two_http_apis
from tests.unit.test_reports import SPECS, STEPS, T0, check, obs, run

TODAY = date(2026, 6, 1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "divergences.yaml"
    path.write_text(text)
    return path


def declaration(**kw: object) -> Declaration:
    fields: dict[str, object] = {
        "scenario": "forbidden-calls",
        "step": None,
        "category": Category.GRANT_MISMATCH,
        "field": None,
        "environments": (),
        "reason": "staging keeps 24h tokens until the broker moves",
        "owner": "platform-team",
        "expires": date(2026, 12, 31),
        "source": "divergences.yaml:2",
    }
    fields.update(kw)
    return Declaration(**fields)  # type: ignore[arg-type]


def ttl(step: str | None = "login", scenario: str = "forbidden-calls") -> Finding:
    return Finding(
        Category.GRANT_MISMATCH,
        Severity.MEDIUM,
        scenario,
        step,
        {"staging": "24h", "production": "1h"},
        "token lifetimes differ",
        field="ttl",
    )


def forbidden(step: str = "read-other-team") -> Finding:
    return Finding(
        Category.OUTCOME_MISMATCH,
        Severity.HIGH,
        "forbidden-calls",
        step,
        {"staging": "allowed", "production": "denied (permission denied)"},
        "staging allows a forbidden read",
        field="outcome",
    )


def report_of(*findings: Finding) -> Report:
    runs = tuple(
        run(env, "forbidden-calls", tuple(obs(env, s, Outcome.DENIED) for s in STEPS))
        for env in ("staging", "production")
    )
    return Report(T0, (Comparison(SPECS["forbidden-calls"], runs, findings),))


# ---------------------------------------------------------------- the file


GOOD = """\
divergences:
  - scenario: forbidden-calls
    step: "login*"
    category: grant_mismatch
    field: ttl
    environments: [staging]
    reason: staging keeps 24h tokens until the broker moves
    owner: platform-team
    expires: 2026-12-31
"""


def test_a_valid_file_loads_with_where_each_declaration_is(tmp_path: Path) -> None:
    (loaded,) = load_divergences(write(tmp_path, GOOD))
    assert loaded == declaration(step="login*", field="ttl", environments=("staging",))


@pytest.mark.parametrize(
    ("replace", "by", "line", "field", "message"),
    [
        (
            "    owner: platform-team\n",
            "    owner: platform-team\n    onwer: x\n",
            9,
            "divergences[0].onwer",
            "unknown field",
        ),
        ("2026-12-31", "2026-13-01", 9, "divergences[0].expires", "expected an ISO date (YYYY-MM-DD)"),
        ("2026-12-31", "20261231", 9, "divergences[0].expires", "expected an ISO date (YYYY-MM-DD)"),
        ("grant_mismatch", "grant_mismatc", 4, "divergences[0].category", "grant_mismatch"),
        ("    owner: platform-team\n", "", 2, "divergences[0].owner", "required field is missing"),
        ("owner: platform-team", "owner: '  '", 8, "divergences[0].owner", "must not be blank"),
    ],
)
def test_every_problem_names_file_line_and_field(
    tmp_path: Path, replace: str, by: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path, GOOD.replace(replace, by))
    with pytest.raises(InputError) as caught:
        load_divergences(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (path, line, field)
    assert message in problem.message
    assert str(problem).startswith(f"{path}:{line}: {field}: ")


def test_a_file_without_the_list_is_refused_located(tmp_path: Path) -> None:
    path = write(tmp_path, "- scenario: x\n")
    with pytest.raises(InputError) as caught:
        load_divergences(path)
    assert str(caught.value.problems[0]).startswith(f"{path}:1: expected a mapping")


# ---------------------------------------------------------------- matching


def test_globs_match_scenarios_and_steps() -> None:
    assert matches(declaration(step="log*"), ttl("login"))
    assert matches(declaration(scenario="forbidden-*", step="login"), ttl("login"))
    assert not matches(declaration(step="log*"), ttl("read-own"))
    assert not matches(declaration(scenario="other-*"), ttl())
    # A finding on the whole scenario only matches a declaration that names no step.
    assert matches(declaration(), ttl(None))
    assert not matches(declaration(step="*"), ttl(None))


def test_category_and_field_must_agree() -> None:
    assert not matches(declaration(category=Category.OUTCOME_MISMATCH), ttl())
    assert matches(declaration(field="ttl"), ttl())
    assert not matches(declaration(field="policies"), ttl())


def test_every_named_environment_must_be_in_the_finding() -> None:
    assert matches(declaration(environments=("staging",)), ttl())
    assert matches(declaration(environments=("staging", "production")), ttl())
    assert not matches(declaration(environments=("staging", "dev")), ttl())


def test_apply_sorts_accepted_expired_and_unmatched() -> None:
    live = declaration(step="login", source="d.yaml:2")
    old = declaration(category=Category.OUTCOME_MISMATCH, expires=date(2026, 5, 31), source="d.yaml:10")
    unused = declaration(scenario="nothing-like-it", source="d.yaml:18")
    findings = (ttl("login"), ttl("read-own"), forbidden())
    applied = apply(findings, (live, old, unused), TODAY)
    assert [(m.finding, m.declaration) for m in applied.accepted] == [(findings[0], live)]
    assert applied.counted == findings[1:]
    assert [(m.finding, m.declaration) for m in applied.expired] == [(findings[2], old)]
    assert applied.unmatched == (unused,)
    assert applied.expired_note(findings[2]) == "accepted until 2026-05-31 (expired)"
    assert applied.expired_note(findings[1]) is None


def test_the_expiry_day_itself_still_holds() -> None:
    last_day = declaration(expires=TODAY)
    assert apply((ttl(),), (last_day,), TODAY).accepted
    assert not apply((ttl(),), (last_day,), date(2026, 6, 2)).accepted


# ---------------------------------------------------------------- reports


def test_the_only_finding_accepted_makes_the_report_pass() -> None:
    report = report_of(ttl())
    assert report.exit_code is ExitCode.FINDINGS
    view = build_view(report, (declaration(),), TODAY)
    assert view.verdict.exit_code is ExitCode.OK
    assert view.summary.causes == view.summary.findings == 0
    assert not view.causes and not view.scenarios[0].findings
    assert not any(row.flagged for row in view.scenarios[0].rows)
    (accepted,) = view.accepted
    assert (accepted.owner, accepted.expires, accepted.source) == (
        "platform-team",
        "2026-12-31",
        "divergences.yaml:2",
    )
    text = render(report, "terminal", Redactor(), divergences=(declaration(),))
    assert "Accepted divergences (1)" in text
    assert "platform-team, until 2026-12-31: staging keeps 24h tokens" in text
    assert "Verdict: NO PARITY GAPS FOUND (exit 0)" in text


def test_a_cause_stays_with_its_occurrences_nobody_accepted() -> None:
    report = report_of(ttl("login"), ttl("read-own"), forbidden())
    view = build_view(report, (declaration(step="login"),), TODAY)
    assert view.verdict.exit_code is ExitCode.FINDINGS
    ttl_cause = next(c for c in view.causes if c.cause.category is Category.GRANT_MISMATCH)
    assert ttl_cause.cause.places == ("forbidden-calls/read-own",)
    assert view.summary.findings == 2 and view.summary.causes == 2
    assert [a.shown.finding.step for a in view.accepted] == ["login"]


def test_an_expired_acceptance_counts_again_flagged() -> None:
    report = report_of(ttl())
    expired = declaration(expires=date(2026, 1, 31))
    view = build_view(report, (expired,), TODAY)
    assert view.verdict.exit_code is ExitCode.FINDINGS
    assert not view.accepted
    (cause,) = view.causes
    assert cause.shown.note == "accepted until 2026-01-31 (expired)"
    assert view.scenarios[0].findings[0].note == "accepted until 2026-01-31 (expired)"
    assert [e.owner for e in view.expired] == ["platform-team"]
    # Without a day given, the report's own (T0, in 2025) is "today": there the declaration still held.
    assert "Accepted divergences (1)" in render(report, "terminal", Redactor(), divergences=(expired,))
    term = render_terminal_on(report, expired, TODAY)
    assert "accepted until 2026-01-31 (expired)" in term
    assert "Verdict: PARITY GAPS FOUND (exit 1)" in term


def render_terminal_on(report: Report, declared: Declaration, today: date) -> str:
    from parityprobe.report.renderer import RenderOptions
    from parityprobe.report.terminal import TerminalRenderer

    return TerminalRenderer().render(build_view(report, (declared,), today), Redactor(), RenderOptions())


def test_unmatched_declarations_are_listed_to_be_removed() -> None:
    stale = declaration(scenario="gone", step="login*", field="ttl", source="divergences.yaml:20")
    view = build_view(report_of(forbidden()), (stale,), TODAY)
    (unmatched,) = view.unmatched
    assert unmatched.source == "divergences.yaml:20"
    assert (
        unmatched.description == "gone/login* · grant_mismatch · field ttl (platform-team, until 2026-12-31)"
    )
    text = render(report_of(forbidden()), "terminal", Redactor(), divergences=(stale,))
    assert "Declared divergences that matched nothing (1): remove them" in text
    assert "divergences.yaml:20: gone/login*" in text


def test_json_lists_divergences_within_the_schema_and_redacts_them() -> None:
    token = Secret("s3cr3t-" + secrets.token_hex(8))
    redactor = Redactor()
    redactor.register(token)
    leaky = declaration(reason=f"rotated with {token.reveal()} by hand")
    stale = declaration(scenario="gone", environments=("staging",), source="divergences.yaml:20")
    expired = declaration(category=Category.OUTCOME_MISMATCH, expires=date(2020, 1, 1))
    report = report_of(ttl(), forbidden())
    text = render(report, "json", redactor, divergences=(leaky, stale, expired))
    assert token.reveal() not in text
    doc = json.loads(text)
    assert check(doc, REPORT_SCHEMA) == []
    assert doc["schema"] == "parityprobe.report/v5"
    assert doc["exit_code"] == 1 and doc["summary"]["findings"] == 1 and len(doc["findings"]) == 2
    (accepted,) = doc["divergences"]["accepted"]
    assert accepted["finding"]["field"] == "ttl" and accepted["expires"] == "2026-12-31"
    assert accepted["reason"] == "rotated with *** by hand"
    assert [e["finding"]["field"] for e in doc["divergences"]["expired"]] == ["outcome"]
    (unmatched,) = doc["divergences"]["unmatched"]
    terminal = render(report, "terminal", redactor, width=300, divergences=(leaky, stale, expired))
    assert token.reveal() not in terminal and "rotated with *** by hand" in terminal
    assert unmatched["declared_at"] == "divergences.yaml:20" and unmatched["environments"] == ["staging"]


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def apis(tmp_path: Path) -> Iterator[tuple[FaultServer, FaultServer, Path, Path]]:
    with two_http_apis(tmp_path) as made:
        yield made


ACCEPT = """\
divergences:
  - scenario: api
    step: "re*"
    category: {category}
    field: outcome
    environments: [production]
    reason: production's API is closed until launch
    owner: api-team
    expires: {expires}
"""


def test_run_with_divergences_end_to_end(
    apis: tuple[FaultServer, FaultServer, Path, Path], tmp_path: Path
) -> None:
    staging, production, envs, scenario = apis
    staging.reply = Reply(200, "application/json", b"{}")
    production.reply = Reply(403, "text/plain", b"closed")
    args = ["run", "-e", str(envs), "--quiet", str(scenario)]
    without = CliRunner().invoke(main, args)
    assert without.exit_code == 1, without.output
    category = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).stdout)["findings"][0][
        "category"
    ]

    accepted = write(tmp_path, ACCEPT.format(category=category, expires="2999-12-31"))
    result = CliRunner().invoke(main, [*args, "--divergences", str(accepted)])
    assert result.exit_code == 0, result.output
    assert "Accepted divergences (1)" in result.stdout
    words = " ".join(result.stdout.split())  # the terminal wraps long lines at its width
    assert "api-team, until 2999-12-31: production's API is closed until launch" in words

    expired = write(tmp_path, ACCEPT.format(category=category, expires="2000-01-01"))
    result = CliRunner().invoke(main, [*args, "--divergences", str(expired), "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and len(doc["divergences"]["expired"]) == 1


def test_a_bad_divergences_file_exits_2_before_running_located(
    apis: tuple[FaultServer, FaultServer, Path, Path], tmp_path: Path
) -> None:
    _, _, envs, scenario = apis
    bad = write(tmp_path, ACCEPT.format(category="outcome_mismatch", expires="31/12/2999"))
    result = CliRunner().invoke(
        main, ["run", "-e", str(envs), "-q", "--divergences", str(bad), str(scenario)]
    )
    assert result.exit_code == 2
    assert f"error: {bad}:9: divergences[0].expires: expected an ISO date" in result.stderr
    assert "Traceback" not in result.output
    assert "Verdict" not in result.stdout  # refused before anything ran or was reported


def test_compare_and_demo_take_the_option() -> None:
    for command in ("compare", "demo", "run"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert "--divergences" in result.stdout
