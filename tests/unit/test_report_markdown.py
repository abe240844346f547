"""The Markdown report, built from real model objects and read back through a real Markdown renderer
(inline HTML on, as GitHub renders a comment): content, escaping of what targets say, redaction, size cap."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from parityprobe.model import Category, Comparison, Outcome, Report, Run, Severity
from parityprobe.redact import Redactor
from parityprobe.report import build_view, render
from parityprobe.report.markdown import COMMENT_LIMIT, MarkdownRenderer, guidance_text
from parityprobe.report.renderer import RenderOptions
from parityprobe.report.view import LatencyNote, ReportView
from parityprobe.secret import Secret
from parityprobe.spec import ScenarioSpec, StepSpec
from tests.report_support import TODAY, declared, decorated
from tests.unit.test_reports import SPECS, STEPS, T0, build, finding, obs, quiet_comparison, run

# What a hostile or broken target could put in a denial reason or an error body.
HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(1)> a|b `tick` **bold** "
    "[click](javascript:alert(1)) @everyone\nsecond line"
)
# GitHub's comment renderer keeps these tags from inline HTML; the report itself uses only them, bare.
OURS = {"p", "strong", "ul", "li", "h3", "table", "thead", "tbody", "tr", "th", "td", "code", "br"}
OURS |= {"details", "summary", "em"}


@dataclass(frozen=True)
class Hostile:
    report: Report
    redactor: Redactor
    secret: str
    text: str  # what the target said, the secret in it


def hostile() -> Hostile:
    """A scenario where production's denial reason, the finding's values, message and explanation, and an
    inconclusive step's message all carry markup, a pipe, a newline and a registered secret."""
    secret = "s.hostile" + secrets.token_urlsafe(20)
    redactor = Redactor([Secret(secret, "vault token")])
    text = f"{HOSTILE} token={secret}"
    staging = tuple(obs("staging", s, Outcome.ALLOWED, latency_ms=2.0) for s in STEPS)
    production = tuple(
        obs("production", s, Outcome.DENIED, reason=text, latency_ms=3.0)
        if s == "read-other-team"
        else obs("production", s, Outcome.ALLOWED, latency_ms=2.5)
        for s in STEPS
    )
    findings = (
        finding(
            Category.OUTCOME_MISMATCH,
            Severity.HIGH,
            "read-other-team",
            f"production denied: {text}",
            values={"staging": "allowed", "production": f"denied ({text})"},
            explanation=text,
            field="outcome",
        ),
        finding(Category.INCONCLUSIVE, Severity.INFO, "login", text, values={"staging": text}),
    )
    comparison = Comparison(
        SPECS["forbidden-calls"],
        (run("staging", "forbidden-calls", staging), run("production", "forbidden-calls", production)),
        findings,
    )
    return Hostile(Report(T0, (comparison, quiet_comparison())), redactor, secret, text)


@dataclass
class Page(HTMLParser):
    """The rendered comment: every tag and attribute met, its text, and its tables as rows of cell texts."""

    tags: set[str] = field(default_factory=set)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)
    _cell: list[str] | None = None

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += attrs
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def read(markdown: str) -> Page:
    """``markdown`` as a comment renderer shows it: CommonMark with tables, inline HTML passed through."""
    page = Page()
    page.feed(MarkdownIt("commonmark").enable("table").render(markdown))
    page.close()
    return page


def test_summary_findings_table_and_details() -> None:
    fx = build()
    out = render(fx.report, "markdown", fx.redactor)
    page = read(out)
    assert "Verdict: PARITY GAPS FOUND (exit 1); also no verdict for forbidden-calls/assume-break-glass" in (
        page.text
    )
    assert (
        "2 scenarios · 4 runs · 5 causes from 5 findings (1 inconclusive) · environments: staging, production"
        in page.text
    )
    assert "By severity: 1 critical · 1 high · 1 medium · 1 low · 1 info" in page.text
    assert "By category: 1 expectation_violation · 1 outcome_mismatch · 1 grant_mismatch" in page.text
    assert "config_drift" not in page.text  # categories without findings are left out

    causes, matrix, quiet = page.tables
    assert "Causes (5, from 5 findings)" in page.text
    assert causes[0] == [
        *("cause", "severity", "category"),
        *("staging", "production", "expected", "message", "seen"),
    ]
    assert [row[:2] for row in causes[1:]] == [
        ["#1", "critical"],
        ["#2", "high"],
        ["#3", "medium"],
        ["#4", "low"],
        ["#5", "info"],
    ]
    assert causes[1] == [
        *("#1", "critical", "expectation_violation"),
        *("allowed", "—", "denied", "msg-critical-forbidden"),
        "1 finding, seen in 1 step: forbidden-calls/read-other-team",
    ]
    assert causes[3][2:5] == ["grant_mismatch · field ttl_seconds", "24h", "59m 58s"]
    # What to do about each cause, as the guidance table says (report.guidance), once per cause.
    view = build_view(fx.report)
    for cause in view.causes:
        assert cause.shown.guidance is not None
        assert f"#{cause.number} · {guidance_text(cause.shown.guidance)}" in page.text
    assert page.text.count("Fix: ") == len(view.causes) == 5

    assert out.count("<details>") == out.count("</details>") == 2
    assert matrix[0] == ["step", "staging", "production"]
    assert matrix[3] == [
        "read-other-team (critical, high)",
        "allowed · 2.5 ms",
        "denied (permission denied) · 3.1 ms",
    ]
    assert matrix[4][1] == "error: timeout (no answer in 5s)"
    assert quiet[1] == ["caller-identity", "allowed · 8.0 ms", "allowed · 8.0 ms"]
    assert "Cleanup in production: 1 of 2 failed: revoke-token error: unreachable (connection refused)" in (
        page.text
    )
    assert "left out" not in page.text  # it all fits
    # The explanation quotes the leaked key: masked, like every secret.
    assert "staging grants billing/db; seen with ***" in page.text
    assert "high · outcome_mismatch · step read-other-team · field outcome · cause #2: because msg-high" in (
        page.text
    )
    for value in (fx.secret_value, fx.leaked_value):
        assert value not in out and value[4:16] not in out


def test_no_findings_says_so() -> None:
    fx = build(())
    page = read(render(fx.report, "markdown", fx.redactor))
    assert "Verdict: NO PARITY GAPS FOUND (exit 0)" in page.text
    assert "No findings." in page.text and "By severity" not in page.text
    assert len(page.tables) == 2  # only the two matrices


def test_what_targets_say_is_inert_text_and_secrets_are_masked() -> None:
    fx = hostile()
    out = render(fx.report, "markdown", fx.redactor)
    assert fx.secret not in out
    lowered = out.lower()
    assert "<script" not in lowered and "<img" not in lowered and "javascript:" not in lowered
    page = read(out)
    # Only the report's own tags were rendered, none with an attribute: no element came from a target.
    assert page.tags <= OURS, page.tags - OURS
    assert page.attributes == []
    shown = HOSTILE + " token=***"  # as a cell shows it: the newline a line break
    flat = shown.replace("\n", "")  # as running text shows it
    assert fx.secret not in page.text
    for table in page.tables:  # a pipe or a newline from a target never splits a cell or a row
        assert {len(row) for row in table} == {len(table[0])}
    causes, matrix, _ = page.tables
    row = next(r for r in causes if r[1] == "high")
    assert row[4] == f"denied ({shown})"  # the whole value in its own cell, the newline a line break
    assert row[-2] == f"production denied: {shown}"
    assert matrix[3][2] == f"denied ({shown}) · 3.0 ms"
    assert f"outcome_mismatch · step read-other-team · field outcome · cause #1: {flat}" in page.text
    # The same characters in the <summary> (an HTML block, where Markdown escapes would show) stay inert.
    spec = ScenarioSpec("hostile", "d", HOSTILE, (StepSpec("s", "vault.kv_read"),))
    runs = (run("staging", "forbidden-calls", ()),)
    odd = Report(T0, (Comparison(spec, runs, ()),))
    summary = read(render(odd, "markdown", Redactor()))
    assert summary.tags <= OURS and summary.attributes == []
    assert f"hostile — {HOSTILE.replace(chr(10), '')}: 1 step, 1 environment" in summary.text


def test_a_long_report_is_cut_under_the_comment_limit_saying_how_much() -> None:
    steps = tuple(f"step-{i:04d}" for i in range(400))
    spec = ScenarioSpec("big", "d", "many steps", tuple(StepSpec(s, "vault.kv_read") for s in steps))
    long_reason = "permission denied on a path with a long name " * 3

    def big_run(env: str) -> Run:
        observations = tuple(obs(env, s, Outcome.DENIED, reason=long_reason, latency_ms=1.0) for s in steps)
        return run(env, "forbidden-calls", observations)

    runs = tuple(big_run(env) for env in ("staging", "production"))
    report = Report(
        T0,
        (
            Comparison(spec, runs, ()),
            Comparison(ScenarioSpec("after", "d", "", spec.steps), runs, ()),
        ),
    )
    out = render(report, "markdown", Redactor())
    assert len(out) <= COMMENT_LIMIT
    page = read(out)
    matrix = page.tables[0]
    shown = len(matrix) - 1
    assert 0 < shown < len(steps)
    assert [row[0] for row in matrix[1:]] == list(steps[:shown])  # cut at the end, in order
    assert f"{len(steps) - shown} of {len(steps)} lines (" in page.text
    assert "characters) left out: GitHub's comment limit." in page.text
    assert "Details of 1 section (after) left out:" in page.text
    assert out.count("<details>") == out.count("</details>") == 1  # the cut block is still closed

    # The whole report, when the limit allows it, holds every row of both scenarios and no note.
    whole = MarkdownRenderer(limit=10**7).render(build_view(report), Redactor(), RenderOptions())
    assert len(whole) > COMMENT_LIMIT and "left out" not in whole
    assert [len(t) for t in read(whole).tables] == [len(steps) + 1] * 2


def test_the_causes_table_is_cut_too_when_causes_alone_would_fill_the_comment() -> None:
    many = tuple(
        finding(Category.GRANT_MISMATCH, Severity.MEDIUM, "login", f"m{i} " + "x" * 200) for i in range(800)
    )
    fx = build(many)
    out = render(fx.report, "markdown", fx.redactor)
    assert len(out) <= COMMENT_LIMIT
    page = read(out)
    shown = len(page.tables[0]) - 1
    assert 0 < shown < len(many)
    assert f"{len(many) - shown} more causes left out (GitHub's comment limit)." in page.text


def test_markdown_latency_keeps_its_unit_and_order() -> None:
    # Steps run in the scenario's order, environments in the runs' order, whatever the observations' order.
    fx = build()
    report = fx.report
    flipped = Comparison(
        report.comparisons[0].spec,
        tuple(reversed(report.comparisons[0].runs)),
        report.comparisons[0].findings,
    )
    page = read(render(Report(T0, (flipped,)), "markdown", fx.redactor))
    matrix = page.tables[1]
    assert matrix[0] == ["step", "production", "staging"]
    assert matrix[1] == ["login (medium, low)", "allowed · 40.0 ms", "allowed · 12.3 ms"]


# ---------------------------------------------------------------- causes, divergences, guidance, latency


def markdown(view: ReportView, redactor: Redactor | None = None, limit: int = COMMENT_LIMIT) -> str:
    return MarkdownRenderer(limit).render(view, redactor or Redactor(), RenderOptions())


def test_causes_divergences_guidance_and_latency_notes_are_shown() -> None:
    view = decorated()
    page = read(markdown(view))
    text = page.text
    assert "1 scenario · 2 runs · 2 causes from 3 findings (0 inconclusive) · 1 accepted" in text
    causes, matrix = page.tables
    assert causes[1] == [
        *("#1", "high", "outcome_mismatch · field outcome", "allowed", "denied"),
        "⚠ accepted until 2026-01-31 (expired) · staging allows a forbidden read",
        "1 finding, seen in 1 step: forbidden-calls/read-other-team",
    ]
    assert causes[2][-1] == "2 findings, seen in 2 steps: forbidden-calls/login, forbidden-calls/read-own"
    # What to do, once per cause, not again under each occurrence.
    assert (
        "#1 · Frameworks: OWASP NHI5:2025 · NIST CSF PR.AA-05 · "
        "Fix: Remove billing/db from the staging policy" in text
    )
    assert "#2 · Frameworks: OWASP NHI7:2025 · Fix: Shorten the role's token_ttl" in text
    assert text.count("Fix: ") == 2
    # The expired acceptance: a line in sight, and the finding flagged where it is explained.
    assert "⚠ Acceptances expired (1): counted again" in text
    assert (
        "⚠ accepted until 2026-01-31 (expired) · outcome_mismatch · step read-other-team · field outcome "
        "in forbidden-calls — security-team: migration (d.yaml:9)" in text
    )
    assert "field outcome · cause #1 · ⚠ accepted until 2026-01-31 (expired): because staging" in text
    # The accepted one, folded away with its owner, expiry, reason and values; not among the causes.
    assert text.count("Accepted divergences (1)") == 1
    accepted_block = markdown(view).split("<summary>Accepted divergences &#40;1&#41;</summary>")[1]
    assert accepted_block.index("read-after-rotate") < accepted_block.index("</details>")
    assert (
        "grant_mismatch · step read-after-rotate · field ttl in forbidden-calls — platform-team, until "
        "2026-12-31: staging keeps 24h tokens (divergences.yaml:2)staging: 24h · production: 1h" in text
    )
    assert "Declared divergences that matched nothing (1): remove them" in text
    assert "d.yaml:20: gone · grant_mismatch (nobody, until 2026-12-31)" in text
    # The judge's doubtful verdicts, in the scenario's details; an agreement says nothing.
    assert "login: latency mismatch: 10x slower" in text
    assert "read-own: insufficient data: 3 of 10 samples" in text
    assert "alike" not in text
    assert [row[0] for row in matrix[1:]] == [
        "login (medium)",
        "read-own (medium)",
        "read-other-team (high)",
        "assume-break-glass",
        "read-after-rotate",
    ]
    assert page.tags <= OURS


def test_steps_with_the_same_latency_sentence_share_a_line() -> None:
    # One run gives every step one sample: the judge says the same on each, and the comment says it once.
    few = "insufficient data: staging has 1 sample and production 1 sample; judging needs at least 10 in each"
    view = decorated()
    (scenario,) = view.scenarios
    note = LatencyNote(("staging", "production"), "insufficient_data", few, {})
    rows = tuple(replace(r, latency=(note,)) if r.step != "login" else r for r in scenario.rows)
    text = read(markdown(replace(view, scenarios=(replace(scenario, rows=rows),)))).text
    assert f"read-own, read-other-team, assume-break-glass, read-after-rotate: {few}" in text
    assert text.count("insufficient data") == 1  # the judge's own words, not said twice
    assert "login: latency mismatch: 10x slower" in text


def test_a_cause_graded_differently_where_it_shows_says_so() -> None:
    # One difference on three steps, graded critical once and high twice: one row, the worst severity.
    steps = ("login", "read-own", "read-other-team")
    graded = tuple(
        finding(
            Category.GRANT_MISMATCH,
            Severity.CRITICAL if step == "read-own" else Severity.HIGH,
            step,
            "lifetimes differ",
            values={"staging": "24h", "production": "1h"},
            field="ttl",
        )
        for step in steps
    )
    # Another TTL gap (other values, so another cause) calls for the same remedy: one line for both.
    other = replace(graded[0], step="read-after-rotate", environments={"staging": "12h", "production": "1h"})
    report = build((*graded, other)).report
    page = read(render(report, "markdown", Redactor()))
    causes = page.tables[0]
    assert len(causes) == 3  # the header and two causes
    assert causes[1][:2] == ["#1", "critical"]
    assert causes[1][-1] == (
        "3 findings, seen in 3 steps: forbidden-calls/login, forbidden-calls/read-own, "
        "forbidden-calls/read-other-team (1 critical, 2 high)"
    )
    assert causes[2][-1] == "1 finding, seen in 1 step: forbidden-calls/read-after-rotate"
    assert "Causes (2, from 4 findings)" in page.text
    first, second = build_view(report).causes
    assert first.shown.guidance is not None and first.shown.guidance == second.shown.guidance
    assert f"#1, #2 · {guidance_text(first.shown.guidance)}" in page.text
    assert page.text.count("Fix: ") == 1


def test_new_text_from_targets_files_and_hints_is_inert_and_masked() -> None:
    secret = "s.hostile" + secrets.token_urlsafe(20)
    redactor = Redactor([Secret(secret, "vault token")])
    say = f" {HOSTILE} token={secret}"
    out = markdown(decorated(say), redactor)
    assert secret not in out
    lowered = out.lower()
    assert "<script" not in lowered and "<img" not in lowered and "javascript:" not in lowered
    assert "`" not in out and "|" not in out.replace("| ", "").replace(" |", "")
    page = read(out)
    assert page.tags <= OURS, page.tags - OURS
    assert page.attributes == []
    for table in page.tables:
        assert {len(row) for row in table} == {len(table[0])}
    shown = f" {HOSTILE} token=***"
    flat = shown.replace("\n", "")
    causes = page.tables[0]
    assert causes[1][-2] == f"⚠ accepted until 2026-01-31 (expired) · staging allows a forbidden read{shown}"
    text = page.text
    for piece in (
        f"Fix: Remove billing/db from the staging policy{flat}",  # a remediation hint
        f"in forbidden-calls — security-team: migration{flat} (d.yaml:9)",  # an expired acceptance
        f"— platform-team{flat}, until 2026-12-31: staging keeps 24h tokens{flat} (divergences.yaml:2)",
        f"gone · grant_mismatch (nobody{flat}, until 2026-12-31)",  # a declaration to remove
        f"login: latency mismatch: 10x slower{flat}",  # latency notes
        f"read-own: insufficient data: 3 of 10 samples{flat}",
    ):
        assert piece in text, piece


def test_divergences_are_cut_under_the_comment_limit_too() -> None:
    many = tuple(
        replace(
            finding(
                Category.GRANT_MISMATCH, Severity.MEDIUM, "login", f"gap {i}", values={"staging": f"{i}h"}
            ),
            field="ttl",
        )
        for i in range(600)
    )
    report = build(many).report
    accept_all = declared(step=None, reason="known " + "r" * 300)
    view = build_view(report, (accept_all,), TODAY)
    assert len(view.accepted) == 600 and not view.causes
    out = markdown(view)
    assert len(out) <= COMMENT_LIMIT
    page = read(out)
    assert "Accepted divergences (600)" in page.text
    assert "lines (" in page.text and "characters) left out: GitHub's comment limit." in page.text
    assert out.count("<details>") == out.count("</details>")  # every block that was cut is still closed
    # Without a limit, all of them are there.
    whole = read(markdown(view, limit=10**7))
    assert whole.text.count("platform-team, until 2026-12-31") == 600
