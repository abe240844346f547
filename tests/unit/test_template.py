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
    references,
    render,
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
