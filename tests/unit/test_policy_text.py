"""Reading Vault/OpenBao policy text: equal meaning reads equal, whatever the layout; nothing raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parityprobe.probes.vault.policy_text import (
    CAPABILITY_ORDER,
    PathRule,
    Policy,
    UnreadPolicy,
    read_policy,
    text_digest,
)


def rules(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    policy = read_policy(text)
    assert isinstance(policy, Policy), policy
    return {path: (rule.capability_text(), dict(rule.attributes)) for path, rule in policy.paths.items()}


def test_layout_comments_and_order_do_not_count() -> None:
    plain = (
        'path "secret/data/payments/*" {\n  capabilities = ["read", "update"]\n}\n'
        'path "secret/metadata/payments/*" {\n  capabilities = ["list"]\n}\n'
    )
    reworded = (
        "# payments\n// both forms of line comment\n"
        'path "secret/metadata/payments/*" { capabilities = [ "list", ] } /* block\n comment */\n'
        'path   "/secret/data/payments/*"\n{\n\tcapabilities=["update","read"]   # trailing\n}'
    )
    expected = {
        "secret/data/payments/*": ("read, update", {}),
        "secret/metadata/payments/*": ("list", {}),
    }
    assert rules(plain) == rules(reworded) == expected


def test_the_json_form_and_the_object_form_read_like_blocks() -> None:
    block = 'path "a/*" { capabilities = ["read"] }\npath "b" { capabilities = ["list"] }'
    as_json = json.dumps({"path": {"a/*": {"capabilities": ["read"]}, "b": {"capabilities": ["list"]}}})
    as_list = json.dumps({"path": [{"a/*": {"capabilities": ["read"]}}, {"b": {"capabilities": ["list"]}}]})
    as_object = 'path = {\n  "a/*" = { capabilities = ["read"] }\n  "b": { "capabilities": ["list"] }\n}'
    assert rules(block) == rules(as_json) == rules(as_list) == rules(as_object)


def test_a_path_written_twice_is_the_union_and_deny_wins() -> None:
    text = (
        'path "x" { capabilities = ["read"] }\npath "x" { capabilities = ["list"] }\n'
        'path "y" { capabilities = ["read", "deny", "sudo"] }\npath "z" {}'
    )
    assert rules(text) == {"x": ("read, list", {}), "y": ("deny", {}), "z": ("(none)", {})}


@pytest.mark.parametrize(
    ("legacy", "capabilities"),
    [
        ("read", "read, list"),
        ("write", "create, read, update, delete, list"),  # observed on OpenBao: no patch
        ("sudo", "create, read, update, delete, list, sudo"),
        ("deny", "deny"),
    ],
)
def test_the_legacy_policy_shorthand_expands(legacy: str, capabilities: str) -> None:
    assert rules(f'path "x" {{ policy = "{legacy}" }}') == {"x": (capabilities, {})}


def test_capabilities_in_the_canonical_order_then_unknown_ones() -> None:
    rule = PathRule(frozenset({"subscribe", "list", "zeta", "create", "recover"}))
    assert rule.capability_text() == "create, list, subscribe, recover, zeta"
    assert CAPABILITY_ORDER.index("read") < CAPABILITY_ORDER.index("update")


def test_other_attributes_are_normalised_text() -> None:
    one = (
        'path "p" {\n  capabilities = ["update"]\n  min_wrapping_ttl = "1h30m"\n  max_wrapping_ttl = 7200\n'
        '  allowed_parameters = { "role" = ["b", "a"] "*" = [] }\n  required_parameters = ["z", "y"]\n}'
    )
    two = (
        'path "p" { required_parameters = ["y", "z"], allowed_parameters = { "*" = [], role = ["a", "b"] }\n'
        'max_wrapping_ttl = "2h" min_wrapping_ttl = "90m" capabilities = ["update"] }'
    )
    expected = {
        "p": (
            "update",
            {
                "allowed_parameters": '{"*": [], "role": ["a", "b"]}',
                "max_wrapping_ttl": "2h",
                "min_wrapping_ttl": "1h 30m",
                "required_parameters": '["y", "z"]',
            },
        )
    }
    assert rules(one) == rules(two) == expected


def test_a_wrapping_ttl_that_is_not_a_duration_is_kept_as_text() -> None:
    assert rules('path "p" { max_wrapping_ttl = "soon" }')["p"][1] == {"max_wrapping_ttl": '"soon"'}


def test_names_and_unknown_top_level_keys_are_ignored() -> None:
    assert rules('name = "x"\npath "y" { capabilities = ["read"] }') == {"y": ("read", {})}


def test_an_empty_policy_grants_nothing() -> None:
    assert rules("") == rules("# nothing\n") == {}


@pytest.mark.parametrize(
    "text",
    [
        'path "x" <<EOF\nread\nEOF',  # heredoc
        'path "x" { capabilities = ["read"] ',  # unclosed
        'path "x" { capabilities = ["read"] }}',  # closes nothing
        'path "x" { capabilities = [1, 2] }',  # not names
        'path "x" "y" { capabilities = ["read"] }',  # two labels
        '/* never closed path "x" {}',
        'path "x" { capabilities = ["read"] } @',
        'path "x" { capabilities = [ "read" }',
        'path "unterminated { }',
        "path",
        '{"path": "x"}',  # a rule that is not an object
        "[" * 100_000,  # hostile nesting
        "{" * 100_000,
    ],
)
def test_text_it_cannot_read_becomes_a_digest(text: str) -> None:
    policy = read_policy(text)
    assert isinstance(policy, UnreadPolicy)
    assert policy.digest == text_digest(text) and policy.digest.startswith("sha256:")
    assert policy.why


def test_the_digest_ignores_whitespace_only() -> None:
    assert text_digest('path "x" <<EOF\n  a\nEOF') == text_digest('path   "x" <<EOF a EOF\n')
    assert text_digest("a b") != text_digest("ab")


# --- properties -------------------------------------------------------------------------------------------

_SEGMENT = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6)
_PATH = st.builds(
    lambda parts, end: "/".join(parts) + end,
    st.lists(st.one_of(_SEGMENT, st.just("+")), min_size=1, max_size=4),
    st.sampled_from(["", "/*", "*"]),
)
_CAPS = st.frozensets(st.sampled_from([c for c in CAPABILITY_ORDER if c != "deny"]), max_size=5)
_POLICY = st.dictionaries(_PATH, _CAPS, max_size=6)
_GAP = st.sampled_from([" ", "", "\n", "\t", "  \n  ", " # note\n", " // note\n", " /* note */ "])


@st.composite
def written(draw: st.DrawFn, model: dict[str, frozenset[str]]) -> str:
    """``model`` written out in a random layout: block order, capability order, spacing, comments, commas."""
    if draw(st.booleans()) and model:
        return json.dumps({"path": {p: {"capabilities": sorted(c)} for p, c in model.items()}})
    paths = draw(st.permutations(list(model)))
    out = []
    for path in paths:
        caps = draw(st.permutations(sorted(model[path])))
        sep = "," + draw(_GAP)
        listed = sep.join(f'"{c}"' for c in caps) + ("," if caps and draw(st.booleans()) else "")
        slash = "/" if draw(st.booleans()) else ""
        g = [draw(_GAP) for _ in range(6)]
        out.append(f'path {g[0]}"{slash}{path}"{g[1]}{{{g[2]}capabilities{g[3]}={g[4]}[{listed}]{g[5]}}}')
    return ("\n" if draw(st.booleans()) else " ").join(out)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), model=_POLICY)
def test_any_layout_of_a_policy_reads_as_its_rules(
    data: st.DataObject, model: dict[str, frozenset[str]]
) -> None:
    text = data.draw(written(model))
    policy = read_policy(text)
    assert isinstance(policy, Policy), (text, policy)
    assert {p: r.capabilities for p, r in policy.paths.items()} == model


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_reads_without_raising(text: str) -> None:
    assert isinstance(read_policy(text), Policy | UnreadPolicy)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), model=_POLICY)
def test_a_policy_text_with_one_character_changed_never_raises(
    data: st.DataObject, model: dict[str, frozenset[str]]
) -> None:
    text = data.draw(written(model))
    if not text:
        return
    at = data.draw(st.integers(0, len(text) - 1))
    mutated = (
        text[:at]
        + data.draw(st.sampled_from(['"', "{", "}", "[", "]", "=", "#", "/", "*", "\n", "<"]))
        + text[at + 1 :]
    )
    assert isinstance(read_policy(mutated), Policy | UnreadPolicy)
