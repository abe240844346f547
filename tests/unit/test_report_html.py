"""The HTML report, built from real model objects and read back with the standard library's HTML parser:
summary, causes, the matrix, latency charts as inline SVG, what targets say as inert text, secrets masked, a
page that loads nothing from the network; and ``parityprobe run --format html -o report.html``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.model import Comparison, Evidence, EvidenceStatus, Report
from parityprobe.redact import Redactor
from parityprobe.report import render
from tests.fault_server import FaultServer, Reply, two_http_apis
from tests.unit.test_report_markdown import HOSTILE, hostile
from tests.unit.test_reports import T0, build, quiet_comparison

# Elements that could run code or fetch something; the report uses none of them.
ACTIVE = {"script", "iframe", "object", "embed", "img", "link", "base", "form", "audio", "video", "image"}


@dataclass
class Page(HTMLParser):
    """A rendered page: every tag and attribute, its text, its tables (rows of cell texts), its charts."""

    tags: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, str | None]] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    charts: dict[str, list[str]] = field(default_factory=dict)  # figcaption → the chart's SVG texts
    _table: str | None = None
    _cell: list[str] | None = None
    _stack: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(tag, k, v) for k, v in attrs]
        self._stack.append(tag)
        css = dict(attrs).get("class") or ""
        if tag == "table":
            self._table = f"{css}#{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("div", "br") and self._cell is not None:
            self._cell.append(" ")  # a line of its own in the cell, as a browser shows it

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        if tag in self._stack:
            del self._stack[len(self._stack) - 1 - self._stack[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._stack and self._stack[-1] == "figcaption":
            self.charts[data.strip()] = []
            self._caption = data.strip()
        elif "svg" in self._stack and self._stack[-1] == "text":
            self.charts[self._caption].append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def table(self, css: str) -> list[list[str]]:
        """The first table whose class is ``css``."""
        return next(rows for name, rows in self.tables.items() if name.split("#")[0] == css)

    def matrices(self) -> list[list[list[str]]]:
        return [rows for name, rows in self.tables.items() if name.startswith("matrix#")]


def read(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def assert_inert(page: Page) -> None:
    """No element that runs code or fetches, no event handler, no link or resource off the page."""
    assert not ACTIVE & set(page.tags), ACTIVE & set(page.tags)
    handlers = [(tag, k) for tag, k, _ in page.attributes if k.lower().startswith("on")]
    assert handlers == []
    for tag, key, value in page.attributes:
        if key in ("href", "src", "xlink:href", "action"):
            assert (value or "").startswith("#"), (tag, key, value)
        assert "javascript:" not in (value or "").lower(), (tag, key, value)


def test_summary_causes_matrix_and_charts() -> None:
    fx = build()
    out = render(fx.report, "html", fx.redactor)
    page = read(out)
    assert out.startswith("<!DOCTYPE html>")
    assert "Verdict: PARITY GAPS FOUND (exit 1); also no verdict for forbidden-calls/assume-break-glass" in (
        page.text
    )
    assert "2 scenarios 4 runs 5 causes 5 findings 1 inconclusive" in " ".join(page.text.split())
    assert page.table("by-severity") == [
        ["critical", "high", "medium", "low", "info"],
        ["1", "1", "1", "1", "1"],
    ]
    by_category = page.table("by-category")
    assert by_category[0] == [
        *("expectation_violation", "outcome_mismatch", "grant_mismatch", "latency_mismatch", "inconclusive")
    ]
    assert by_category[1] == ["1"] * 5  # categories without causes are left out
    for n, where in enumerate(("expectation_violation", "outcome_mismatch · field outcome"), start=1):
        assert f"#{n} {where}" in page.text
    assert "seen in 1 step: forbidden-calls/login" in page.text

    forbidden, who = page.matrices()
    assert forbidden[0] == ["step", "staging", "production"]
    login = forbidden[1]
    assert login[0] == "login medium low"  # the step, then its findings' severities
    assert (
        login[1] == "allowed 12.3 ms ttl 24h policies default, payments identity approle/payments renewable"
    )
    assert login[2].startswith("allowed 40.0 ms ttl 59m 58s")
    sdk = "error: timeout (no answer in 5s) POST https://sts.local/?token=*** [bold]markup[/bold]"
    assert forbidden[4] == ["assume-break-glass info", sdk, "denied (AccessDenied) ttl 1h"]  # SDK's words
    assert who[1] == [
        "caller-identity",
        *(["allowed 8.0 ms identity arn:aws:sts::<account>:assumed-role/app"] * 2),
    ]
    assert "SIEM" not in forbidden[0]  # no step expects evidence: no column for it

    # One chart per step with a latency, a bar per environment that measured one, labelled with its value.
    assert page.tags.count("svg") == 4
    assert page.charts == {
        "login": ["staging", "12.3 ms", "production", "40.0 ms"],
        "read-own": ["staging", "3.0 ms", "production", "4.0 ms"],
        "read-other-team": ["staging", "2.5 ms", "production", "3.1 ms"],
        "caller-identity": ["staging", "8.0 ms", "production", "8.0 ms"],
    }
    widths = [float(v or 0) for tag, k, v in page.attributes if tag == "rect" and k == "width"]
    assert max(widths[:6]) == widths[1]  # production's 40 ms login is the scenario's longest bar
    assert widths[0] == pytest.approx(widths[1] * 12.3 / 40.0, rel=0.01)  # shown rounded to 0.1 ms
    assert_inert(page)
    assert fx.secret_value not in out and fx.leaked_value not in out


def test_what_targets_say_is_inert_text_and_secrets_are_masked() -> None:
    fx = hostile()
    out = render(fx.report, "html", fx.redactor)
    page = read(out)
    assert_inert(page)
    assert "<script>alert(1)</script>" in page.text
    assert "<img src=x onerror=alert(1)>" in page.text
    assert "[click](javascript:alert(1))" in page.text
    assert fx.secret not in out and fx.secret[:12] not in out
    assert "token=***" in page.text
    first_line = HOSTILE.splitlines()[0]
    # In the causes, the scenario's findings and the matrix cell: every place production's words are shown.
    assert page.text.count(first_line) >= 6
    assert "<script" not in out.lower().replace("&lt;script", "")


def test_no_findings_says_so_and_every_value_stays_escaped_in_attributes() -> None:
    report = Report(T0, (quiet_comparison(),))
    out = render(report, "html", Redactor())
    page = read(out)
    assert "Verdict: NO PARITY GAPS FOUND (exit 0)" in page.text and "No findings." in page.text
    assert page.table("by-severity")[1] == ["0"] * 5
    # A chart's accessible name is an attribute: a quote from a step or environment name must not end it.
    assert ("svg", "aria-label", "caller-identity: staging 8.0 ms, production 8.0 ms") in page.attributes


def test_siem_receipts_get_a_column_of_their_own() -> None:
    def evidence(step: str, status: EvidenceStatus, seconds: float | None) -> Evidence:
        at = T0 + timedelta(seconds=seconds) if seconds is not None else None
        window_end = T0 + timedelta(seconds=15)
        return Evidence(step, 0, "logs", f"pp-{step}", "present", {}, status, T0, T0, window_end, event_at=at)

    quiet = quiet_comparison()
    staging, production = quiet.runs
    received = evidence("caller-identity", EvidenceStatus.RECEIVED, 1.5)
    missing = evidence("caller-identity", EvidenceStatus.MISSING, None)
    runs = (
        dataclasses.replace(staging, evidence=(received,)),
        dataclasses.replace(production, evidence=(missing,)),
    )
    report = Report(T0, (Comparison(quiet.spec, runs, quiet.findings),))
    (matrix,) = read(render(report, "html", Redactor())).matrices()
    assert matrix[0] == ["step", "staging", "production", "SIEM"]
    siem = matrix[1][3]
    assert siem.startswith("staging: received") and "production: missing" in siem


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def apis(tmp_path: Path) -> Iterator[tuple[FaultServer, FaultServer, Path, Path]]:
    with two_http_apis(tmp_path) as made:
        yield made


def test_run_writes_the_html_report(
    apis: tuple[FaultServer, FaultServer, Path, Path], tmp_path: Path
) -> None:
    staging, production, envs, scenario = apis
    staging.reply = Reply(200, "application/json", b"{}")
    production.reply = Reply(403, "text/plain", b"<script>alert(1)</script><img src=x onerror=alert(1)>")
    output = tmp_path / "out" / "report.html"
    args = ["run", "-e", str(envs), "--quiet", "--format", "html", "-o", str(output), str(scenario)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # the report went to the file
    page = read(output.read_text(encoding="utf-8"))
    assert "Verdict: PARITY GAPS FOUND (exit 1)" in page.text
    (matrix,) = page.matrices()
    assert matrix[0] == ["step", "staging", "production"]
    assert matrix[1][1].startswith("allowed") and matrix[1][2].startswith("denied")
    assert list(page.charts) == ["read"]
    assert_inert(page)
