"""What a token may do on a path, as the server itself answers it: ``POST sys/capabilities-self``.

A dry probe (``vault.kv_delete`` with ``dry: true``) and a step's capabilities cross-check decide from this
answer instead of acting. Observed on OpenBao 2.7 (the same code lineage as Vault):

- the reply carries the path's capabilities twice, under ``data.capabilities`` and under ``data.<path>``
  (older servers sent only the first, servers asked for several paths only the second), sorted, e.g.
  ``{"capabilities": ["delete", "read"], "secret/data/a/x": ["delete", "read"]}``;
- a path no policy of the token names answers ``["deny"]`` (no error); a path a policy denies also answers
  ``["deny"]``; the root token answers ``["root"]`` for every path;
- the endpoint is in the built-in ``default`` policy. A token created without it (``no_default_policy``)
  is refused the question itself: 403 ``1 error occurred: permission denied``; so is a revoked, expired or
  unknown token (403 ``permission denied``). Either refusal says nothing about the path asked about, so
  :func:`capabilities_self` lets it propagate and the caller decides what it means (never "denied on the
  path").

Capabilities only report ACL policy. What the backend decides after the ACL check (a missing secret, a
check-and-set mismatch, a sealed server) is not in them.
"""

from __future__ import annotations

from typing import Any

import hvac.exceptions as hv

from parityprobe.model import Outcome

from .client import mapping, required

ROOT = "root"
DENY = "deny"

# The capability an HTTP method needs on its path (Vault's ACL; docs "policies", capabilities). A POST or
# PUT needs ``create`` on a path with nothing there yet and ``update`` on one that exists; which applies
# depends on the backend's existence check, which the capabilities endpoint does not run.
_METHOD_CAPABILITY: dict[str, str] = {
    "GET": "read",
    "LIST": "list",
    "POST": "create|update",
    "PUT": "create|update",
    "DELETE": "delete",
    "PATCH": "patch",
}


def capabilities_self(client: Any, path: str) -> frozenset[str]:
    """The capabilities the client's token has on ``path`` (no leading slash), as the server reports them.

    ``deny`` is returned as the empty set: it means none. ``root`` is kept: :func:`decision` allows
    everything for it. hvac exceptions propagate (a 403 here is a refusal of the question, not an answer
    about ``path``: see the module docstring); a reply without the path's capabilities is the target's
    fault (hvac ``UnexpectedError``).
    """
    reply = client.adapter.post("/v1/sys/capabilities-self", json={"paths": [path]})
    data = mapping(required(reply, "data"))
    # The per-path key is exact for the path asked; ``capabilities`` is its single-path alias.
    listed = data.get(path, data.get("capabilities"))
    if not isinstance(listed, list):
        raise hv.UnexpectedError("Vault reply has no data.capabilities")
    names = frozenset(str(name) for name in listed)
    return frozenset() if DENY in names else names


def decision(capabilities: frozenset[str], needed: str) -> Outcome:
    """ALLOWED when ``capabilities`` include ``needed`` (or ``root``), else DENIED.

    ``needed`` may name alternatives separated by ``|`` (``create|update``, as :func:`needed_capability`
    gives for POST and PUT): any one of them allows.
    """
    if ROOT in capabilities:
        return Outcome.ALLOWED
    wanted = {name.strip() for name in needed.split("|") if name.strip()}
    return Outcome.ALLOWED if wanted & capabilities else Outcome.DENIED


def needed_capability(method: str) -> str:
    """The capability an HTTP ``method`` needs: GET→read, LIST→list, POST/PUT→create|update,
    DELETE→delete, PATCH→patch. ValueError for any other method."""
    try:
        return _METHOD_CAPABILITY[method.upper()]
    except KeyError:
        raise ValueError(f"no Vault capability is known for HTTP method {method!r}") from None
