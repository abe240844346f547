"""Hostile and odd YAML: every bad file is a located InputError (file, line, field), never a crash or a hang.

Most tests run through both parsers, libyaml's and the pure-Python one, which must agree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parityprobe.config import yamlsource
from parityprobe.config.load import load_scenario, load_scenarios
from parityprobe.config.yamlchecks import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES
from parityprobe.config.yamlsource import load_yaml
from parityprobe.errors import InputError, Problem

REPO = Path(__file__).resolve().parents[2]
BUILT_IN = [*sorted((REPO / "scenarios").glob("*.yaml")), REPO / "src/parityprobe/lab/default_profile.yaml"]
PARSERS = [pytest.param(True, id="libyaml"), pytest.param(False, id="python")]
if not yamlsource.LIBYAML:
    PARSERS[0] = pytest.param(
        True, id="libyaml", marks=pytest.mark.skip(reason="PyYAML built without libyaml")
    )

LOL = '"lol"'
# Nine levels of nine aliases: 342 bytes that expand to 9**9 strings.
LAUGHS = "".join(
    f"{name}: &{name} [{','.join([f'*{prev}' if prev else LOL] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def refused(path: Path, libyaml: bool | None = True) -> list[Problem]:
    with pytest.raises(InputError) as exc:
        load_yaml(path, libyaml=libyaml)
    assert all(p.file == path for p in exc.value.problems)
    assert all("\n" not in str(p) for p in exc.value.problems)
    return exc.value.problems


def only(path: Path, libyaml: bool | None = True) -> tuple[int | None, str | None, str]:
    (problem,) = refused(path, libyaml)
    return problem.line, problem.field, problem.message


# --- aliases, depth, size ---------------------------------------------------------------------------


@pytest.mark.parametrize("libyaml", PARSERS)
def test_billion_laughs_stops_at_the_alias_that_crosses_the_limit(tmp_path: Path, libyaml: bool) -> None:
    line, field, message = only(write(tmp_path, "laughs.yaml", LAUGHS), libyaml)
    # a..e expand to 74,738 nodes; the first *e on line 6 takes the document past 100,000.
    assert (line, field) == (6, "f[0]")
    assert "more than 100000 nodes" in message and "aliases expanded" in message


@pytest.mark.parametrize("libyaml", PARSERS)
def test_modest_aliases_still_load(tmp_path: Path, libyaml: bool) -> None:
    data, locator = load_yaml(write(tmp_path, "ok.yaml", "\n".join(LAUGHS.splitlines()[:3])), libyaml=libyaml)
    assert len(data["c"]) == 9 and data["c"][8][8] == ["lol"] * 9
    assert locator.line(("c", 8, 8, 0)) == 1  # an aliased value is located at its anchor


@pytest.mark.parametrize("libyaml", PARSERS)
def test_too_many_aliases(tmp_path: Path, libyaml: bool) -> None:
    text = "a: &a x\nb:\n" + "  - *a\n" * (MAX_ALIASES + 1)
    line, field, message = only(write(tmp_path, "many.yaml", text), libyaml)
    assert (line, field) == (MAX_ALIASES + 3, f"b[{MAX_ALIASES}]")
    assert f"more than {MAX_ALIASES} aliases" in message


@pytest.mark.parametrize("libyaml", PARSERS)
def test_recursive_alias(tmp_path: Path, libyaml: bool) -> None:
    line, field, message = only(write(tmp_path, "loop.yaml", "id: s\nsteps: &x\n  - *x\n"), libyaml)
    assert (line, field) == (3, "steps[0]")
    assert message == "alias *x refers to a node that contains it"


@pytest.mark.parametrize("libyaml", PARSERS)
def test_deep_flow_nesting(tmp_path: Path, libyaml: bool) -> None:
    line, field, message = only(write(tmp_path, "deep.yaml", "id: s\na: " + "[" * 50_000 + "\n"), libyaml)
    assert line == 2
    if libyaml:
        # libyaml looks up to 1024 characters ahead for a possible key and meets its own limit (1000) first.
        assert message == "invalid YAML: while increasing flow level: exceeded maximum nesting depth"
    else:
        assert (field, message) == (
            "a" + "[0]" * (MAX_DEPTH - 1),
            f"nested more than {MAX_DEPTH} levels deep",
        )
    nested = "a: " + "[" * 100 + "]" * 100 + "\n"  # short enough for libyaml to parse: our limit speaks
    assert only(write(tmp_path, "short.yaml", nested), libyaml) == (
        1,
        "a" + "[0]" * (MAX_DEPTH - 1),
        f"nested more than {MAX_DEPTH} levels deep",
    )


@pytest.mark.parametrize("libyaml", PARSERS)
def test_deep_mappings(tmp_path: Path, libyaml: bool) -> None:
    block = "".join(f"{' ' * i}k{i}:\n" for i in range(1000)).rstrip("\n") + " x\n"
    line, field, message = only(write(tmp_path, "block.yaml", block), libyaml)
    # k0 opens the top mapping (depth 1); the mapping holding k64, on line 65, is one level too many.
    assert (line, field) == (MAX_DEPTH + 1, ".".join(f"k{i}" for i in range(MAX_DEPTH)))
    assert message == f"nested more than {MAX_DEPTH} levels deep"
    flow = "# flow\n" + "{a: " * 2000 + "1" + "}" * 2000 + "\n"
    line, field, message = only(write(tmp_path, "flow.yaml", flow), libyaml)
    assert line == 2 and "nest" in message


@pytest.mark.parametrize("libyaml", PARSERS)
def test_depth_counts_what_an_alias_brings(tmp_path: Path, libyaml: bool) -> None:
    text = "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    line, field, message = only(write(tmp_path, "deep.yaml", text), libyaml)
    assert line == 2 and field == "b" + "[0]" * 30
    assert message == f"nested more than {MAX_DEPTH} levels deep once aliases are expanded"


def test_file_too_large(tmp_path: Path) -> None:
    row = "# " + "x" * 61 + "\n"  # 64 bytes, so the first MiB ends exactly at the end of a line
    path = write(tmp_path, "big.yaml", row * (MAX_FILE_BYTES // 64 + 1))
    line, field, message = only(path)
    assert (line, field) == (MAX_FILE_BYTES // 64 + 1, None)
    assert message == "file is larger than 1 MiB (the limit for input files)"


# --- bytes that are not YAML text ------------------------------------------------------------------


@pytest.mark.parametrize("libyaml", PARSERS)
def test_non_utf8_names_the_line_of_the_first_bad_byte(tmp_path: Path, libyaml: bool) -> None:
    text = b"id: s\nsteps:\n  - {id: a, probe: p}\n  - {id: b, probe: \xff\xfe}\n"
    line, field, message = only(write(tmp_path, "latin.yaml", text), libyaml)
    assert (line, field) == (4, None)
    assert message == "not UTF-8 text: byte 0xff at column 20 cannot be decoded"


def test_binary_garbage(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
    assert only(write(tmp_path, "image.yaml", png)) == (
        1,
        None,
        "not UTF-8 text: byte 0x89 at column 1 cannot be decoded",
    )


@pytest.mark.parametrize("libyaml", PARSERS)
def test_nul_and_control_characters(tmp_path: Path, libyaml: bool) -> None:
    nul = write(tmp_path, "nul.yaml", b"id: s\x00\nsteps: []\n")
    assert only(nul, libyaml) == (1, None, "control character U+0000 at column 6 is not allowed in YAML")
    bell = write(tmp_path, "bell.yaml", "id: s\n# a comment\nx: a\x07b\n")
    assert only(bell, libyaml) == (3, None, "control character U+0007 at column 5 is not allowed in YAML")


@pytest.mark.parametrize("libyaml", PARSERS)
def test_syntax_errors_are_located_and_one_line(tmp_path: Path, libyaml: bool) -> None:
    line, _, message = only(write(tmp_path, "bad.yaml", "id: s\nsteps: [a,\n  b\n"), libyaml)
    assert line is not None and line >= 3 and message.startswith("invalid YAML: ")
    line, _, message = only(write(tmp_path, "anchor.yaml", "a: &x 1\nb: &x 2\n"), libyaml)
    assert line == 2 and "duplicate anchor" in message and "(line 1)" in message


# --- shapes and types that are not plain data ------------------------------------------------------


def test_empty_scalar_and_list_files(tmp_path: Path) -> None:
    cases = {
        "empty.yaml": ("", 1, "the file holds no YAML document: expected a mapping (Scenario)"),
        "comments.yaml": ("# nothing\n", 1, "the file holds no YAML document: expected a mapping (Scenario)"),
        "scalar.yaml": (
            "# a comment\n\njust text\n",
            3,
            "expected a mapping at the top of the file (Scenario), found text",
        ),
        "list.yaml": (
            "# a comment\n- a\n- b\n",
            2,
            "expected a mapping at the top of the file (Scenario), found a list",
        ),
        "number.yaml": ("42\n", 1, "expected a mapping at the top of the file (Scenario), found a number"),
    }
    for name, (text, line, message) in cases.items():
        path = write(tmp_path, name, text)
        with pytest.raises(InputError) as exc:
            load_scenario(path)
        assert exc.value.problems == [Problem(path, line, None, message)], name


@pytest.mark.parametrize("libyaml", PARSERS)
def test_keys_must_be_text(tmp_path: Path, libyaml: bool) -> None:
    text = (
        "id: s\n1: x\nnull: y\n? [a]\n: 1\non: z\nsteps:\n  - {id: a, probe: p, with: {2.5: x}}\n"
        "? !!str [b]\n: 2\n"
    )
    found = [(p.line, p.field, p.message) for p in refused(write(tmp_path, "keys.yaml", text), libyaml)]
    assert found == [
        (2, "1", "mapping key must be text, not a number: quote it"),
        (3, "null", "mapping key must be text, not null: quote it"),
        (4, None, "mapping key must be text, not a list"),
        (6, "on", "mapping key must be text, not a boolean: quote it"),
        (8, "steps[0].with.2.5", "mapping key must be text, not a number: quote it"),
        (9, None, "mapping key must be text, not a list"),
    ]


def test_keys_must_be_text_in_a_scenario(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "id: s\nsteps:\n  - id: a\n    probe: p\n    with: {1: x}\n")
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert exc.value.problems == [
        Problem(path, 5, "steps[0].with.1", "mapping key must be text, not a number: quote it")
    ]


@pytest.mark.parametrize("libyaml", PARSERS)
def test_tags_beyond_plain_data_are_refused(tmp_path: Path, libyaml: bool) -> None:
    text = (
        "id: !!python/object:os.system s\nsteps:\n  - id: a\n    probe: p\n    with:\n"
        "      t: !!timestamp 2020-01-01\n      b: !!binary aGVsbG8=\n      s: !!set {a, b}\n"
        "      o: !!omap [{a: 1}]\n      l: !local 1\n"
    )
    found = [(p.line, p.field, p.message) for p in refused(write(tmp_path, "tags.yaml", text), libyaml)]
    plain = "input files hold plain data (text, numbers, booleans, null, lists, mappings)"
    assert found == [
        (1, "id", f"YAML tag !!python/object:os.system is not supported: {plain}"),
        (6, "steps[0].with.t", f"YAML tag !!timestamp is not supported: {plain}"),
        (7, "steps[0].with.b", f"YAML tag !!binary is not supported: {plain}"),
        (8, "steps[0].with.s", f"YAML tag !!set is not supported: {plain}"),
        (9, "steps[0].with.o", f"YAML tag !!omap is not supported: {plain}"),
        (10, "steps[0].with.l", f"YAML tag !local is not supported: {plain}"),
    ]


@pytest.mark.parametrize("libyaml", PARSERS)
def test_unquoted_dates_stay_text(tmp_path: Path, libyaml: bool) -> None:
    data, _ = load_yaml(
        write(tmp_path, "d.yaml", "since: 2024-01-01\nat: 2024-01-01 10:00:00\neq: =\n"), libyaml=libyaml
    )
    assert data == {"since": "2024-01-01", "at": "2024-01-01 10:00:00", "eq": "="}


@pytest.mark.parametrize("libyaml", PARSERS)
def test_scalars_that_cannot_be_read(tmp_path: Path, libyaml: bool) -> None:
    text = "a: 1\nb: !!int abc\n"
    assert only(write(tmp_path, "int.yaml", text), libyaml) == (
        2,
        None,
        "invalid YAML: cannot read 'abc' as !!int",
    )
    text = "a: !!bool maybe\n"
    assert only(write(tmp_path, "bool.yaml", text), libyaml) == (
        1,
        None,
        "invalid YAML: cannot read 'maybe' as !!bool",
    )
    huge = "1" * 5000
    line, _, message = only(write(tmp_path, "huge.yaml", f"a: 1\n\nb: {huge}\n"), libyaml)
    assert line == 3 and message == f"invalid YAML: cannot read '{'1' * 20}…' as !!int"


@pytest.mark.parametrize("libyaml", PARSERS)
def test_merge_keys_override_without_a_duplicate(tmp_path: Path, libyaml: bool) -> None:
    text = (
        "base: &base {probe: p, expect: {outcome: allowed}}\nsteps:\n  - <<: *base\n    id: a\n"
        "    expect: {outcome: denied}\n"
    )
    data, locator = load_yaml(write(tmp_path, "merge.yaml", text), libyaml=libyaml)
    assert data["steps"] == [{"probe": "p", "id": "a", "expect": {"outcome": "denied"}}]
    assert locator.line(("steps", 0, "probe")) == 1
    assert locator.line(("steps", 0, "expect", "outcome")) == 5
    dup = write(tmp_path, "dup.yaml", "a: &a {x: 1}\nb:\n  <<: *a\n  y: 2\n  y: 3\n")
    assert only(dup, libyaml) == (5, "b.y", "duplicate key")


# --- the two parsers agree; the C one is used --------------------------------------------------------


@pytest.mark.skipif(not yamlsource.LIBYAML, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", BUILT_IN, ids=lambda p: p.name)
def test_libyaml_and_python_give_the_same_data_and_lines(path: Path) -> None:
    c_data, c_locator = load_yaml(path, libyaml=True)
    py_data, py_locator = load_yaml(path, libyaml=False)
    assert c_data == py_data and c_data
    assert c_locator.lines == py_locator.lines and len(c_locator.lines) > 10


@pytest.mark.skipif(not yamlsource.LIBYAML, reason="PyYAML built without libyaml")
def test_libyaml_by_default_and_python_where_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The two parsers word this syntax error differently, which tells which one ran.
    path = write(tmp_path, "bad.yaml", "a: [1,\n")
    c_error, python_error = only(path, libyaml=True), only(path, libyaml=False)
    assert c_error != python_error
    assert only(path, libyaml=None) == c_error
    monkeypatch.setattr(yamlsource, "LIBYAML", False)
    assert only(path, libyaml=None) == only(path, libyaml=True) == python_error


# --- load_scenarios ---------------------------------------------------------------------------------


def test_no_scenario_files_names_the_directories(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    write(first, "notes.txt", "not a scenario")
    with pytest.raises(InputError) as exc:
        load_scenarios([first, second])
    message = "no scenario files (*.yaml, *.yml) in this directory"
    assert exc.value.problems == [Problem(first, None, None, message), Problem(second, None, None, message)]


# --- through the command line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param(LAUGHS, 6, id="billion-laughs"),
        pytest.param(b"id: s\nsteps: [\xc3\x28]\n", 2, id="not-utf8"),
    ],
)
def test_validate_exits_2_with_one_located_line(tmp_path: Path, content: str | bytes, line: int) -> None:
    environments = write(tmp_path, "environments.yaml", "environments: {staging: {vars: {team: x}}}\n")
    scenario = write(tmp_path, "scenario.yaml", content)
    result = subprocess.run(
        [sys.executable, "-m", "parityprobe", "validate", "-e", str(environments), str(scenario)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (error,) = result.stderr.splitlines()
    assert error.startswith(f"error: {scenario}:{line}: ")
