"""The lab: local environments on real servers (OpenBao, moto), seeded from a lab profile, with planted
parity gaps, for ``parityprobe demo`` and the integration tests. The lifecycle is in :mod:`.lab`."""
