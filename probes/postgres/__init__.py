"""PostgreSQL probes: does a credential (a Vault-issued one, typically) open a connection? Exceptions are
translated in :mod:`.errors`; the driver (psycopg 3, the ``postgres`` extra) is imported only when a probe
runs, so the rest of parityprobe works without it."""
