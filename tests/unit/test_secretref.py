"""Secret references that cannot be secrets are refused with a message, never read forever or crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parityprobe.config.secretref import MAX_SECRET_FILE_BYTES, SecretRef
from parityprobe.errors import Problem


def resolve(tmp_path: Path, name: str) -> str:
    with pytest.raises(ValueError) as caught:
        SecretRef(file=name).resolve(tmp_path, "token")
    return str(caught.value)


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block until a writer came
    assert "is not a regular file" in resolve(tmp_path, "pipe")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    assert "is not a regular file" in resolve(tmp_path, "dir")


def test_a_huge_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    assert "larger than 64 KiB" in resolve(tmp_path, "big")


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00secret")
    assert "not UTF-8 text" in resolve(tmp_path, "bin")


def test_a_home_relative_path_without_a_home_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What expanduser does for a user with no HOME and no password-database entry: nothing.
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)
    assert "no home directory" in resolve(tmp_path, "~/token")


def test_a_missing_and_an_empty_file_say_so(tmp_path: Path) -> None:
    assert "No such file" in resolve(tmp_path, "absent")
    (tmp_path / "empty").write_text("  \n")
    assert "is empty" in resolve(tmp_path, "empty")


def test_a_problem_is_always_one_line() -> None:
    problem = Problem(Path("envs\n.yaml"), 3, "environments.a\nb", "bad\nvalue\x00")
    assert "\n" not in str(problem) and "\\n" in str(problem) and "\\x00" in str(problem)
