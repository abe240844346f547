"""The Markdown report, built from real model objects and read back through a real Markdown renderer
(inline HTML on, as GitHub renders a comment): content, escaping of what targets say, redaction, size cap."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from parityprobe.model import Category, Comparison, Outcome, Report, Run, Severity
from parityprobe.redact import Redactor
from parityprobe.report import build_view, render
from parityprobe.report.markdown import COMMENT_LIMIT, MarkdownRenderer
from parityprobe.report.renderer import RenderOptions
from parityprobe.secret import Secret
from parityprobe.spec import ScenarioSpec, StepSpec
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
        "2 scenarios · 4 runs · 5 findings (1 inconclusive) · environments: staging, production" in page.text
    )
    assert "By severity: 1 critical · 1 high · 1 medium · 1 low · 1 info" in page.text
    assert "By category: 1 expectation_violation · 1 outcome_mismatch · 1 grant_mismatch" in page.text
    assert "config_drift" not in page.text  # categories without findings are left out

    findings, matrix, quiet = page.tables
    assert findings[0] == [
        *("severity", "scenario", "step", "category"),
        *("staging", "production", "expected", "message"),
    ]
    assert [row[0] for row in findings[1:]] == ["critical", "high", "medium", "low", "info"]
    assert findings[1] == [
        *("critical", "forbidden-calls", "read-other-team", "expectation_violation"),
        *("allowed", "—", "denied", "msg-critical-forbidden"),
    ]
    assert findings[3][4:6] == ["24h", "59m 58s"]

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
    findings, matrix, _ = page.tables
    row = next(r for r in findings if r[0] == "high")
    assert row[5] == f"denied ({shown})"  # the whole value in its own cell, the newline a line break
    assert row[-1] == f"production denied: {shown}"
    assert matrix[3][2] == f"denied ({shown}) · 3.0 ms"
    assert f"outcome_mismatch · step read-other-team · field outcome: {flat}" in page.text
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
    assert "Details of 1 scenario (after) left out:" in page.text
    assert out.count("<details>") == out.count("</details>") == 1  # the cut block is still closed

    # The whole report, when the limit allows it, holds every row of both scenarios and no note.
    whole = MarkdownRenderer(limit=10**7).render(build_view(report), Redactor(), RenderOptions())
    assert len(whole) > COMMENT_LIMIT and "left out" not in whole
    assert [len(t) for t in read(whole).tables] == [len(steps) + 1] * 2


def test_the_findings_table_is_cut_too_when_findings_alone_would_fill_the_comment() -> None:
    many = tuple(
        finding(Category.GRANT_MISMATCH, Severity.MEDIUM, "login", f"m{i} " + "x" * 200) for i in range(800)
    )
    fx = build(many)
    out = render(fx.report, "markdown", fx.redactor)
    assert len(out) <= COMMENT_LIMIT
    page = read(out)
    shown = len(page.tables[0]) - 1
    assert 0 < shown < len(many)
    assert f"{len(many) - shown} more findings left out (GitHub's comment limit)." in page.text


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
