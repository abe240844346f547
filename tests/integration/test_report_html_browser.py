"""The HTML report in a real browser: headless Chromium loads the page from a file, with no console message
(no script error, no blocked resource, no Content-Security-Policy violation), takes its screenshot under the
test's temporary folder, and its DOM, as the browser built it, holds what a hostile target said as text and
no script element. Skipped, saying why, when no Chromium is installed (``make chromium`` installs Debian's).

A control page with a script that fails shows that the console check would see an error if there were one.

The lab's own tests drive Chromium through the DevTools protocol on a pipe (``--remote-debugging-pipe``: no
port, no extra package), so the page can be asked what only a browser knows: every network request it made,
every console message, ``document.body.innerText`` and whether a planted script ran (``window.__pwned``). The
demo's report (the default lab's scenarios run through the real command line) loads with the page itself as
its only request, shows its charts and verdict, and is screenshot under the test's temporary folder. Markup
planted in the lab's OpenBao comes back in a real server response and shows as text, never run: an AppRole
secret id whose metadata key is ``<img src=x onerror=...>`` (its value ``<script>...</script>``) gives a
token carrying both, and the login probe reports token metadata as grant lines of the matrix. A control
page without the report's Content-Security-Policy shows each of these checks failing
when there is something to see.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import hvac
import pytest

from parityprobe.lab.state import LabState
from parityprobe.report import render
from tests.integration.test_end_to_end import SCENARIOS, cli, edited_environments
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


# ---------------------------------------------------------------- the DevTools protocol, on a pipe

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
# What a page is asked once loaded: whether a planted script ran, its text as a reader sees it, its charts.
PROBE = """({pwned: typeof window.__pwned, text: document.body.innerText,
  svgs: document.querySelectorAll('svg').length, scripts: document.querySelectorAll('script').length,
  verdict: (document.getElementById('verdict') || {}).innerText || null})"""


@dataclass
class Visit:
    """What Chromium saw of one page: its requests, its console, and the answers to :data:`PROBE`."""

    requests: list[str]
    console: list[str]  # console calls, uncaught exceptions, and log entries (CSP violations, blocked loads)
    pwned: str
    text: str
    svgs: int
    scripts: int
    verdict: str | None
    screenshot: bytes = field(repr=False, default=b"")


class DevTools:
    """A headless Chromium driven through ``--remote-debugging-pipe``: JSON messages ending in NUL, read on
    fd 4 and written on fd 3 of the browser (where ``posix_spawn`` puts our pipes' ends). Its log is written
    beside ``profile``."""

    def __init__(self, profile: Path) -> None:
        assert BROWSER is not None
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        args = [
            *(BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage"),
            *(f"--user-data-dir={profile}", "--no-first-run", "--remote-debugging-pipe", "about:blank"),
        ]
        # Moved above 4 first, so that placing them on 3 and 4 cannot overwrite one with the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        log = os.open(profile.parent / "chromium.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.pid = os.posix_spawn(
            BROWSER,
            args,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, log, 2),
                (os.POSIX_SPAWN_DUP2, high[0], 3),
                (os.POSIX_SPAWN_DUP2, high[1], 4),
            ],
        )
        for fd in (to_browser, from_browser, *high, log):
            os.close(fd)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer"
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        loaded: dict[str, Any] = json.loads(message)
        return loaded

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        self._id += 1
        command: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        os.write(self._out, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            message = self._message(deadline)
            if message.get("id") == self._id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def until(self, method: str, timeout: float = 60) -> None:
        """Wait for the event ``method`` (or return at once if it came already)."""
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._message(deadline))

    def visit(self, page: Path, screenshot: bool = False) -> Visit:
        """Open ``page`` in a new tab with the network, console and log watched from before it loads."""
        self.events.clear()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session)
        self.call("Page.navigate", session, url=page.as_uri())
        self.until("Page.loadEventFired")
        answer = self.call("Runtime.evaluate", session, expression=PROBE, returnByValue=True)["result"][
            "value"
        ]
        shot = b""
        if screenshot:
            self.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=1280,
                height=1600,
                deviceScaleFactor=1,
                mobile=False,
            )
            data = self.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)[
                "data"
            ]
            shot = base64.b64decode(data)
        requests = [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        console = [
            json.dumps(e["params"])[:500]
            for e in self.events
            if e.get("method") in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
        ]
        self.call("Target.closeTarget", targetId=target)
        return Visit(
            requests,
            console,
            answer["pwned"],
            answer["text"],
            answer["svgs"],
            answer["scripts"],
            answer["verdict"],
            shot,
        )

    def close(self) -> None:
        """Ask Chromium to quit; killed (this process only) when it has not within 30 seconds."""
        try:
            self.call("Browser.close")
        finally:
            deadline = time.monotonic() + 30
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.05)
            os.close(self._in)
            os.close(self._out)


@pytest.fixture
def devtools(tmp_path: Path) -> Iterator[DevTools]:
    browser = DevTools(tmp_path / "profile")
    try:
        yield browser
    finally:
        browser.close()


def test_devtools_sees_a_script_run_a_fetch_and_a_console_error(devtools: DevTools, tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text(
        "<!DOCTYPE html><body><p>x</p><script>window.__pwned = 1; console.error('planted');"
        "fetch('http://127.0.0.1:9/planted').catch(() => {});</script></body>"
    )
    visit = devtools.visit(control)
    assert visit.pwned == "number" and visit.scripts == 1
    assert any("planted" in line for line in visit.console), visit.console
    assert "http://127.0.0.1:9/planted" in visit.requests


def test_the_demos_report_renders_with_charts_and_nothing_else_loaded(
    lab: LabState, devtools: DevTools, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    result = cli("run", "--format", "html", "-o", report, "--environments", lab.environments_file, *SCENARIOS)
    assert result.code == 1, result.err  # the planted gaps were found
    html = report.read_text(encoding="utf-8")

    visit = devtools.visit(report, screenshot=True)
    assert visit.console == []
    assert visit.requests == [report.as_uri()]  # the page, and nothing it asked for
    assert visit.pwned == "undefined" and visit.scripts == 0
    assert visit.verdict is not None and visit.verdict.startswith("Verdict: PARITY GAPS FOUND (exit 1)")
    assert "Causes (" in visit.text and "Summary" in visit.text
    charts = read(html).tags.count("svg")
    assert visit.svgs == charts > 0  # every step's latency chart, as the browser built the page
    shot = tmp_path / "demo-report.png"
    shot.write_bytes(visit.screenshot)
    assert visit.screenshot.startswith(PNG) and len(visit.screenshot) > 20_000, len(visit.screenshot)


def _role_of(admin: Any, role_id: str) -> str:
    """The AppRole role whose role id is ``role_id``."""
    for role in admin.auth.approle.list_roles()["data"]["keys"]:
        if admin.auth.approle.read_role_id(role)["data"]["role_id"] == role_id:
            return str(role)
    raise AssertionError("no AppRole role has the lab's role id")


def test_markup_in_openbao_token_metadata_shows_as_text(
    lab: LabState, devtools: DevTools, tmp_path: Path
) -> None:
    # Production's workload logs in with a secret id whose metadata (a key and its value) is markup: OpenBao
    # puts it on the token it issues, the login probe reports token metadata as grant attributes, and they
    # reach the matrix. A first login with a plain secret id makes sure the role's entity alias exists: on
    # a fresh server OpenBao instead refuses the login with a 500 quoting the pair (also shown as text).
    secrets_dir = lab.directory / "production" / "secrets"
    url = lab.server("production", "openbao").url
    admin = hvac.Client(url, token=(secrets_dir / "root-token").read_text().strip())
    role_id = (secrets_dir / "vault-role-id").read_text().strip()
    role = _role_of(admin, role_id)
    plain = admin.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    first = hvac.Client(url).auth.approle.login(role_id=role_id, secret_id=plain, use_token=False)
    admin.auth.token.revoke(first["auth"]["client_token"])
    admin.auth.approle.destroy_secret_id(role, plain)
    planted = admin.auth.approle.generate_secret_id(role, metadata={IMG: SCRIPT})["data"]
    try:
        secret_id = tmp_path / "planted-secret-id"
        secret_id.write_text(planted["secret_id"])
        (tmp_path / "envs").mkdir()
        envs = edited_environments(
            lab, tmp_path / "envs", "production/secrets/vault-secret-id", str(secret_id)
        )
        scenario = tmp_path / "planted.yaml"
        scenario.write_text(
            "id: planted\ndescription: A login whose secret id carries markup.\nsteps:\n"
            "  - {id: login, probe: vault.approle_login, expect: {outcome: allowed}}\n"
        )
        report = tmp_path / "report.html"
        result = cli("run", "--format", "html", "-o", report, "--environments", envs, scenario)
        assert result.code == 1, result.err  # the lab's planted TTL gap; the login itself worked
    finally:
        admin.auth.approle.destroy_secret_id(role, planted["secret_id"])
    html = report.read_text(encoding="utf-8")
    assert planted["secret_id"] not in html and planted["secret_id_accessor"] not in html

    visit = devtools.visit(report)
    assert visit.console == [] and visit.requests == [report.as_uri()]
    assert visit.pwned == "undefined" and visit.scripts == 0
    # The key and its value, one grant line of production's login cell, exactly as OpenBao returned them.
    assert f"{IMG} {SCRIPT}" in visit.text
    dom = read(html)
    assert_inert(dom)
    (matrix,) = dom.matrices()
    assert f"{IMG} {SCRIPT}" in matrix[1][2] and IMG not in matrix[1][1]
