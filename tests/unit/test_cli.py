"""Command-line arguments: bad values are usage errors (exit 2), a closed output pipe is not an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from parityprobe.cli import main


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "0.01", "abc", "1e999"])
def test_step_timeout_must_be_finite_and_positive(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(main, ["run", "-e", str(tmp_path / "e.yaml"), "--step-timeout", value, "x"])
    assert result.exit_code == 2
    assert "--step-timeout" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_concurrency_must_be_a_positive_integer(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(main, ["run", "-e", str(tmp_path / "e.yaml"), "--concurrency", value, "x"])
    assert result.exit_code == 2 and "--concurrency" in result.output


def test_a_closed_output_pipe_exits_quietly() -> None:
    # `parityprobe probes | head -1`: the reader leaves early. Closing our end before the command writes
    # anything makes its first write fail, every time.
    proc = subprocess.Popen(
        [sys.executable, "-m", "parityprobe", "probes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""
