"""Fixtures the integration tests share."""

from tests.store_support import pg_database, url  # noqa: F401 (fixtures: registered by importing them)
