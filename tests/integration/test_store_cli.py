"""Comparing after the fact, through the command line: each environment runs on its own (as a daemon in
each environment would) and writes to one store; ``compare --store`` then finds exactly what one ``run``
over both environments finds. A store that cannot be written loses nothing: the runs wait in the spool and
are replayed at the next write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parityprobe.lab.servers import free_port
from parityprobe.lab.state import LabState
from tests.integration.test_end_to_end import SCENARIOS, Result, cli

pytestmark = pytest.mark.lab


def key(document: dict[str, object]) -> list[tuple[object, ...]]:
    findings = document["findings"]
    assert isinstance(findings, list)
    return sorted((f["scenario"], f["step"], f["category"], f["severity"], f["field"]) for f in findings)


@pytest.fixture(scope="module")
def together(lab: LabState) -> dict[str, object]:
    result = cli("run", "--format", "json", "--environments", lab.environments_file, *SCENARIOS)
    assert result.code == 1, result.err
    document: dict[str, object] = json.loads(result.out)
    return document


def run_alone(lab: LabState, env: str, store: str, spool: Path) -> Result:
    return cli(
        "run", "--quiet", "--env", env, "--store", store, "--spool", spool,
        "--environments", lab.environments_file, *SCENARIOS,
    )  # fmt: skip


def test_environments_run_apart_and_compared_from_the_store_find_what_one_run_finds(
    lab: LabState, together: dict[str, object], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'results.db'}"
    for env in ("staging", "production"):
        assert run_alone(lab, env, store, tmp_path / "spool").code in (0, 1)  # alone: expectations only
    compared = cli("compare", "--store", store, "--since", "1h", "--env", "staging", "--env", "production",
                   "--format", "json")  # fmt: skip
    assert compared.code == 1, compared.err
    document = json.loads(compared.out)
    assert key(document) == key(together)
    assert len(document["runs"]) == 2 * len(SCENARIOS)
    one = cli("compare", "--store", store, "--scenario", "token-fetch", "--format", "json")
    assert {f["scenario"] for f in json.loads(one.out)["findings"]} == {"token-fetch"}


def test_a_store_that_cannot_be_written_spools_and_the_next_write_replays(
    lab: LabState, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    down = f"postgresql://parityprobe@127.0.0.1:{free_port()}/results"
    result = run_alone(lab, "staging", down, spool)
    assert result.code in (0, 1)
    assert f"run(s) wait in {spool}" in result.err and "Traceback" not in result.err
    store = f"sqlite:///{tmp_path / 'results.db'}"
    empty = cli("compare", "--store", store, "--since", "1h")
    assert empty.code == 3 and "no stored runs" in empty.err
    # The store is back (here: another one, the same spool): the next run's write replays what waited.
    assert run_alone(lab, "production", store, spool).code in (0, 1)
    compared = cli("compare", "--store", store, "--since", "1h", "--format", "json")
    document = json.loads(compared.out)
    environments = sorted({run["environment"] for run in document["runs"]})
    assert environments == ["production", "staging"] and len(document["runs"]) == 2 * len(SCENARIOS)


def test_compare_needs_a_store_and_a_duration(tmp_path: Path) -> None:
    missing = cli("compare")
    assert missing.code == 2 and "--store" in missing.err
    bad = cli("compare", "--store", f"sqlite:///{tmp_path / 'r.db'}", "--since", "yesterday")
    assert bad.code == 2 and "--since" in bad.err and "Traceback" not in bad.err
