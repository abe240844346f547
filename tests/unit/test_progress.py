"""The progress display: a run listener that shows scenario, environment and step on a terminal only."""

from __future__ import annotations

import io
from pathlib import Path

from parityprobe.progress import ProgressDisplay, wanted
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from tests.unit.test_plan import plan_for
from tests.unit.test_runner import REGISTRY


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_only_on_a_terminal_and_never_when_quiet() -> None:
    assert wanted(False, _Tty())
    assert not wanted(True, _Tty())
    assert not wanted(False, io.StringIO())


def test_it_follows_a_run_and_shows_names_only(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        "id: shown\nsteps:\n  - {id: first, probe: test.echo, with: {value: zqxjkvbwzq}}\n"
        "  - {id: second, probe: test.echo}\ncleanup:\n  - {id: tidy, probe: test.echo}\n",
    )
    stream = _Tty()
    with ProgressDisplay(stream) as display:
        (result,) = Runner(REGISTRY, Redactor(), listeners=(display,)).run(plan)
        tasks = {task.fields["label"]: task for task in display._progress.tasks}
    assert set(tasks) == {"shown · staging", "shown · production"}
    for task in tasks.values():
        assert task.completed == 3 and task.total == 3 and task.fields["current"] == "done"
    assert all(run.observations for run in result.runs)
    assert "zqxjkvbwzq" not in stream.getvalue() and "tok-" not in stream.getvalue()
