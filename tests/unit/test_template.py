"""Templating: vars, step outputs, secrets that stay secrets."""

from __future__ import annotations

import pytest

from parityprobe.config.template import (
    EnvNameRef,
    MissingOutput,
    OutputRef,
    Scope,
    TemplateError,
    VarRef,
    parse_template,
    references,
    render,
    scan,
)
from parityprobe.secret import Secret

TOKEN = Secret("s.very-secret-token", "vault token")
SCOPE = Scope(
    "staging", {"team": "payments", "account_id": "111"}, {"login": {"token": TOKEN, "accessor": "acc"}}
)


def test_references_found_with_standalone_flag() -> None:
    refs = list(references({"a": "${{ vars.team }}/db", "b": ["${{ steps.login.outputs.token }}"], "c": 3}))
    assert refs == [(VarRef("team"), False), (OutputRef("login", "token"), True)]
    assert list(references("${{ env.name }}")) == [(EnvNameRef(), True)]


def test_render_substitutes_vars_inside_text() -> None:
    assert render("arn:aws:iam::${{ vars.account_id }}:role/x", SCOPE) == "arn:aws:iam::111:role/x"
    assert render({"k": ["${{vars.team}}", 5]}, SCOPE) == {"k": ["payments", 5]}
    assert render("${{ env.name }}", SCOPE) == "staging"


def test_secret_output_stays_a_secret_object() -> None:
    value = render("${{ steps.login.outputs.token }}", SCOPE)
    assert isinstance(value, Secret) and value == TOKEN


def test_secret_is_never_rendered_into_text() -> None:
    with pytest.raises(TemplateError, match="secret") as exc:
        render("Bearer ${{ steps.login.outputs.token }}", SCOPE)
    assert "very-secret" not in str(exc.value)


def test_missing_output_and_unknown_expression() -> None:
    with pytest.raises(MissingOutput) as exc:
        render("${{ steps.other.outputs.token }}", SCOPE)
    assert exc.value.ref == OutputRef("other", "token")
    with pytest.raises(TemplateError, match="unknown expression"):
        render("${{ secrets.x }}", SCOPE)
    with pytest.raises(TemplateError, match=r"vars\.nope is not defined"):
        render("${{ vars.nope }}", SCOPE)


MALFORMED = [
    "${{ vars.team /db",
    "${{ vars.team ${{ vars.team }}",
    "${{ }}",
    "${{ secrets.x }}",
    "${{ vars.team }}}}",
    "${{ vars.team }}}",
    "{{ vars.team }}",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_one_grammar_for_validation_and_rendering(text: str) -> None:
    # What validation refuses, rendering refuses too: nothing is ever sent as literal nonsense.
    ((path, found),) = list(scan({"p": text}))
    assert path == ("p",) and isinstance(found, TemplateError)
    with pytest.raises(TemplateError):
        parse_template(text)
    with pytest.raises(TemplateError):
        render({"p": text}, SCOPE)
    with pytest.raises(TemplateError):
        list(references(text))


def test_templates_split_text_and_references() -> None:
    template = parse_template("arn:${{vars.account_id}}:${{ env.name }}")
    assert template.parts == ("arn:", VarRef("account_id"), ":", EnvNameRef())
    assert template.whole is None
    assert parse_template(" ${{ vars.team }}").whole is None  # surrounding text makes it text
    assert parse_template("${{\n  steps.login.outputs.token\n}}").whole == OutputRef("login", "token")
    # No escape: ``$${{`` is a literal '$' and a reference; single braces are plain text.
    assert render("$${{ vars.team }} {x} a}}b", SCOPE) == "$payments {x} a}}b"


def test_mapping_keys_never_hold_references() -> None:
    found = dict(scan({"headers": {"${{ vars.team }}": "x", "ok": ["${{ vars.team }}"]}}))
    assert isinstance(found[("headers", "${{ vars.team }}")], TemplateError)
    assert found[("headers", "ok", 0)] == parse_template("${{ vars.team }}")
    with pytest.raises(TemplateError, match="mapping key"):
        render({"${{ vars.team }}": "x"}, SCOPE)


def test_rendered_var_values_are_not_parsed_again() -> None:
    scope = Scope("staging", {"odd": "${{ vars.team }"}, {})
    assert render("x-${{ vars.odd }}", scope) == "x-${{ vars.team }"
