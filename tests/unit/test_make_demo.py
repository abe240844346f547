"""``make demo`` succeeds when ``parityprobe demo`` finds the lab's planted gaps (its exit code 1), and says
why in one line; any other failure still fails make. Run against the real Makefile with a stand-in
``parityprobe`` that exits with the code under test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_demo(tmp_path: Path, code: int) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "parityprobe"
    fake.write_text(f'#!/bin/sh\necho "report for: $*"\nexit {code}\n')
    fake.chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: make installs nothing
    return subprocess.run(
        ["make", "-s", "-C", str(REPO), "demo", f"BIN={tmp_path}", f"STAMP={stamp}"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_planted_gaps_found_is_success_and_says_so(tmp_path: Path) -> None:
    result = make_demo(tmp_path, 1)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "report for: demo"  # the report is shown first, the demo run as a user would
    assert lines[1:] == [
        "make demo: done — parityprobe demo exits 1 because it found the lab's planted gaps "
        "(0: none, 3: only inconclusive); scripts should call parityprobe, not make"
    ]
    assert "Error" not in result.stderr


def test_no_gaps_is_success_without_the_note(tmp_path: Path) -> None:
    result = make_demo(tmp_path, 0)
    assert result.returncode == 0 and result.stdout.splitlines() == ["report for: demo"]


@pytest.mark.parametrize("code", [2, 3, 4])
def test_any_other_failure_fails_make(tmp_path: Path, code: int) -> None:
    result = make_demo(tmp_path, code)
    assert result.returncode != 0
    assert "make demo: done" not in result.stdout
    assert f"Error {code}" in result.stderr
