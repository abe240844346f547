"""The lab: local environments on real servers (OpenBao, moto), seeded from a lab profile, with planted
parity gaps, for ``parityprobe demo`` and the integration tests. The lifecycle is in :mod:`.lab`, what a lab
records about itself in :mod:`.state`.

This module imports nothing heavy: the command line reads :data:`DEFAULT_DIRECTORY` for its ``--help``.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DIRECTORY = Path(".parityprobe/lab")
"""Where a lab lives when no directory is given, relative to the working directory."""
