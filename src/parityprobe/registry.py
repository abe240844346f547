"""Probe registry: probes are found through the ``parityprobe.probes`` entry-point group and loaded lazily.

The built-in probes are registered in ``pyproject.toml`` exactly as a third party's would be.
"""

from __future__ import annotations

from parityprobe.plugins import PluginRegistry
from parityprobe.probe import Probe

PROBE_GROUP = "parityprobe.probes"


class ProbeRegistry(PluginRegistry[Probe]):
    """Maps probe names to probe classes; a class is imported only when its name is first asked for."""

    group = PROBE_GROUP
    kind = "probe"

    def probe_class(self, name: str) -> type[Probe]:
        """The class registered as ``name``; PluginError if none is, or it fails to load or its check."""
        return self.load(name)

    def check(self, name: str, loaded: type) -> str | None:
        # Checked at load, like a pluggy hookimpl: validation relies on these to keep secrets whole and to
        # find the environment section a probe needs.
        problem = super().check(name, loaded)
        if problem is not None:
            return problem
        secret = getattr(loaded, "secret_outputs", None)
        if not isinstance(secret, frozenset) or not secret <= getattr(loaded, "outputs", frozenset()):
            return "must declare secret_outputs, a subset of its outputs"
        section = getattr(loaded, "section", "")
        if section is not None and not (isinstance(section, str) and section):
            return "must declare section: the environment section it needs (a name), or None"
        return None

    def probe(self, name: str) -> Probe:
        """A new instance of the probe registered as ``name`` (probes hold no per-run state)."""
        return self.load(name)()
