"""Loading input files: every problem names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from parityprobe.config.load import load_environments, load_scenario, load_scenarios
from parityprobe.errors import InputError
from parityprobe.redact import Redactor
from parityprobe.secret import Secret


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[InputError]) -> list[tuple[int | None, str | None, str]]:
    return [(p.line, p.field, p.message) for p in exc.value.problems]


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "id: x\nsteps:\n  - id: a\n    probe: [unclosed\n")
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    (problem,) = exc.value.problems
    assert problem.file == path
    assert problem.line is not None and problem.line >= 4
    assert "invalid YAML" in problem.message


def test_unknown_field_in_step_is_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        "id: s\nsteps:\n  - id: a\n    probe: test.echo\n  - id: b\n    probe: test.echo\n    expcet: {}\n",
    )
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert problems(exc) == [(7, "steps[1].expcet", "unknown field")]
    assert str(exc.value.problems[0]).startswith(f"{path}:7: steps[1].expcet: unknown field")


def test_wrong_type_and_missing_field(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "id: s\nsteps:\n  - id: a\n    expect: {outcome: maybe}\n")
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    found = problems(exc)
    assert (3, "steps[0].probe", "required field is missing") in found
    assert any(line == 4 and field == "steps[0].expect.outcome" for line, field, _ in found)


def test_duplicate_keys(tmp_path: Path) -> None:
    # Duplicate step ids are the plan's to find, where each id's line is known (test_plan_hardening.py).
    path = write(tmp_path, "s.yaml", "id: s\nid: t\nsteps:\n  - {id: a, probe: p}\n")
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert problems(exc) == [(2, "id", "duplicate key")]


def test_durations_and_numeric_day_of_week(tmp_path: Path) -> None:
    ok = write(
        tmp_path,
        "ok.yaml",
        "id: s\nschedule: {cron: '0 3 * * sun'}\n"
        "steps:\n  - {id: a, probe: p, expect: {ttl: {max: 1h30m}}}\n",
    )
    loaded = load_scenario(ok)
    assert loaded.scenario.steps[0].expect.ttl is not None
    assert loaded.scenario.steps[0].expect.ttl.max == 5400
    bad = write(tmp_path, "bad.yaml", "id: s\nschedule: {cron: '0 3 * * 0'}\nsteps:\n  - {id: a, probe: p}\n")
    with pytest.raises(InputError) as exc:
        load_scenario(bad)
    assert problems(exc)[0][:2] == (2, "schedule.cron")
    assert "names" in problems(exc)[0][2]


def test_scenario_ids_unique_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "id: same\nsteps:\n  - {id: a, probe: p}\n")
    write(tmp_path, "b.yaml", "id: same\nsteps:\n  - {id: a, probe: p}\n")
    with pytest.raises(InputError) as exc:
        load_scenarios([tmp_path])
    assert "also used by" in exc.value.problems[0].message


ENVIRONMENTS = """\
environments:
  staging:
    vault:
      address: http://127.0.0.1:8200
      auth: {method: approle, role_id: {file: role-id}, secret_id: {env: PP_TEST_SECRET_ID}}
    vars: {account_id: 111111111111}
  production:
    vault: {address: http://127.0.0.1:8201, auth: {method: token, token: {env: PP_TEST_TOKEN}}}
"""


def test_environments_resolve_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "role-id", "the-role-id-value\n")
    monkeypatch.setenv("PP_TEST_SECRET_ID", "secret-id-value-123")
    monkeypatch.setenv("PP_TEST_TOKEN", "token-value-456")
    redactor = Redactor()
    loaded = load_environments(write(tmp_path, "envs.yaml", ENVIRONMENTS), redactor)
    staging, production = loaded.environments
    assert staging.name == "staging" and production.effective_tier.value == "production"
    assert staging.vars == {"account_id": "111111111111"}
    auth = staging.vault.auth if staging.vault else None
    assert auth is not None and auth.method == "approle"
    assert auth.role_id.secret() == Secret("the-role-id-value")
    assert "the-role-id-value" not in repr(loaded)
    assert redactor.redact("x secret-id-value-123 token-value-456") == "x *** ***"


def test_missing_secret_variable_is_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "role-id", "rid")
    monkeypatch.delenv("PP_TEST_SECRET_ID", raising=False)
    monkeypatch.setenv("PP_TEST_TOKEN", "t")
    with pytest.raises(InputError) as exc:
        load_environments(write(tmp_path, "envs.yaml", ENVIRONMENTS), Redactor())
    assert problems(exc) == [
        (5, "environments.staging.vault.auth.secret_id", "environment variable PP_TEST_SECRET_ID is not set")
    ]


def test_literal_secret_is_refused(tmp_path: Path) -> None:
    text = ENVIRONMENTS.replace("{env: PP_TEST_TOKEN}", "hvs.literal-token")
    with pytest.raises(InputError) as exc:
        load_environments(write(tmp_path, "envs.yaml", text), Redactor())
    ((line, field, message),) = problems(exc)
    assert (line, field) == (8, "environments.production.vault.auth.token")
    assert "never a literal value" in message
    assert "hvs.literal-token" not in str(exc.value)


def test_unknown_environment_selected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_TEST_TOKEN", "t")
    text = (
        "environments:\n"
        "  prod: {vault: {address: 'http://x:1', auth: {method: token, token: {env: PP_TEST_TOKEN}}}}\n"
    )
    with pytest.raises(InputError) as exc:
        load_environments(write(tmp_path, "envs.yaml", text), Redactor(), only=["staging"])
    assert "no environment named 'staging'" in exc.value.problems[0].message
