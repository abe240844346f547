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
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, ClassVar, Protocol

from parityprobe.errors import PluginError

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


class RendererRegistry:
    """Maps format names to renderers; a renderer's module is imported when its name is first asked for."""

    def __init__(self, entries: dict[str, EntryPoint] | None = None) -> None:
        if entries is None:
            entries = {ep.name: ep for ep in entry_points(group=RENDERER_GROUP)}
        self._entries = entries
        self._loaded: dict[str, type[Renderer]] = {}
        self._instances: dict[str, Renderer] = {}

    @classmethod
    def of(cls, *renderers: type[Renderer]) -> RendererRegistry:
        """A registry holding exactly these classes (for tests and embedding)."""
        registry = cls(entries={})
        for renderer in renderers:
            registry._loaded[renderer.name] = renderer
        return registry

    def names(self) -> list[str]:
        """Every registered format, sorted."""
        return sorted(set(self._entries) | set(self._loaded))

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._loaded

    def renderer_class(self, name: str) -> type[Renderer]:
        """The class registered as ``name``; PluginError if none is, or it fails to load or check."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        if entry is None:
            if not self.names():
                # The built-in formats are entry points too: none at all means stale install metadata.
                raise PluginError(
                    f"unknown report format {name!r}: no renderer is registered in {RENDERER_GROUP} "
                    "(reinstall parityprobe, e.g. pip install -e ., so its entry points are current)"
                )
            raise PluginError(f"unknown report format {name!r} (formats: {', '.join(self.names())})")
        try:
            loaded = entry.load()
        except Exception as exc:  # an import failure in a plugin is the plugin's problem, reported clearly
            raise PluginError(f"renderer {name!r} ({entry.value}) failed to load: {exc}") from exc
        # Checked at load, like a probe: a wrong entry point fails here, naming itself, not mid-report.
        if not isinstance(loaded, type) or getattr(loaded, "name", None) != name:
            raise PluginError(f"entry point {name!r} ({entry.value}) is not a renderer class named {name!r}")
        if not callable(getattr(loaded, "render", None)):
            raise PluginError(f"renderer {name!r} ({entry.value}) has no render(view, redactor, options)")
        self._loaded[name] = loaded
        return loaded

    def renderer(self, name: str) -> Renderer:
        """A shared instance of the renderer (renderers hold no per-report state)."""
        if name not in self._instances:
            cls = self.renderer_class(name)
            try:
                self._instances[name] = cls()
            except Exception as exc:
                raise PluginError(f"renderer {name!r} could not be created: {exc}") from exc
        return self._instances[name]
