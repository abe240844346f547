"""Plugins found through entry points, loaded lazily by name and checked when they load.

Every plugin group (probes, environment sections, report renderers) is a :class:`PluginRegistry`; the
built-in plugins are registered in ``pyproject.toml`` exactly as a third party's would be. A plugin is
imported only when its name is first asked for, and checked then: a wrong entry point is a
:class:`~parityprobe.errors.PluginError` naming it, never an AttributeError later.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar, Generic, TypeVar

from parityprobe.errors import PluginError

T = TypeVar("T")
R = TypeVar("R", bound="PluginRegistry")  # type: ignore[type-arg]


class PluginRegistry(Generic[T]):
    """Maps names to plugin classes of one entry-point group.

    A subclass names its ``group`` and what a plugin is called in messages (``kind``), and checks a
    loaded class in :meth:`check`.
    """

    group: ClassVar[str]
    kind: ClassVar[str]

    def __init__(self, entries: dict[str, EntryPoint] | None = None) -> None:
        if entries is None:
            entries = {ep.name: ep for ep in entry_points(group=self.group)}
        self._entries = entries
        self._loaded: dict[str, type[T]] = {}

    @classmethod
    def of(cls: type[R], *plugins: type[T]) -> R:
        """A registry holding exactly these classes, each under its ``name`` (for tests and embedding)."""
        registry = cls(entries={})
        for plugin in plugins:
            registry._loaded[getattr(plugin, "name")] = plugin  # noqa: B009  # T is unbounded
        return registry

    @classmethod
    def named(cls: type[R], plugins: dict[str, type[T]]) -> R:
        """A registry holding exactly these classes under these names (for plugins without a ``name``)."""
        registry = cls(entries={})
        registry._loaded.update(plugins)
        return registry

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(set(self._entries) | set(self._loaded))

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._loaded

    def load(self, name: str) -> type[T]:
        """The class registered as ``name``; PluginError if none is, or it fails to load or its check."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        if entry is None:
            raise PluginError(self.unknown(name))
        try:
            loaded = entry.load()
        except Exception as exc:  # an import failure in a plugin is the plugin's problem, reported clearly
            raise PluginError(f"{self.kind} {name!r} ({entry.value}) failed to load: {exc}") from exc
        if not isinstance(loaded, type):
            raise PluginError(
                f"entry point {name!r} ({entry.value}) is not a {self.kind} class named {name!r}"
            )
        problem = self.check(name, loaded)
        if problem is not None:
            raise PluginError(f"{self.kind} {name!r} ({entry.value}) {problem}")
        self._loaded[name] = loaded
        return loaded

    def unknown(self, name: str) -> str:
        """The message for a name nothing is registered under."""
        known = ", ".join(self.names())
        if not known:
            # The built-ins are entry points too: none at all means stale install metadata.
            return (
                f"unknown {self.kind} {name!r}: nothing is registered in {self.group} (reinstall "
                "parityprobe, e.g. pip install -e ., so its entry points are current)"
            )
        return f"unknown {self.kind} {name!r} (known: {known})"

    def check(self, name: str, loaded: type) -> str | None:
        """What is wrong with a loaded class (``"is not …"``), or None; checked once, at load."""
        if getattr(loaded, "name", None) != name:
            return f"is not a {self.kind} class named {name!r}"
        return None
