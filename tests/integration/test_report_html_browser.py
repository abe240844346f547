"""The HTML report in a real browser: headless Chromium loads the page from a file, with no console message
(no script error, no blocked resource, no Content-Security-Policy violation), takes its screenshot under the
test's temporary folder, and its DOM, as the browser built it, holds what a hostile target said as text and
no script element. Skipped, saying why, when no Chromium is installed (``make chromium`` installs Debian's).

A control page with a script that fails shows that the console check would see an error if there were one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from parityprobe.report import render
from tests.unit.test_report_html import assert_inert, read
from tests.unit.test_report_markdown import hostile

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
# What Chromium writes to stderr with --enable-logging=stderr for a console message or an uncaught error.
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\))?[:\]]|Uncaught")
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason=f"no Chromium on PATH (tried {', '.join(BROWSERS)}): `make chromium` installs one"
)


@dataclass(frozen=True)
class Loaded:
    dom: str
    console: list[str]  # the console lines Chromium logged


def chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    args = [
        BROWSER,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # tests run as root in containers, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm: use the temporary folder
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def load(page: Path, tmp: Path) -> Loaded:
    """``page`` as Chromium builds it: its DOM after load, and what it logged to the console."""
    done = chromium(page, tmp, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return Loaded(done.stdout, [line for line in done.stderr.splitlines() if CONSOLE.search(line)])


class Scripts(HTMLParser):
    """Counts script elements, wherever they are."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.count += tag == "script"


def scripts(html: str) -> int:
    parser = Scripts()
    parser.feed(html)
    parser.close()
    return parser.count


def test_the_console_check_sees_a_failing_script(tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><p>x</p><script>console.error('planted'); notDefined();</script>")
    loaded = load(control, tmp_path)
    assert any("Uncaught" in line and "notDefined" in line for line in loaded.console), loaded.console
    assert scripts(loaded.dom) == 1


def test_the_report_renders_in_chromium_as_text_with_no_console_error(tmp_path: Path) -> None:
    fx = hostile()
    page = tmp_path / "report.html"
    html = render(fx.report, "html", fx.redactor)
    page.write_text(html, encoding="utf-8")

    loaded = load(page, tmp_path)
    assert loaded.console == []
    assert scripts(loaded.dom) == 0
    dom = read(loaded.dom)
    assert_inert(dom)
    assert "<script>alert(1)</script>" in dom.text and "<img src=x onerror=alert(1)>" in dom.text
    assert fx.secret not in loaded.dom
    # Every latency chart (one per step: five of forbidden-calls, one of who-am-i) is in the browser's DOM.
    assert dom.tags.count("svg") == read(html).tags.count("svg") == 6
    assert dom.charts == read(html).charts

    shot = tmp_path / "report.png"
    done = chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars")
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000, len(data)
    assert [line for line in done.stderr.splitlines() if CONSOLE.search(line)] == []
