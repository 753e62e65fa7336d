"""The one read the dashboard's sessions need: a live key by name, with its stored hash.

A session cookie names a key and is signed over that key's hash, so revoking the key (or the
bootstrap admin key changing) ends every session made with it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from backoffice.principals import Principal, Role
from backoffice.queue.keys import BOOTSTRAP_ADMIN, hash_key
from backoffice.queue.models import ApiKey


@dataclass(frozen=True)
class SessionKey:
    """Who a live key belongs to and the hash a session is bound to."""

    principal: Principal
    key_hash: str


def live_key(engine: Engine, name: str, bootstrap_admin_key: str | None) -> SessionKey | None:
    """The live (not revoked) key named `name`, or None."""
    if name == BOOTSTRAP_ADMIN:
        if not bootstrap_admin_key:
            return None
        return SessionKey(Principal(BOOTSTRAP_ADMIN, "admin"), hash_key(bootstrap_admin_key))
    with engine.connect() as conn:
        row = conn.execute(
            select(ApiKey.role, ApiKey.task_types, ApiKey.key_hash).where(
                ApiKey.name == name, ApiKey.revoked.is_(False)
            )
        ).first()
    if row is None:
        return None
    role: Role = row.role
    types = frozenset(row.task_types or ()) if role == "consumer" else None
    return SessionKey(Principal(name, role, types), row.key_hash)
