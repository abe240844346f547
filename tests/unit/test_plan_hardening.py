"""Bad input never runs: every malformed template, secret misuse, impossible schedule, duplicate id and
bad reference is refused by ``build_plan``, located at its file, line and field, all problems together."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from parityprobe.config.load import load_scenarios
from parityprobe.config.plan import Plan, build_plan
from parityprobe.errors import InputError
from parityprobe.model import Effect
from parityprobe.probe import Failure, ProbeContext, ProbeParams, ProbeResult
from parityprobe.redact import Redactor
from parityprobe.registry import ProbeRegistry
from parityprobe.runner import Runner
from parityprobe.secret import Secret
from tests.plugins import Echo, EchoParams, Write
from tests.unit.test_plan import ENVS, environments, plan_for


class NestedParams(ProbeParams):
    """Containers and a constrained string, as an HTTP or AWS probe would take them."""

    paths: list[str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    tokens: list[Secret] = Field(default_factory=list)
    arn: str | None = Field(default=None, pattern=r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$")


class Nested:
    """A probe with nested parameters; it does nothing."""

    name: ClassVar[str] = "test.nested"
    Params: ClassVar[type[ProbeParams]] = NestedParams
    outputs: ClassVar[frozenset[str]] = frozenset()
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    section: ClassVar[str | None] = None
    effect: ClassVar[Effect] = Effect.READ

    def run(self, params: NestedParams, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult()

    def translate(self, exc: BaseException) -> Failure | None:
        return None


NESTED = ProbeRegistry.of(Echo, Write, Nested)

Found = tuple[str, int | None, str | None, str]


def nested_plan(tmp_path: Path, scenario: str, envs: str = ENVS) -> Plan:
    (tmp_path / "s.yaml").write_text(scenario)
    return build_plan(environments(tmp_path, envs), load_scenarios([tmp_path / "s.yaml"]), NESTED)


def refused(tmp_path: Path, scenario: str, envs: str = ENVS) -> list[Found]:
    """Every problem as (file name, line, field, message); fails when the plan is accepted."""
    with pytest.raises(InputError) as exc:
        nested_plan(tmp_path, scenario, envs)
    return [(p.file.name if p.file else "", p.line, p.field, p.message) for p in exc.value.problems]


def one_value(text: str) -> str:
    return f"id: s\nsteps:\n  - id: a\n    probe: test.echo\n    with:\n      value: '{text}'\n"


# 1. Every ``${{`` starts a well-formed reference, checked at validation.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${{ vars.team /db", "unterminated reference '${{ vars.team /db'"),
        ("p/${{vars.team}", "unterminated reference '${{vars.team}'"),
        ("${{ vars.team ${{ vars.team }}", "a new ${{ starts before"),
        ("${{ }}", "empty reference '${{ }}'"),
        ("${{ secrets.token }}", "unknown expression 'secrets.token'"),
        ("${{ vars.team }}/${{ vars.team-x }}", "unknown expression 'vars.team-x'"),
        ("${{ vars.team }}}}", "stray '}}' right after '${{ vars.team }}'"),
        ("x${{ vars.team }}}", "stray '}' right after '${{ vars.team }}'"),
        ("{{ vars.team }}/db", "'{{ vars.team }}' looks like a reference without its '$'"),
    ],
)
def test_malformed_template_is_refused_at_its_parameter(tmp_path: Path, text: str, expected: str) -> None:
    ((file, line, field, message),) = refused(tmp_path, one_value(text))
    assert (file, line, field) == ("s.yaml", 6, "steps[0].with.value")
    assert expected in message


def test_a_dollar_before_a_reference_is_plain_text(tmp_path: Path) -> None:
    # No escape syntax: ``$${{`` is a literal '$' followed by a reference.
    plan = plan_for(tmp_path, one_value("$${{ vars.team }}"))
    assert plan.scenarios[0].steps[0].step.with_["value"] == "$${{ vars.team }}"


def test_nested_values_and_mapping_keys_are_checked(tmp_path: Path) -> None:
    found = refused(
        tmp_path,
        "id: s\nsteps:\n  - id: a\n    probe: test.nested\n    with:\n"
        "      paths: [ok, '${{ vars.team']\n"
        "      headers:\n"
        "        '${{ vars.team }}': x\n"
        "        X-Team: '${{ vars.nope }}'\n",
    )
    assert sorted(found) == [
        (
            "s.yaml",
            6,
            "steps[0].with.paths[1]",
            "unterminated reference '${{ vars.team': every ${{ needs a closing }}",
        ),
        (
            "s.yaml",
            8,
            "steps[0].with.headers.${{ vars.team }}",
            "a mapping key cannot hold a reference: '${{ vars.team }}'",
        ),
        (
            "s.yaml",
            9,
            "steps[0].with.headers.X-Team",
            "vars.nope is not defined for environments staging, production",
        ),
    ]


# 2. Secret outputs go whole into secret parameters, and nowhere else.

SECRET_MISUSE = """\
id: s
steps:
  - id: login
    probe: test.echo
  - id: embedded
    probe: test.echo
    with:
      value: 'p/${{ steps.login.outputs.token }}'
  - id: whole
    probe: test.echo
    with:
      value: '${{ steps.login.outputs.token }}'
  - id: nested
    probe: test.nested
    with:
      paths: ['${{ steps.login.outputs.token }}']
      tokens: ['${{ steps.login.outputs.token }}']
      headers: {Authorization: 'Bearer ${{ steps.login.outputs.token }}'}
  - id: plain-into-secret
    probe: test.echo
    with:
      token: '${{ steps.login.outputs.value }}'
"""


def test_secret_output_outside_a_secret_parameter_is_refused(tmp_path: Path) -> None:
    found = refused(tmp_path, SECRET_MISUSE)
    assert [(f, line, field) for f, line, field, _ in found] == [
        ("s.yaml", 8, "steps[1].with.value"),
        ("s.yaml", 12, "steps[2].with.value"),
        ("s.yaml", 16, "steps[3].with.paths[0]"),
        ("s.yaml", 18, "steps[3].with.headers.Authorization"),
        ("s.yaml", 22, "steps[4].with.token"),
    ]
    embedded, whole, in_list, in_header, plain = (m for *_, m in found)
    assert embedded == (
        "steps.login.outputs.token is a secret output and cannot be part of a longer text; "
        "secrets go whole into test.echo's secret parameters: token"
    )
    assert whole == (
        "steps.login.outputs.token is a secret output and value does not take a secret; "
        "secrets go whole into test.echo's secret parameters: token"
    )
    assert in_list == (
        "steps.login.outputs.token is a secret output and paths[0] does not take a secret; "
        "secrets go whole into test.nested's secret parameters: tokens[]"
    )
    assert in_header.startswith("steps.login.outputs.token is a secret output and cannot be part of")
    assert plain.startswith("takes a secret: pass a step's secret output")
    assert "steps.login.outputs.value is not one" in plain


def test_secret_output_passed_whole_to_a_secret_parameter_is_allowed(tmp_path: Path) -> None:
    plan = nested_plan(
        tmp_path,
        "id: s\nsteps:\n  - {id: login, probe: test.echo}\n"
        "  - {id: b, probe: test.echo, with: {token: '${{ steps.login.outputs.token }}'}}\n"
        "  - {id: c, probe: test.nested, with: {tokens: ['${{ steps.login.outputs.token }}']}}\n"
        # A plain output's value is known only at run time: validation does not guess at it.
        "  - {id: d, probe: test.nested, with: {arn: '${{ steps.login.outputs.value }}'}}\n",
    )
    assert [p.step.id for p in plan.scenarios[0].steps] == ["login", "b", "c", "d"]


def test_values_built_from_vars_are_validated_in_every_environment(tmp_path: Path) -> None:
    envs = ENVS.replace(
        "staging:\n    vars: {team: payments}", "staging:\n    vars: {team: payments, id: '22'}"
    )
    envs = envs.replace(
        "production:\n    vars: {team: payments}", "production:\n    vars: {team: p, id: '1'}"
    )
    found = refused(
        tmp_path,
        "id: s\nsteps:\n  - id: a\n    probe: test.nested\n    with:\n"
        "      arn: 'arn:aws:iam::${{ vars.id }}:role/${{ vars.team }}'\n",
        envs,
    )
    ((file, line, field, message),) = found
    assert (file, line, field) == ("s.yaml", 6, "steps[0].with.arn")
    assert message.startswith("String should match pattern")
    assert message.endswith("(with the vars of environments staging, production)")


# 3. Schedules are parsed by the scheduler's own parser.


@pytest.mark.parametrize(
    ("schedule", "line", "field", "expected"),
    [
        ("{cron: '99 * * * *'}", 2, "schedule.cron", "minute field '99':"),
        ("{cron: '0 0 31 feb *'}", 2, "schedule.cron", "never fires"),
        ("{cron: '0 3 * * 1-5'}", 2, "schedule.cron", "names"),
        ("{cron: '*/0 * * * *'}", 2, "schedule.cron", "minute field '*/0': Increment must be higher than 0"),
        (
            "\n  cron: '*/15 * * * *'\n  jitter: 20m",
            4,
            "schedule.jitter",
            "shorter than the 15m between runs",
        ),
        ("\n  every: 10m\n  jitter: 10m", 4, "schedule.jitter", "shorter than the 10m between runs"),
        ("{every: 0s}", 2, "schedule.every", "greater than or equal to 1"),
        ("{every: 5m, cron: '0 3 * * sun'}", 2, "schedule", "either cron"),
        ("{jitter: 5s}", 2, "schedule", "either cron"),
    ],
)
def test_impossible_schedule_is_refused(
    tmp_path: Path, schedule: str, line: int, field: str, expected: str
) -> None:
    ((file, at, where, message),) = refused(
        tmp_path, f"id: s\nschedule: {schedule}\nsteps:\n  - {{id: a, probe: test.echo}}\n"
    )
    assert (file, at, where) == ("s.yaml", line, field)
    assert expected in message


def test_possible_schedule_with_jitter_is_accepted(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        "id: s\nschedule: {cron: '0 3 * * mon-fri', jitter: 5m}\nsteps:\n  - {id: a, probe: test.echo}\n",
    )
    schedule = plan.scenarios[0].source.scenario.schedule
    assert schedule is not None and schedule.jitter == 300


def test_interval_schedule_is_accepted(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path, "id: s\nschedule: {every: 15m, jitter: 30s}\nsteps:\n  - {id: a, probe: test.echo}\n"
    )
    schedule = plan.scenarios[0].source.scenario.schedule
    assert schedule is not None and (schedule.every, schedule.cron, schedule.jitter) == (900, None, 30)


# 4. A duplicate step id is located at its second occurrence.


def test_duplicate_step_id_points_at_the_second_occurrence(tmp_path: Path) -> None:
    found = refused(
        tmp_path,
        "id: s\nsteps:\n  - {id: a, probe: test.echo}\n  - {id: b, probe: test.echo}\n"
        "  - {id: a, probe: test.echo}\ncleanup:\n  - {id: b, probe: test.echo}\n",
    )
    assert found == [
        ("s.yaml", 5, "steps[2].id", "step id 'a' is already used by steps[0]"),
        ("s.yaml", 7, "cleanup[0].id", "step id 'b' is already used by steps[1]"),
    ]


# 5. One problem per mistake, naming the environments it concerns.


def test_undefined_var_and_disallowed_effect_are_one_line_each(tmp_path: Path) -> None:
    envs = ENVS.replace("    safety: {allow_effects: [read, write]}\n", "")
    found = refused(
        tmp_path,
        "id: s\nsteps:\n  - {id: a, probe: test.write, with: {value: '${{ vars.region }}'}}\n",
        envs,
    )
    assert sorted(found) == [
        (
            "s.yaml",
            3,
            "steps[0].probe",
            "effect write is not allowed in environments staging, production "
            "(safety.allow_effects: staging [read], production [read])",
        ),
        (
            "s.yaml",
            3,
            "steps[0].with.value",
            "vars.region is not defined for environments staging, production",
        ),
    ]


# 6. Outputs come only from steps that ran before.


def test_self_and_cleanup_references_are_refused(tmp_path: Path) -> None:
    found = refused(
        tmp_path,
        "id: s\nsteps:\n"
        "  - {id: a, probe: test.echo, with: {value: '${{ steps.a.outputs.value }}'}}\n"
        "  - {id: b, probe: test.echo, with: {value: '${{ steps.c.outputs.value }}'}}\n"
        "  - {id: x, probe: test.echo, with: {value: '${{ steps.ghost.outputs.value }}'}}\n"
        "cleanup:\n"
        "  - {id: c, probe: test.echo, with: {value: '${{ steps.b.outputs.value }}'}}\n",
    )
    assert found == [
        (
            "s.yaml",
            3,
            "steps[0].with.value",
            "steps.a is this step: a step can only use earlier steps' outputs",
        ),
        (
            "s.yaml",
            4,
            "steps[1].with.value",
            "steps.c is a cleanup step, which runs after every step: "
            "only a later cleanup step can use its outputs",
        ),
        ("s.yaml", 5, "steps[2].with.value", "there is no step 'ghost' in this scenario"),
    ]


def test_cleanup_uses_outputs_of_steps_at_run_time(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        "id: s\nsteps:\n  - {id: login, probe: test.echo, with: {value: abc}}\n"
        "cleanup:\n"
        "  - {id: revoke, probe: test.echo, with: {token: '${{ steps.login.outputs.token }}'}}\n"
        "  - {id: after, probe: test.echo, with: {value: '${{ steps.revoke.outputs.value }}-done'}}\n",
    )
    Echo.calls.clear()
    Runner(ProbeRegistry.of(Echo, Write), Redactor()).run(plan)
    revoke = [p for cid, p in Echo.calls if cid.endswith("-revoke")]
    after = [p for cid, p in Echo.calls if cid.endswith("-after")]
    assert len(revoke) == 2 and all(
        isinstance(p, EchoParams) and p.token == Secret("tok-abc") for p in revoke
    )
    assert [p.value for p in after] == ["v-done", "v-done"]


def test_a_step_whose_parameters_write_has_the_write_effect() -> None:
    from parityprobe.config.plan import least_effect
    from parityprobe.model import Effect
    from parityprobe.probes.vault.kv_write import KvWrite
    from parityprobe.probes.vault.request import VaultRequest

    assert least_effect(VaultRequest, {"method": "get", "path": "sys/mounts"}) is Effect.READ
    assert least_effect(VaultRequest, {"method": "POST", "path": "sys/x"}) is Effect.WRITE
    assert least_effect(VaultRequest, {"method": "${{ vars.m }}", "path": "x"}) is Effect.WRITE
    assert least_effect(KvWrite, {"path": "a"}) is Effect.READ
    assert least_effect(KvWrite, {"path": "a", "dry": False}) is Effect.WRITE


def test_a_writing_request_is_refused_in_a_read_only_environment(tmp_path: Path) -> None:
    from parityprobe.config.plan import build_plan
    from parityprobe.registry import ProbeRegistry
    from tests.unit.test_plan import environments

    (tmp_path / "s.yaml").write_text(
        "id: s\nsteps:\n  - {id: a, probe: vault.request, with: {method: POST, path: sys/x}}\n"
    )
    envs = (
        "environments:\n  staging:\n"
        "    vault: {address: http://127.0.0.1:1, auth: {method: token, token: {env: HOME}}}\n"
    )
    with pytest.raises(InputError) as caught:
        build_plan(environments(tmp_path, envs), load_scenarios([tmp_path / "s.yaml"]), ProbeRegistry())
    assert any("effect write is not allowed in environment staging" in str(p) for p in caught.value.problems)
