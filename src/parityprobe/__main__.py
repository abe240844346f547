from __future__ import annotations

from parityprobe.cli import main

main()
