"""The renderer seam: one :class:`Renderer` per report format, found by name through entry points.

A renderer lays out a :class:`~parityprobe.report.view.ReportView` and returns the finished text; it decides
nothing about what the report says (that is the view's). It passes every string it emits through the
invocation's :class:`~parityprobe.redact.Redactor`.

Renderers are plugins in the ``parityprobe.renderers`` entry-point group, each named for its format
(``--format NAME``); the built-in ``terminal`` and ``json`` are registered in ``pyproject.toml`` exactly as
a third party's would be, and a renderer's module is imported only when its format is first asked for::

    [project.entry-points."parityprobe.renderers"]
    html = "mypackage.html:HtmlRenderer"

The entry point names a class with a ``name`` equal to the entry point's name, a ``render`` method and a
constructor that takes no arguments; this is checked when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING, ClassVar, Protocol

from parityprobe.errors import PluginError
from parityprobe.plugins import PluginRegistry

if TYPE_CHECKING:
    from parityprobe.redact import Redactor
    from parityprobe.report.view import ReportView

RENDERER_GROUP = "parityprobe.renderers"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How the caller wants the text: ``color`` (ANSI codes) and ``width`` apply to formats laid out in
    columns; a format ignores what it has no use for."""

    color: bool = False
    width: int = 120


class Renderer(Protocol):
    """One report format."""

    name: ClassVar[str]

    def render(self, view: ReportView, redactor: Redactor, options: RenderOptions) -> str:
        """The finished report, every string in it redacted; no final newline (the caller's print adds it)."""
        ...


class RendererRegistry(PluginRegistry[Renderer]):
    """Maps format names to renderers; a renderer's module is imported when its name is first asked for."""

    group = RENDERER_GROUP
    kind = "renderer"

    def __init__(self, entries: dict[str, EntryPoint] | None = None) -> None:
        super().__init__(entries)
        self._instances: dict[str, Renderer] = {}

    def renderer_class(self, name: str) -> type[Renderer]:
        """The class registered as ``name``; PluginError if none is, or it fails to load or check."""
        return self.load(name)

    def check(self, name: str, loaded: type) -> str | None:
        # Checked at load, like a probe: a wrong entry point fails here, naming itself, not mid-report.
        problem = super().check(name, loaded)
        if problem is None and not callable(getattr(loaded, "render", None)):
            return "has no render(view, redactor, options)"
        return problem

    def renderer(self, name: str) -> Renderer:
        """A shared instance of the renderer (renderers hold no per-report state)."""
        if name not in self._instances:
            cls = self.renderer_class(name)
            try:
                self._instances[name] = cls()
            except Exception as exc:
                raise PluginError(f"renderer {name!r} could not be created: {exc}") from exc
        return self._instances[name]
