"""Dashboard sessions kept in the database, so every sidecar behind one address sees the same ones.

The browser's cookie is a random 256-bit token; the table stores only its SHA-256 (a copy of
the table signs nobody in). A session is live while its row exists, has not expired, and the key
it was made with is still live with the same hash. Sign-out deletes the row, so a copied cookie
stops working at once; revoking a key deletes its rows (`KeyStore.revoke`), and the key check on
every read makes sure a session never outlives its key even so.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, delete, insert, select

from backoffice.principals import Principal
from backoffice.queue.models import DashboardSession

if TYPE_CHECKING:
    from backoffice.queue.keys import KeyStore

# secrets.token_urlsafe(32) is 43 characters of this alphabet. Anything else is no session: a
# forged cookie never reaches the database (PostgreSQL refused a NUL in one with a 500).
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


def _digest(token: str) -> str:
    # The token is 256 random bits, so a plain SHA-256 is enough (nothing to brute-force).
    return hashlib.sha256(token.encode()).hexdigest()


def end_sessions_of(conn: Connection, key_name: str) -> int:
    """Delete every session of key `key_name` inside the caller's transaction; how many ended."""
    return conn.execute(delete(DashboardSession).where(DashboardSession.key_name == key_name)).rowcount


class SessionStore:
    """Starts, finds and ends dashboard sessions; the keys' store tells which keys are live."""

    def __init__(self, engine: Engine, keys: KeyStore) -> None:
        self.engine = engine
        self._keys = keys

    def start(self, key_name: str, key_hash: str, seconds: int, now: datetime | None = None) -> str:
        """A new session of key `key_name` (stored hash `key_hash`); returns the cookie's token."""
        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            # Sign-ins clear out expired rows, so the table holds only live sessions.
            conn.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
            conn.execute(
                insert(DashboardSession).values(
                    token_hash=_digest(token),
                    key_name=key_name,
                    key_hash=key_hash,
                    created_at=now,
                    expires_at=now + timedelta(seconds=seconds),
                )
            )
        return token

    def find(self, token: str, now: datetime | None = None) -> Principal | None:
        """Who a cookie's token signs in (role read afresh), or None: unknown, ended, expired, revoked."""
        if not TOKEN_SHAPE.fullmatch(token):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(DashboardSession.key_name, DashboardSession.key_hash).where(
                    DashboardSession.token_hash == _digest(token),
                    DashboardSession.expires_at > (now or datetime.now(UTC)),
                )
            ).first()
        if row is None:
            return None
        key = self._keys.live_session_key(row.key_name)
        if key is None or not hmac.compare_digest(key.key_hash, row.key_hash):
            return None
        return key.principal

    def end(self, token: str) -> None:
        """End the session of this token (sign-out); nothing happens for an unknown token."""
        if TOKEN_SHAPE.fullmatch(token):
            with self.engine.begin() as conn:
                conn.execute(delete(DashboardSession).where(DashboardSession.token_hash == _digest(token)))
