"""parityprobe: live canary probes that compare workload-identity controls between environments."""

from __future__ import annotations

__version__ = "0.1.0"
