"""TLS probes: what does a server present, does its chain verify against this environment's trust store,
and does it demand a client certificate? The standard library's :mod:`ssl` does the handshakes; the
certificates are read with :mod:`cryptography` (the ``tls`` extra), imported only when a probe runs.
Exceptions are translated in :mod:`.errors`."""
