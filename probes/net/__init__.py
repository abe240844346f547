"""Network-path probes: can this workload open a TCP connection to that host and port? Plain sockets, no
extra dependency; exceptions are translated in :mod:`.errors`."""
