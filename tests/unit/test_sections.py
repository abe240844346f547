"""Pluggable environment sections: each plane's settings model comes from its plugin, with located errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from parityprobe.config.environments import SectionRegistry, SectionSettings
from parityprobe.config.load import load_environments, parse_environments
from parityprobe.errors import InputError
from parityprobe.probes.vault.settings import VaultSettings
from parityprobe.redact import Redactor


class HttpSettings(SectionSettings):
    """A third-party plane's section, registered like the built-in ones."""

    base_url: str
    timeout_seconds: float = Field(default=5.0, gt=0)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "envs.yaml"
    path.write_text(text)
    return path


def test_built_in_sections_validate_and_give_typed_access(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s.abcdefghijklmnopqrstuvwx\n")
    path = write(
        tmp_path,
        "environments:\n  staging:\n    vault:\n      address: http://127.0.0.1:8200/\n"
        "      auth: {method: token, token: {file: token}}\n      ca_cert: ca.pem\n",
    )
    (env,) = load_environments(path, Redactor()).environments
    vault = env.section("vault", VaultSettings)
    assert vault is not None and vault.address == "http://127.0.0.1:8200"
    assert vault.ca_cert == str(tmp_path / "ca.pem")  # relative to the environments file
    assert env.section("aws", VaultSettings) is None
    with pytest.raises(TypeError):
        env.section("vault", HttpSettings)


def test_an_unknown_section_is_located_and_names_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "environments:\n  staging:\n    vars: {a: b}\n    vualt: {address: x}\n")
    with pytest.raises(InputError) as caught:
        parse_environments(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (4, "environments.staging.vualt")
    assert "unknown environment section 'vualt'" in problem.message and "vault" in problem.message


def test_a_plugin_section_is_validated_with_located_errors(tmp_path: Path) -> None:
    registry = SectionRegistry.named({"http": HttpSettings})
    path = write(tmp_path, "environments:\n  staging:\n    http:\n      base_url: https://api\n")
    parsed, _ = parse_environments(path, registry)
    section = parsed.environments["staging"].section("http", HttpSettings)
    assert section is not None and section.base_url == "https://api"
    bad = write(tmp_path, "environments:\n  staging:\n    http:\n      timeout_seconds: -1\n")
    with pytest.raises(InputError) as caught:
        parse_environments(bad, registry)
    found = {(p.line, p.field) for p in caught.value.problems}
    assert found == {
        (3, "environments.staging.http.base_url"),
        (4, "environments.staging.http.timeout_seconds"),
    }


def test_a_section_entry_point_that_is_not_a_settings_model_is_refused(tmp_path: Path) -> None:
    from importlib.metadata import EntryPoint

    registry = SectionRegistry({"odd": EntryPoint("odd", "pathlib:Path", "parityprobe.sections")})
    path = write(tmp_path, "environments:\n  staging:\n    odd: {}\n")
    with pytest.raises(InputError) as caught:
        parse_environments(path, registry)
    (problem,) = caught.value.problems
    assert problem.line == 3 and "is not a SectionSettings model" in problem.message


def test_an_environment_name_is_a_short_plain_name(tmp_path: Path) -> None:
    path = write(tmp_path, 'environments:\n  ok: {}\n  "st\\nging": {}\n')
    with pytest.raises(InputError) as caught:
        parse_environments(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (3, "environments.st\nging")
    assert "an environment name is" in str(problem) and "\n" not in str(problem)
