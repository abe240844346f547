"""The undo journal: a probe records, before it creates something, the probe call that removes it; the runner
runs those calls after the cleanup steps, most recent first, and whatever does not complete stays pending
and is a ``cleanup_failed`` finding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from parityprobe.compare.comparator import compare
from parityprobe.config.plan import Plan
from parityprobe.listeners import RunListener, RunStarted
from parityprobe.model import Category, ErrorKind, Observation, Outcome, Run, Severity
from parityprobe.probe import ClientCache, ProbeContext, Timer
from parityprobe.redact import Redactor
from parityprobe.runner import Runner
from parityprobe.secret import Secret
from parityprobe.undo import JournalEntry, MemoryJournal, RunJournal, Undo, UndoJournal
from tests.plugins import Inventory, build, registry

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ENVS = """\
environments:
  staging:
    tier: staging
    vars: {team: payments}
    safety: {allow_effects: [read, write]}
  production:
    tier: production
    vars: {team: payments}
    safety: {allow_effects: [read, write]}
"""


class ListJournal:
    """A journal of the test's own, through the :class:`UndoJournal` seam: keeps entries in a list and
    remembers every call, as a durable store would see them."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(
        self, run_id: str, environment: str, recorded_at: datetime, undo: Undo, recorded_by: str = ""
    ) -> JournalEntry:
        with self._lock:
            entry = JournalEntry(f"j{len(self.calls)}", run_id, environment, recorded_at, undo, recorded_by)
            self.entries.append(entry)
            self.calls.append(("record", entry.id))
            return entry

    def amend(self, entry_id: str, undo: Undo) -> JournalEntry:
        with self._lock:
            index = next(i for i, e in enumerate(self.entries) if e.id == entry_id)
            entry = JournalEntry(
                entry_id, *self._fields(self.entries[index]), undo, self.entries[index].recorded_by
            )
            self.entries[index] = entry
            self.calls.append(("amend", entry_id))
            return entry

    @staticmethod
    def _fields(entry: JournalEntry) -> tuple[str, str, datetime]:
        return entry.run_id, entry.environment, entry.recorded_at

    def resolve(self, entry_id: str) -> None:
        with self._lock:
            self.entries = [e for e in self.entries if e.id != entry_id]
            self.calls.append(("resolve", entry_id))

    def pending(self, run_id: str | None = None) -> list[JournalEntry]:
        with self._lock:
            return [e for e in self.entries if run_id is None or e.run_id == run_id]


@pytest.fixture(autouse=True)
def _fresh_inventory() -> Iterator[None]:
    Inventory.reset()
    yield
    Inventory.reset()


def plan(tmp_path: Path, scenario: str) -> Plan:
    return build(tmp_path, ENVS, scenario)


def run(
    the_plan: Plan, journal: UndoJournal | None = None, listeners: tuple[RunListener, ...] = ()
) -> list[Run]:
    runner = Runner(
        registry(), Redactor(), step_timeout=5, clock=lambda: NOW, journal=journal, listeners=listeners
    )
    (result,) = runner.run(the_plan)
    return list(result.runs)


def undos(run: Run) -> list[Observation]:
    return [o for o in run.cleanup if o.step.startswith("undo.")]


def test_undos_run_after_the_cleanup_steps_most_recent_first_and_remove_what_was_created(
    tmp_path: Path,
) -> None:
    journal = ListJournal()
    staging, production = run(
        plan(
            tmp_path,
            "id: u\nsteps:\n"
            "  - {id: make-a, probe: test.create, with: {name: a}}\n"
            "  - {id: make-b, probe: test.create, with: {name: b, fail: true}}\n"
            "  - {id: after, probe: test.echo}\n"
            "cleanup:\n  - {id: tidy, probe: test.echo}\n",
        ),
        journal,
    )
    for r in (staging, production):
        env = r.environment
        make_b = r.observation("make-b")
        assert make_b is not None and make_b.outcome is Outcome.ERROR
        assert make_b.error_kind is ErrorKind.HARNESS_ERROR  # it raised after creating
        assert [o.step for o in r.cleanup] == ["tidy", "undo.1", "undo.2"]
        for obs in undos(r):
            assert (obs.outcome, obs.probe, obs.environment) == (Outcome.ALLOWED, "test.remove", env)
            assert obs.correlation_id == f"pp-{r.id}-{obs.step}"
        # The later action is undone first.
        removed = [(cid, name) for cid, name in Inventory.removals if name.startswith(f"{env}/")]
        assert removed == [(f"pp-{r.id}-undo.1", f"{env}/b"), (f"pp-{r.id}-undo.2", f"{env}/a")]
    assert Inventory.created == set()
    assert journal.pending() == []
    # Each entry was durable (recorded) before its action, and resolved once its undo ran.
    assert sorted(kind for kind, _ in journal.calls) == ["record"] * 4 + ["resolve"] * 4
    comparison = compare(staging.spec, [staging, production])
    assert Category.CLEANUP_FAILED not in {f.category for f in comparison.findings}


def test_the_memory_journal_is_the_default(tmp_path: Path) -> None:
    staging, production = run(
        plan(tmp_path, "id: u\nsteps:\n  - {id: make, probe: test.create, with: {name: a, fail: true}}\n")
    )
    assert [o.step for o in staging.cleanup] == [o.step for o in production.cleanup] == ["undo.1"]
    assert Inventory.created == set()


def test_entries_are_recorded_with_the_runner_s_clock_run_and_environment(tmp_path: Path) -> None:
    journal = ListJournal()
    # A remove that is refused keeps its entry pending, so the entry can be read back.
    runs = run(
        plan(
            tmp_path,
            "id: u\nsteps:\n  - {id: make, probe: test.create, with: {name: a, undo_refuse: true}}\n",
        ),
        journal,
    )
    entries = journal.pending()
    assert {(e.run_id, e.environment) for e in entries} == {(r.id, r.environment) for r in runs}
    for entry in entries:
        assert entry.recorded_at == NOW
        assert entry.undo.probe == "test.remove"
        assert entry.undo.description == f"remove {entry.environment}/a"
        assert dict(entry.undo.params) == {"name": f"{entry.environment}/a", "refuse": True, "crash": False}


def test_an_undo_resolved_as_not_needed_does_not_run(tmp_path: Path) -> None:
    journal = ListJournal()
    staging, production = run(
        plan(tmp_path, "id: u\nsteps:\n  - {id: make, probe: test.create, with: {name: a, refuse: true}}\n"),
        journal,
    )
    for r in (staging, production):
        make = r.observation("make")
        assert make is not None and make.outcome is Outcome.DENIED
        assert r.cleanup == ()
    assert Inventory.removals == [] and journal.pending() == []
    # Each entry was recorded before the action, then resolved when the target refused it.
    recorded = [entry for kind, entry in journal.calls if kind == "record"]
    assert len(recorded) == 2
    for entry_id in recorded:
        assert journal.calls.index(("record", entry_id)) < journal.calls.index(("resolve", entry_id))


@pytest.mark.parametrize(
    ("param", "outcome", "kind"),
    [("undo_refuse", Outcome.DENIED, None), ("undo_crash", Outcome.ERROR, ErrorKind.HARNESS_ERROR)],
)
def test_a_failing_undo_stays_pending_and_is_a_cleanup_failed_finding_graded_by_tier(
    tmp_path: Path, param: str, outcome: Outcome, kind: ErrorKind | None
) -> None:
    journal = ListJournal()
    staging, production = run(
        plan(
            tmp_path,
            f"id: u\nsteps:\n  - {{id: make, probe: test.create, with: {{name: a, {param}: true}}}}\n",
        ),
        journal,
    )
    for r in (staging, production):
        (undo,) = r.cleanup
        assert (undo.step, undo.outcome, undo.error_kind) == ("undo.1", outcome, kind)
        (entry,) = journal.pending(r.id)
        assert entry.undo.params["name"] == f"{r.environment}/a"
    assert Inventory.created == {"staging/a", "production/a"}  # still there: someone must remove it
    comparison = compare(staging.spec, [staging, production])
    failed = {next(iter(f.environments)): f for f in comparison.findings}
    assert {f.category for f in comparison.findings} == {Category.CLEANUP_FAILED}
    assert failed["production"].severity is Severity.HIGH
    assert failed["staging"].severity is Severity.MEDIUM
    assert failed["production"].step == "undo.1"
    assert failed["production"].message.startswith("production: undo failed: test.remove")
    assert comparison.findings[0] is failed["production"]  # most severe first


@pytest.mark.parametrize(
    ("undo_probe", "why"),
    [("test.nope", "undo cannot run: PluginError"), ("test.echo", "undo cannot run: ValidationError")],
)
def test_an_undo_that_cannot_be_built_is_a_harness_error_never_an_exception(
    tmp_path: Path, undo_probe: str, why: str
) -> None:
    journal = ListJournal()
    staging, production = run(
        plan(
            tmp_path,
            "id: u\nsteps:\n"
            f"  - {{id: make, probe: test.create, with: {{name: a, undo_probe: {undo_probe}}}}}\n"
            "  - {id: after, probe: test.echo}\n",
        ),
        journal,
    )
    for r in (staging, production):
        assert [o.outcome for o in r.observations] == [Outcome.ALLOWED, Outcome.ALLOWED]
        (undo,) = r.cleanup
        assert (undo.step, undo.outcome, undo.error_kind) == (
            "undo.1",
            Outcome.ERROR,
            ErrorKind.HARNESS_ERROR,
        )
        assert undo.probe == undo_probe
        assert undo.reason is not None and undo.reason.startswith(why)
    assert len(journal.pending()) == 2
    findings = compare(staging.spec, [staging, production]).findings
    assert [(f.category, f.severity) for f in findings] == [
        (Category.CLEANUP_FAILED, Severity.HIGH),
        (Category.CLEANUP_FAILED, Severity.MEDIUM),
    ]


@pytest.mark.parametrize(
    "value", [Secret("s3cr3t-value"), ["a"], {"a": 1}, NOW, b"bytes", object(), frozenset({"a"})]
)
def test_an_undo_refuses_a_secret_or_a_value_that_is_not_plain_json(value: Any) -> None:
    with pytest.raises(TypeError, match="'bad' must be a plain JSON value, never a secret") as exc:
        Undo("remove it", "test.remove", MappingProxyType({"name": "a", "bad": value}))
    assert "s3cr3t-value" not in str(exc.value)


@pytest.mark.parametrize("value", ["a", "", 0, -3, 2.5, True, False, None])
def test_an_undo_takes_plain_json_scalars(value: Any) -> None:
    undo = Undo("remove it", "test.remove", MappingProxyType({"name": value}))
    assert undo.params["name"] == value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_an_undo_refuses_floats_json_cannot_hold(value: float) -> None:
    with pytest.raises(TypeError):
        Undo("remove it", "test.remove", MappingProxyType({"n": value}))


def test_record_undo_with_a_secret_raises_and_journals_nothing(tmp_path: Path) -> None:
    the_plan = plan(tmp_path, "id: u\nsteps:\n  - {id: a, probe: test.echo}\n")
    journal = ListJournal()
    ctx = ProbeContext(
        the_plan.environments[0],
        "pp-r-a",
        deadline=0.0,
        timer=Timer(),
        redactor=Redactor(),
        clients=ClientCache(),
        clock=lambda: NOW,
        journal=RunJournal(journal, "r", "staging"),
    )
    with pytest.raises(TypeError, match="never a secret"):
        ctx.record_undo("remove", probe="test.remove", name=Secret("hunter2hunter2"))  # type: ignore[arg-type]
    assert journal.calls == []
    entry = ctx.record_undo("remove a", probe="test.remove", name="a")
    assert entry.recorded_at == NOW and entry.run_id == "r" and entry.environment == "staging"
    ctx.undo_not_needed(entry)
    assert journal.calls == [("record", entry.id), ("resolve", entry.id)]


def test_a_probe_passing_a_secret_into_its_undo_fails_the_step_and_the_secret_is_not_recorded(
    tmp_path: Path,
) -> None:
    journal = ListJournal()
    staging, _ = run(
        plan(
            tmp_path,
            "id: u\nsteps:\n  - {id: login, probe: test.echo, with: {value: zqxjkvbw}}\n"
            "  - {id: make, probe: test.create, with: {name: a, leak: '${{ steps.login.outputs.token }}'}}\n",
        ),
        journal,
    )
    make = staging.observation("make")
    assert make is not None and make.outcome is Outcome.ERROR and make.error_kind is ErrorKind.HARNESS_ERROR
    assert "tok-zqxjkvbw" not in (make.detail or "") and staging.cleanup == ()
    assert journal.calls == [] and Inventory.created == set()


def test_the_memory_journal_keeps_pending_entries_per_run_in_recording_order() -> None:
    journal = MemoryJournal()
    undo = Undo("remove", "test.remove", MappingProxyType({"name": "a"}))
    first = journal.record("r1", "staging", NOW, undo)
    second = journal.record("r1", "staging", NOW, undo)
    other = journal.record("r2", "production", NOW, undo)
    assert journal.pending("r1") == [first, second]
    assert journal.pending() == [first, second, other]
    journal.resolve(first.id)
    journal.resolve(first.id)  # resolving twice is harmless: an undo may be confirmed again after a crash
    assert journal.pending("r1") == [second]
    assert len({first.id, second.id, other.id}) == 3


class _OpenGateAfterUndo(RunListener):
    """Lets the held create go on once the runner has run its undo."""

    def cleanup_finished(self, run: RunStarted, observation: Observation) -> None:
        if observation.step == "undo.1":
            Inventory.gate.set()


def test_a_thing_created_after_its_step_timed_out_is_not_leaked_silently(tmp_path: Path) -> None:
    journal = ListJournal()
    # The create records its undo, then (a slow target) only creates once the runner has run that undo.
    staging, production = run(
        plan(
            tmp_path,
            "id: u\nsteps:\n  - {id: make, probe: test.create, with: {name: slow, hold: true}, timeout: 1}\n",
        ),
        journal,
        listeners=(_OpenGateAfterUndo(),),
    )
    for r in (staging, production):
        make = r.observation("make")
        assert make is not None and make.error_kind is ErrorKind.TIMEOUT
        leaked = f"{r.environment}/slow" in Inventory.created
        findings = compare(r.spec, [r]).findings
        reported = any(f.category is Category.CLEANUP_FAILED for f in findings)
        assert not leaked or (journal.pending(r.id) and reported)


def test_an_undo_amended_after_the_action_runs_with_what_it_learned_and_the_held_secret(
    tmp_path: Path,
) -> None:
    journal = ListJournal()
    staging, _ = run(
        plan(
            tmp_path,
            "id: u\nsteps:\n  - {id: login, probe: test.echo, with: {value: q7w8e9r0}}\n"
            "  - {id: make, probe: test.create, with: {name: x, amend: true, "
            "held: '${{ steps.login.outputs.token }}'}}\n",
        ),
        journal=journal,
    )
    undo = staging.cleanup[-1]
    assert undo.step == "undo.1" and undo.outcome is Outcome.ALLOWED
    assert ("pp-" + staging.id + "-undo.1", "staging/x") in Inventory.removals
    assert Inventory.tokens == ["tok-q7w8e9r0"] * 2  # staging's and production's
    assert sorted(c[0] for c in journal.calls) == ["amend"] * 2 + ["record"] * 2 + ["resolve"] * 2
    assert journal.entries == []


def test_a_held_secret_is_never_in_the_undo_s_repr_params_or_record() -> None:
    token = Secret("s3cr3t-" + "zzkq", "token")
    undo = Undo("revoke", "test.remove", MappingProxyType({"name": "a"}))
    amended = undo.amended({"token": token}, {"accessor": "acc-1"})
    assert token.reveal() not in repr(amended)
    assert dict(amended.params) == {"name": "a", "accessor": "acc-1"}
    assert amended.arguments()["token"] is token
    with pytest.raises(TypeError, match="both plainly and held"):
        undo.amended({"name": token}, {})


def test_the_memory_journal_amends_a_pending_entry_in_place() -> None:
    journal = MemoryJournal()
    entry = journal.record("r", "staging", NOW, Undo("remove", "test.remove"), "pp-r-a")
    journal.amend(entry.id, entry.undo.amended({}, {"name": "a"}))
    (pending,) = journal.pending("r")
    assert pending.id == entry.id and pending.recorded_by == "pp-r-a"
    assert dict(pending.undo.params) == {"name": "a"}
