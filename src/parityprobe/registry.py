"""Probe registry: probes are found through the ``parityprobe.probes`` entry-point group and loaded lazily.

The built-in probes are registered in ``pyproject.toml`` exactly as a third party's would be.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from parityprobe.errors import PluginError
from parityprobe.probe import Probe

PROBE_GROUP = "parityprobe.probes"


class ProbeRegistry:
    """Maps probe names to probe classes; a class is imported only when its name is first asked for."""

    def __init__(self, entries: dict[str, EntryPoint] | None = None) -> None:
        if entries is None:
            entries = {ep.name: ep for ep in entry_points(group=PROBE_GROUP)}
        self._entries = entries
        self._loaded: dict[str, type[Probe]] = {}
        self._instances: dict[str, Probe] = {}

    @classmethod
    def of(cls, *probes: type[Probe]) -> ProbeRegistry:
        """A registry holding exactly these classes (for tests and embedding)."""
        registry = cls(entries={})
        for probe in probes:
            registry._loaded[probe.name] = probe
        return registry

    def names(self) -> list[str]:
        return sorted(set(self._entries) | set(self._loaded))

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._loaded

    def probe_class(self, name: str) -> type[Probe]:
        """The class registered as ``name``; PluginError if none is, or it fails to import."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        if entry is None:
            raise PluginError(f"unknown probe {name!r}")
        try:
            loaded = entry.load()
        except Exception as exc:  # an import failure in a plugin is the plugin's problem, reported clearly
            raise PluginError(f"probe {name!r} ({entry.value}) failed to load: {exc}") from exc
        if not isinstance(loaded, type) or getattr(loaded, "name", None) != name:
            raise PluginError(f"entry point {name!r} ({entry.value}) is not a probe class named {name!r}")
        secret = getattr(loaded, "secret_outputs", None)
        if not isinstance(secret, frozenset) or not secret <= getattr(loaded, "outputs", frozenset()):
            # Checked at load, like a pluggy hookimpl: validation relies on it to keep secrets whole.
            raise PluginError(
                f"probe {name!r} ({entry.value}) must declare secret_outputs, a subset of its outputs"
            )
        self._loaded[name] = loaded
        return loaded

    def probe(self, name: str) -> Probe:
        """A shared instance of the probe (probes hold no per-run state)."""
        if name not in self._instances:
            self._instances[name] = self.probe_class(name)()
        return self._instances[name]
