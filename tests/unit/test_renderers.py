"""The renderer seam: formats found by name in the ``parityprobe.renderers`` entry-point group, loaded lazily,
checked at load; the built-in terminal and JSON renderers registered there exactly as a plugin's would be."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import ClassVar

import pytest

from parityprobe.errors import PluginError
from parityprobe.redact import Redactor
from parityprobe.report import (
    RENDERER_GROUP,
    Format,
    Renderer,
    RendererRegistry,
    RenderOptions,
    ReportView,
    build_view,
    render,
    render_json,
    render_terminal,
)
from tests.unit.test_reports import build

REPO = Path(__file__).resolve().parents[2]


def declared() -> dict[str, EntryPoint]:
    """The renderers pyproject.toml registers, as the entry points an install makes of them."""
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][RENDERER_GROUP]
    return {name: EntryPoint(name, value, RENDERER_GROUP) for name, value in table.items()}


def entry(name: str, target: str) -> dict[str, EntryPoint]:
    return {name: EntryPoint(name, target, RENDERER_GROUP)}


class Shouting:
    """A third party's format: the verdict, upper-cased, and what it was given."""

    name: ClassVar[str] = "shouting"

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        return redactor.redact(f"{view.verdict.line.upper()} width={options.width} color={options.color}")


class Misnamed(Shouting):
    name: ClassVar[str] = "something-else"


class Mute:
    name: ClassVar[str] = "mute"


def not_a_class() -> None:
    """An entry point must name a class, not a function."""


# ---------------------------------------------------------------- the built-in formats


def test_built_in_formats_are_declared_as_entry_points() -> None:
    entries = declared()
    assert set(entries) == {f.value for f in Format}
    registry = RendererRegistry(entries)
    fx = build()
    for fmt in Format:
        renderer = registry.renderer(fmt.value)
        assert renderer.name == fmt.value
        via_registry = render(fx.report, fmt, fx.redactor, width=140, registry=registry)
        if fmt not in (Format.JSON, Format.TERMINAL):
            continue  # the others have no render_<format> shortcut
        direct = (
            render_json(fx.report, fx.redactor)
            if fmt is Format.JSON
            else render_terminal(fx.report, fx.redactor, width=140)
        )
        assert via_registry == direct


def test_installed_entry_points_match_pyproject() -> None:
    # Fails on an install made before pyproject.toml last changed: reinstall (make does, its stamp is older).
    installed = {ep.name: ep.value for ep in entry_points(group=RENDERER_GROUP)}
    assert {name: ep.value for name, ep in declared().items()}.items() <= installed.items()


def test_renderer_modules_load_only_when_their_format_is_used() -> None:
    values = {name: ep.value for name, ep in declared().items()}
    code = f"""
import sys
from importlib.metadata import EntryPoint
from parityprobe.report import RendererRegistry
registry = RendererRegistry({{n: EntryPoint(n, v, "{RENDERER_GROUP}") for n, v in {values!r}.items()}})
assert registry.names() == ["html", "json", "junit", "markdown", "terminal"]
assert "parityprobe.report.terminal" not in sys.modules and "rich" not in sys.modules, "eager"
registry.renderer("json")
assert "parityprobe.report.terminal" not in sys.modules and "rich" not in sys.modules, "json loaded rich"
registry.renderer("markdown"), registry.renderer("junit")
assert "rich" not in sys.modules, "markdown or junit loaded rich"
registry.renderer("html")
assert "rich" not in sys.modules and "jinja2" not in sys.modules, "html loaded rich or jinja2"
registry.renderer("terminal")
assert "rich" in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- plugins


def test_a_plugin_format_renders_the_view() -> None:
    registry = RendererRegistry(entry("shouting", f"{__name__}:Shouting"))
    assert "shouting" in registry and registry.names() == ["shouting"]
    fx = build(())
    out = render(fx.report, "shouting", fx.redactor, color=True, width=99, registry=registry)
    assert out == "VERDICT: NO PARITY GAPS FOUND (EXIT 0) width=99 color=True"
    assert registry.renderer("shouting") is registry.renderer("shouting")  # one shared instance
    assert isinstance(RendererRegistry.of(Shouting).renderer("shouting"), Shouting)


def test_a_renderer_is_a_protocol_not_a_base_class() -> None:
    renderer: Renderer = Shouting()  # structural: a plugin needs nothing from parityprobe but the view
    assert renderer.render(build_view(build(()).report), Redactor(), RenderOptions()).startswith("VERDICT")


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("shouting", f"{__name__}:Misnamed", "is not a renderer class named 'shouting'"),
        ("shouting", f"{__name__}:not_a_class", "is not a renderer class named 'shouting'"),
        ("mute", f"{__name__}:Mute", "has no render(view, redactor, options)"),
        ("gone", "parityprobe.report.no_such_module:Gone", "failed to load: No module named"),
        ("gone", f"{__name__}:NoSuchClass", "failed to load"),
    ],
)
def test_a_wrong_entry_point_is_a_plugin_error_naming_it(name: str, target: str, message: str) -> None:
    registry = RendererRegistry(entry(name, target))
    with pytest.raises(PluginError) as caught:
        registry.renderer(name)
    text = str(caught.value)
    assert message in text and repr(name) in text and target in text


def test_an_unknown_format_names_the_known_ones() -> None:
    registry = RendererRegistry(declared())
    known = r"\(known: html, json, junit, markdown, terminal\)"
    with pytest.raises(PluginError, match=r"renderer 'docx' " + known):
        render(build().report, "docx", Redactor(), registry=registry)


def test_no_renderer_at_all_says_to_reinstall() -> None:
    with pytest.raises(PluginError, match=r"nothing is registered in parityprobe\.renderers \(reinstall"):
        RendererRegistry({}).renderer("terminal")
