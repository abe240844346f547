"""Bad input never runs, never hangs, never crashes: thousands of mutated scenarios, environments files and
lab profiles, each refused with located one-line errors (exit 2) or accepted as a valid plan (exit 0).

``PP_FUZZ_CASES`` (default 3,000) and ``PP_FUZZ_SEED`` (default 1, or ``random``) choose the cases; a
failure names its seed, case number and input file, and ``python -m tests.fuzz --seed S --case N`` replays
it. ``make fuzz`` runs 10,000 cases with the full summary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzz.corpus import SECRET_ENV, Listener, Workspace, build
from tests.fuzz.judge import Invocation, invoke, judge
from tests.fuzz.mutator import make_case
from tests.fuzz.pool import GIB, Settings, run, seed_from_environment
from tests.fuzz.report import describe, summary

pytestmark = pytest.mark.fuzz

CASES = int(os.environ.get("PP_FUZZ_CASES", "3000"))
# Enough to show the classes of a regression; more would only make a broken build slower to report.
MAX_FAILURES = int(os.environ.get("PP_FUZZ_MAX_FAILURES", "20"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    with Listener() as trap:
        return build(tmp_path_factory.mktemp("fuzz-corpus"), trap.port)


def test_the_unmutated_inputs_are_valid(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mutations start from inputs that validate: otherwise every case would test only the refusal."""
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    for environments in workspace.environments:
        command = ["validate", "-e", environments, *workspace.scenarios]
        result = invoke(command, verbose=False)
        assert result.code == 0, result.err
        assert judge(result, [environments, *workspace.scenarios], workspace.secrets, []) is None
    profile = invoke(["lab-profile", workspace.profile], verbose=False)
    assert profile.code == 0, profile.err


def test_cases_are_replayable(workspace: Workspace) -> None:
    bases, files = workspace.bases(), tuple(workspace.files)
    for number in range(200):
        assert make_case(7, number, bases, files) == make_case(7, number, bases, files)
    assert make_case(7, 1, bases, files).data != make_case(8, 1, bases, files).data


@pytest.mark.parametrize(
    ("code", "err", "kind"),
    [
        (2, "error: {f}:3: steps[0].id: String should match pattern\n", None),
        (2, "error: {f}: no scenario files found\n", None),
        (2, "error: {f}:1:  [5][0]: more than 100000 nodes\n", None),
        (2, "error: other.yaml:3: id: bad\n", "unlocated error"),
        (2, "error: {f}:3: with.a\nb: unknown field\n", "multi-line error"),
        (2, "error: {f}:3: with.a\rb: unknown field\n", "control character in an error"),
        (2, "error: {f}:3: with.\x1b]0;x\x07: unknown field\n", "control character in an error"),
        (2, "", "exit 2 without a message"),
        (4, "internal error: ValueError: x (run with --verbose for details)\n", "exit 4"),
        (1, "", "exit 1"),
    ],
)
def test_the_judge(code: int, err: str, kind: str | None) -> None:
    name = "/w/case.yaml"
    failure = judge(Invocation(code, "", err.format(f=name)), [name], ["s3cret-value"], [])
    assert (failure or {}).get("kind") == kind


def test_the_judge_sees_leaks_tracebacks_and_connections() -> None:
    leak = judge(Invocation(2, "", "error: /f.yaml:1: s3cret-value\n"), ["/f.yaml"], ["s3cret-value"], [])
    assert leak is not None and leak["kind"] == "secret-leak"
    printed = Invocation(4, "", "Traceback (most recent call last):\n  ...\n")
    assert (judge(printed, [], [], []) or {}).get("kind") == "traceback"
    escaped = Invocation(
        None, "", "", traceback="Traceback ...\nRecursionError: x", exc_type="RecursionError"
    )
    assert (judge(escaped, [], [], []) or {}).get("kind") == "traceback"
    network = judge(Invocation(0, "valid: 1\n", ""), [], [], ["connect ('127.0.0.1', 1)"])
    assert network is not None and network["kind"] == "network"


def test_the_harness_bounds_every_case_and_sees_every_failure(tmp_path: Path) -> None:
    """Cases that block, spin, exhaust memory, crash or connect are each killed or flagged, not waited for."""
    # 3 s per case: on a loaded machine, filling 1 GiB can take longer than 1 s, and is then seen as a hang.
    outcome = run(Settings(seed=1, cases=[-1, -2, -3, -4, -5, -6], root=tmp_path, timeout=3.0, memory=GIB))
    kinds = {r["case"]: (r["failure"] or {}).get("kind") for r in outcome.results}
    assert {k: v for k, v in kinds.items() if k != -6} == {
        -1: "hang",
        -2: "hang",
        -3: "oom",
        -4: "crash",
        -5: "network",
    }, summary(outcome)
    assert outcome.connections == 1  # the trap saw the one connection the worker's guard could not


def test_bad_input_is_refused_cleanly_never_crashes_or_hangs(tmp_path: Path) -> None:
    seed = seed_from_environment()
    outcome = run(Settings(seed=seed, cases=range(CASES), root=tmp_path, max_failures=MAX_FAILURES))
    text = summary(outcome, examples=1)
    (tmp_path / "report.txt").write_text(text)
    assert outcome.connections == 0, text
    failures = outcome.failures
    if failures:
        details = "\n".join(describe(r, seed) for r in failures[:MAX_FAILURES])
        stopped = f", stopped after {MAX_FAILURES}" if len(failures) >= MAX_FAILURES else ""
        pytest.fail(
            f"{len(failures)} of {len(outcome.results)} case(s) not clean{stopped} "
            f"(summary: {tmp_path / 'report.txt'}):\n{details}",
            pytrace=False,
        )
    assert len(outcome.results) == CASES
