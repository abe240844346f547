"""Several outputs in one run: each ``-o`` file in the format its suffix names, ``--format`` for standard
output and for suffixes that name none; mistakes refused while options are parsed (exit 2, the file named),
before anything runs; every file redacted; the trend's points (:func:`parityprobe.report.trend.points`)."""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from parityprobe.cli import main
from parityprobe.cli_output import SUFFIX_FORMATS, Output, emit_report, outputs_for
from parityprobe.cli_support import ReportOptions
from parityprobe.report.trend import MAX_POINTS, points
from tests.unit.test_reports import build

ANSI = re.compile(r"\x1b\[")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("r.html", "html"),
        ("r.HTM", "html"),
        ("junit.xml", "junit"),
        ("out.json", "json"),
        ("pr.md", "markdown"),
        ("pr.markdown", "markdown"),
        ("r.txt", "terminal"),
    ],
)
def test_the_suffix_names_the_format(name: str, fmt: str) -> None:
    assert outputs_for([Path(name)], "terminal", fmt_given=False) == (Output(Path(name), fmt),)
    # With another file too, and a --format given: the suffix still decides.
    both = outputs_for([Path(name), Path("other.json")], "markdown", fmt_given=True)
    assert both == (Output(Path(name), fmt), Output(Path("other.json"), "json"))


def test_a_suffix_naming_no_format_takes_format_or_is_refused_naming_the_file() -> None:
    assert outputs_for([Path("a.html"), Path("b.log")], "json", fmt_given=True)[1] == Output(
        Path("b.log"), "json"
    )
    with pytest.raises(ValueError, match=r"b\.log: its suffix '\.log' names no report format"):
        outputs_for([Path("a.html"), Path("b.log")], "terminal", fmt_given=False)
    with pytest.raises(ValueError, match="report: its name, without a suffix,"):
        outputs_for([Path("report")], "terminal", fmt_given=False)
    with pytest.raises(ValueError, match=r"a\.html is given twice"):
        outputs_for([Path("a.html"), Path("a.html")], "terminal", fmt_given=False)


def test_format_with_one_output_keeps_its_meaning_whatever_the_suffix() -> None:
    assert outputs_for([Path("findings.txt")], "json", fmt_given=True) == (
        Output(Path("findings.txt"), "json"),
    )


def test_every_output_suffix_is_a_built_in_format() -> None:
    assert set(SUFFIX_FORMATS.values()) == {"terminal", "json", "markdown", "junit", "html"}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["run", "demo", "compare", "report"])
def test_an_unknown_suffix_is_a_usage_error_before_anything_runs(command: str, tmp_path: Path) -> None:
    # The environments file does not exist and no lab or store is there: exit 2 naming -o proves the
    # outputs were refused at parsing, before the command looked at anything.
    where = {
        "run": ["-e", str(tmp_path / "missing.yaml"), str(tmp_path)],
        "demo": ["--dir", str(tmp_path / "lab")],
        "compare": ["--store", f"sqlite:///{tmp_path / 'r.db'}"],
        "report": ["--store", f"sqlite:///{tmp_path / 'r.db'}"],
    }[command]
    pdf = tmp_path / "report.pdf"
    code, _, err = invoke(command, "-o", str(tmp_path / "a.html"), "-o", str(pdf), *where)
    assert code == 2
    assert "'-o' / '--output'" in err and f"{pdf}: its suffix '.pdf'" in err
    assert not (tmp_path / "lab").exists() and not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("order", ["format first", "format last"])
def test_format_lets_an_unknown_suffix_through_whichever_option_comes_first(
    order: str, tmp_path: Path
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'r.db'}"]
    fmt, out = ["--format", "json"], ["-o", str(tmp_path / "report.pdf"), "-o", str(tmp_path / "j.xml")]
    args = [*fmt, *out] if order == "format first" else [*out, *fmt]
    code, _, err = invoke("compare", *store, *args)
    assert code == 3 and "no stored runs" in err  # parsed, ran, found an empty store


def test_an_unknown_format_is_still_refused(tmp_path: Path) -> None:
    code, _, err = invoke("compare", "--store", f"sqlite:///{tmp_path / 'r.db'}", "--format", "pdf")
    assert code == 2 and "'pdf' is not a report format" in err


def test_one_report_written_in_every_format_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx = build()
    names = ("r.html", "junit.xml", "out.json", "pr.md", "plain.txt", "again.json")
    paths = [tmp_path / "deep" / name for name in names]
    options = ReportOptions(
        fmt="terminal", outputs=outputs_for(paths, "terminal", False), no_color=False, divergences=None
    )
    code = emit_report(fx.report, fx.redactor, options)
    assert code == int(fx.report.exit_code) == 1
    out, err = capsys.readouterr()
    assert out == ""  # files asked for: nothing on standard output
    for path, fmt in zip(paths, ("html", "junit", "json", "markdown", "terminal", "json"), strict=True):
        assert f"report written to {path} ({fmt})" in err
        text = path.read_text(encoding="utf-8")
        for value in (fx.secret_value, fx.leaked_value):
            assert value not in text
    document = json.loads(paths[2].read_text(encoding="utf-8"))
    assert document["exit_code"] == 1 and document["summary"]["causes"] >= 1
    assert paths[5].read_text(encoding="utf-8") == paths[2].read_text(encoding="utf-8")
    assert ET.fromstring(paths[1].read_text(encoding="utf-8")).tag in ("testsuites", "testsuite")
    assert "<html" in paths[0].read_text(encoding="utf-8").lower()
    plain = paths[4].read_text(encoding="utf-8")
    assert "Verdict:" in plain and not ANSI.search(plain)


def test_without_output_the_report_goes_to_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    fx = build()
    options = ReportOptions(fmt="json", outputs=(), no_color=True, divergences=None)
    assert emit_report(fx.report, fx.redactor, options) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["exit_code"] == 1 and err == ""


DAY0 = datetime(2030, 5, 1, tzinfo=UTC)


def test_points_are_the_ends_of_utc_days_then_the_window_end() -> None:
    since, until = DAY0 + timedelta(hours=7), DAY0 + timedelta(days=3, hours=5)
    assert points(since, until) == (
        DAY0 + timedelta(days=1),
        DAY0 + timedelta(days=2),
        DAY0 + timedelta(days=3),
        until,
    )


def test_a_window_under_two_days_has_hourly_points() -> None:
    since, until = DAY0 + timedelta(minutes=30), DAY0 + timedelta(hours=3, minutes=10)
    expected = tuple(DAY0 + timedelta(hours=h) for h in (1, 2, 3))
    assert points(since, until) == (*expected, until)


def test_a_long_window_thins_its_points() -> None:
    found = points(DAY0, DAY0 + timedelta(days=365))
    assert len(found) <= MAX_POINTS + 1 and found[-1] == DAY0 + timedelta(days=365)
    gaps = {b - a for a, b in itertools.pairwise(found)}
    assert gaps == {timedelta(days=5)}  # ceil(365 / 90) days apart
    assert points(DAY0, DAY0) == ()
