"""Plan validation: everything is checked together, before any action."""

from __future__ import annotations

from pathlib import Path

import pytest

from parityprobe.config.load import LoadedEnvironments, load_environments, load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.errors import InputError
from parityprobe.model import Effect
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from tests.plugins import Echo, Write

REGISTRY = ProbeRegistry.of(Echo, Write)
ENVS = """\
environments:
  staging:
    vars: {team: payments}
    safety: {allow_effects: [read, write]}
  production:
    vars: {team: payments}
"""


def environments(tmp_path: Path, text: str = ENVS) -> LoadedEnvironments:
    path = tmp_path / "envs.yaml"
    path.write_text(text)
    return load_environments(path, Redactor())


def plan_for(tmp_path: Path, scenario: str, envs: str = ENVS) -> Plan:
    (tmp_path / "s.yaml").write_text(scenario)
    return build_plan(environments(tmp_path, envs), load_scenarios([tmp_path / "s.yaml"]), REGISTRY)


def messages(exc: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_valid_plan_resolves_probes_and_effects(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        "id: s\nsteps:\n"
        "  - {id: a, probe: test.echo, with: {value: '${{ vars.team }}'}}\n"
        "  - {id: b, probe: test.echo, with: {token: '${{ steps.a.outputs.token }}'}}\n"
        "cleanup:\n  - {id: c, probe: test.echo, with: {value: '${{ steps.b.outputs.value }}'}}\n",
    )
    (scenario,) = plan.scenarios
    assert [p.step.id for p in scenario.steps] == ["a", "b"]
    assert scenario.steps[0].probe is Echo and scenario.steps[0].effect is Effect.READ
    assert [e.name for e in plan.environments] == ["staging", "production"]


def test_unknown_probe_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        plan_for(tmp_path, "id: s\nsteps:\n  - {id: a, probe: vault.nope}\n")
    (message,) = messages(exc)
    assert ":3: steps[0].probe: unknown probe 'vault.nope'" in message and "test.echo" in message


def test_with_binds_to_the_probes_parameter_model(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        plan_for(
            tmp_path,
            "id: s\nsteps:\n  - id: a\n    probe: test.echo\n    with:\n      valu: x\n      sleep: soon\n",
        )
    found = messages(exc)
    assert any(":6: steps[0].with.valu: unknown parameter for probe test.echo" in m for m in found)
    assert any(":7: steps[0].with.sleep:" in m and "number" in m for m in found)


def test_secret_parameter_refuses_literals(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        plan_for(tmp_path, "id: s\nsteps:\n  - {id: a, probe: test.echo, with: {token: literal-token}}\n")
    assert "takes a secret" in messages(exc)[0]


def test_references_must_point_to_earlier_steps_and_known_outputs(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        plan_for(
            tmp_path,
            "id: s\nsteps:\n"
            "  - {id: a, probe: test.echo, with: {value: '${{ steps.b.outputs.value }}'}}\n"
            "  - {id: b, probe: test.echo, with: {value: '${{ steps.a.outputs.nope }}'}}\n"
            "  - {id: c, probe: test.echo, with: {value: '${{ vars.region }}'}}\n",
        )
    found = messages(exc)
    assert any(":3: steps[0].with.value: steps.b is not a step before this one" in m for m in found)
    assert any(":4: steps[1].with.value: step 'a' has no output 'nope'" in m for m in found)
    # One problem naming every environment it concerns, not one line per environment.
    assert [m for m in found if "vars.region" in m] == [
        f"{tmp_path / 's.yaml'}:5: steps[2].with.value: "
        "vars.region is not defined for environments staging, production"
    ]


def test_effects_must_be_allowed_in_every_environment(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        plan_for(tmp_path, "id: s\nsteps:\n  - {id: a, probe: test.write}\n")
    (message,) = messages(exc)
    assert "effect write is not allowed in environment production" in message
    with pytest.raises(InputError) as exc:
        plan_for(tmp_path, "id: s\nsteps:\n  - {id: a, probe: test.write, effect: read}\n")
    assert any("a step cannot lower it" in m for m in messages(exc))


def test_plane_section_required(tmp_path: Path) -> None:
    registry = ProbeRegistry()
    (tmp_path / "s.yaml").write_text("id: s\nsteps:\n  - {id: a, probe: vault.kv_read, with: {path: x}}\n")
    with pytest.raises(InputError) as exc:
        build_plan(environments(tmp_path), load_scenarios([tmp_path / "s.yaml"]), registry)
    assert any("environments staging, production have no 'vault' section" in m for m in messages(exc))


def test_all_files_problems_reported_together(tmp_path: Path) -> None:
    library = tmp_path / "scenarios"
    library.mkdir()
    (library / "a.yaml").write_text("id: a\nsteps:\n  - {id: x, probe: test.nope}\n")
    (library / "b.yaml").write_text("id: b\nsteps:\n  - {id: x, probe: test.echo, bogus: 1}\n")
    with pytest.raises(InputError) as exc:
        load_scenarios([library])
    assert [p.file.name for p in exc.value.problems if p.file] == ["b.yaml"]
    (library / "b.yaml").write_text("id: b\nsteps:\n  - {id: x, probe: test.nope}\n")
    with pytest.raises(InputError) as exc:
        build_plan(environments(tmp_path), load_scenarios([library]), REGISTRY)
    assert sorted(p.file.name for p in exc.value.problems if p.file) == ["a.yaml", "b.yaml"]


SIEM_ENVS = """\
environments:
  staging:
    siem:
      connectors:
        audit: {type: file, path: staging-audit.log}
  production:
    siem:
      default: logs
      connectors:
        audit: {type: file, path: production-audit.log}
        logs: {type: file, path: production-logs.log}
"""


def test_siem_expectations_name_connectors_every_environment_has(tmp_path: Path) -> None:
    step = "  - id: a\n    probe: test.echo\n    siem:\n"
    plan = plan_for(
        tmp_path, f"id: s\nsteps:\n{step}      - {{match: {{type: response}}, within: 10s}}\n", SIEM_ENVS
    )
    (expectation,) = plan.scenarios[0].steps[0].step.siem
    assert (expectation.connector, expectation.within, expectation.expect) == (None, 10, "present")
    with pytest.raises(InputError) as exc:
        plan_for(tmp_path, f"id: s\nsteps:\n{step}      - {{connector: logs, within: 1m}}\n", SIEM_ENVS)
    (problem,) = exc.value.problems
    assert (problem.line, problem.field) == (6, "steps[0].siem[0].connector")
    assert "environment staging has no SIEM connector 'logs'" in str(problem)
    with pytest.raises(InputError) as exc:
        plan_for(tmp_path, f"id: s\nsteps:\n{step}      - {{within: 1m}}\n")  # no siem section at all
    assert "environments staging, production have no default SIEM connector" in messages(exc)[0]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("{within: 10s, mach: {type: x}}", "steps[0].siem[0].mach"),
        ("{within: 0s}", "steps[0].siem[0].within"),
        ("{within: 10s, expect: maybe}", "steps[0].siem[0].expect"),
        ("{within: 10s, match: {'bad field': x}}", "steps[0].siem[0].match"),
        ("{match: {type: x}}", "steps[0].siem[0].within"),
    ],
)
def test_a_bad_siem_expectation_is_located(tmp_path: Path, entry: str, field: str) -> None:
    with pytest.raises(InputError) as exc:
        plan_for(
            tmp_path,
            f"id: s\nsteps:\n  - id: a\n    probe: test.echo\n    siem:\n      - {entry}\n",
            SIEM_ENVS,
        )
    assert any(p.field is not None and p.field.startswith(field) and p.line == 6 for p in exc.value.problems)


def test_an_unknown_connector_type_in_an_environment_is_located(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        environments(tmp_path, SIEM_ENVS.replace("type: file, path: staging", "type: splunkk, path: staging"))
    (problem,) = exc.value.problems
    assert problem.line == 5 and str(problem.field).startswith("environments.staging.siem.connectors.audit")
