"""PostgreSQL in tests: an admin connection to the ``postgres`` fixture's cluster, its roles, and Vault's
database secrets engine set up against it (the same calls the lab makes)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from parityprobe.lab.postgres import PostgresServer

PLUGIN = "postgresql-database-plugin"
CONNECTION = "lab"
# Vault fills in name, password and expiration; the role may connect to the cluster's database.
CREATION_STATEMENTS = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
    'GRANT CONNECT ON DATABASE postgres TO "{{name}}";',
)


@contextmanager
def admin(server: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the cluster's admin role, over TCP with its password, autocommitting."""
    with psycopg.connect(
        host=server.host,
        port=server.port,
        dbname=server.dbname,
        user=server.admin_user,
        password=server.admin_password.reveal(),
        autocommit=True,
    ) as conn:
        yield conn


def role_exists(server: PostgresServer, name: str) -> bool:
    with admin(server) as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def roles_like(server: PostgresServer, prefix: str) -> list[str]:
    """Role names starting with ``prefix`` (literally: ``_`` and ``%`` are not wildcards here)."""
    with admin(server) as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,))
        return sorted(str(row[0]) for row in rows.fetchall())


def enable_database_engine(
    client: Any,
    server: PostgresServer,
    mount: str,
    roles: Sequence[str],
    *,
    default_ttl: str = "1h",
    max_ttl: str = "2h",
) -> None:
    """Mount Vault's database secrets engine at ``mount``, connect it to ``server`` as the admin role, and
    create ``roles`` (each issuing a LOGIN role with ``default_ttl`` / ``max_ttl``). ``client`` is an admin
    ``hvac.Client``."""
    client.sys.enable_secrets_engine("database", path=mount)
    client.secrets.database.configure(
        name=CONNECTION,
        plugin_name=PLUGIN,
        mount_point=mount,
        connection_url=server.vault_connection_url(),
        username=server.admin_user,
        password=server.admin_password.reveal(),
        allowed_roles=list(roles),
        verify_connection=True,
    )
    for role in roles:
        client.secrets.database.create_role(
            name=role,
            db_name=CONNECTION,
            mount_point=mount,
            creation_statements=list(CREATION_STATEMENTS),
            default_ttl=default_ttl,
            max_ttl=max_ttl,
        )
