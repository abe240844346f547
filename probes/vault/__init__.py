"""Vault (and OpenBao) probes: AppRole login, token lookup, KV v2 read. Exceptions are translated in
:mod:`.errors`; the shared, correlation-stamping client lives in :mod:`.client`."""
