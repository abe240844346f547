"""Seeding the database secrets engine of one lab OpenBao server against the environment's own PostgreSQL.

The engine connects as the cluster's admin role (``postgresql-database-plugin``, the connection checked as
it is written). Every role issues a LOGIN role valid until its lease expires, with CONNECT on the cluster's
database (:data:`CREATE_ROLE`, then the grant). A role's revocation statements are the profile's when it
gives them, else the plugin's own (which revoke the role's privileges and drop it).
"""

from __future__ import annotations

from typing import Any

from parityprobe.errors import LabError
from parityprobe.lab.postgres import PostgresServer
from parityprobe.lab.profile import DatabaseEngine
from parityprobe.redact import Redactor
from parityprobe.secret import Secret

PLUGIN = "postgresql-database-plugin"
CONNECTION = "lab"
# Vault fills in name, password and expiration.
CREATE_ROLE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
_TIMEOUT = 10


def seed_database(url: str, root_token: Secret, engine: DatabaseEngine, server: PostgresServer) -> None:
    """Mount the database secrets engine at ``engine.mount`` on the OpenBao at ``url``, connect it to
    ``server`` as its admin role, and create the profile's roles.

    LabError when OpenBao refuses anything (including a connection it cannot verify); the message names
    neither the root token nor the admin password.
    """
    import hvac  # only the lab needs hvac here; the engine must import without it
    import hvac.exceptions

    client: Any = hvac.Client(url=url, token=root_token.reveal(), timeout=_TIMEOUT)
    try:
        _seed(client, engine, server)
    except (hvac.exceptions.VaultError, OSError) as exc:  # requests' errors are OSErrors
        message = Redactor([root_token, server.admin_password]).redact(str(exc))
        raise LabError(
            f"seeding the database secrets engine at {url} failed: {type(exc).__name__}: {message}"
        ) from None
    finally:
        client.adapter.close()


def _seed(client: Any, engine: DatabaseEngine, server: PostgresServer) -> None:
    client.sys.enable_secrets_engine("database", path=engine.mount)
    client.secrets.database.configure(
        name=CONNECTION,
        plugin_name=PLUGIN,
        mount_point=engine.mount,
        connection_url=server.vault_connection_url(),
        username=server.admin_user,
        password=server.admin_password.reveal(),
        allowed_roles=list(engine.roles),
        verify_connection=True,
    )
    creation = [CREATE_ROLE, 'GRANT CONNECT ON DATABASE "' + server.dbname + '" TO "{{name}}";']
    for name, role in engine.roles.items():
        client.secrets.database.create_role(
            name=name,
            db_name=CONNECTION,
            mount_point=engine.mount,
            creation_statements=creation,
            default_ttl=f"{role.default_ttl}s",
            max_ttl=f"{role.max_ttl}s",
            revocation_statements=role.revocation_statements,
        )
