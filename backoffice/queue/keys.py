"""Function keys: created with a random secret, stored as SHA-256, looked up by hash.

A dashboard session (`sessions.py`) is bound to the key's hash (`live_session_key`), and revoking
a key deletes its sessions, so revocation (or the bootstrap admin key changing) ends them at once.
Names that read like the bootstrap admin's are refused, so the audit trail cannot be faked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from backoffice.dialects import dialect_of
from backoffice.errors import Conflict, NotFound, ValidationFailed
from backoffice.principals import Principal, Role
from backoffice.queue.models import ApiKey
from backoffice.queue.sessions import SessionStore, end_sessions_of

KEY_PREFIX = "bok_"
BOOTSTRAP_ADMIN = "bootstrap-admin"
# The key cache is emptied rather than grown past this many keys.
MAX_CACHED_KEYS = 10_000
# Digits that pass for letters in a name ("b00tstrap-adm1n").
_LOOKALIKE_DIGITS = str.maketrans("013457", "oieast")


def reads_like_bootstrap_admin(name: str) -> bool:
    """True when `name`, ignoring case, separators and look-alike characters, contains bootstrap-admin."""
    folded = unicodedata.normalize("NFKC", name).casefold().translate(_LOOKALIKE_DIGITS)
    return "bootstrapadmin" in re.sub(r"[\W_]+", "", folded)


def generate_key() -> str:
    """A new plaintext key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plaintext: str) -> str:
    """SHA-256 of a key. Keys are random 256-bit secrets, so a fast hash is enough (no salt)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """A stored key without its secret."""

    name: str
    role: Role
    task_types: list[str] | None
    created_at: datetime
    created_by: str
    revoked: bool
    revoked_at: datetime | None


@dataclass(frozen=True)
class SessionKey:
    """Who a live key belongs to and the hash a session is bound to."""

    principal: Principal
    key_hash: str


class KeyStore:
    """Creates, lists, revokes and checks function keys."""

    def __init__(
        self, engine: Engine, bootstrap_admin_key: str | None = None, cache_seconds: float = 0.0
    ) -> None:
        self.engine = engine
        self._bootstrap_hash = hash_key(bootstrap_admin_key) if bootstrap_admin_key else None
        self.sessions = SessionStore(engine, self)
        # Live keys found in the last `cache_seconds` (the sidecar: BACKOFFICE_KEY_CACHE_SECONDS,
        # at most 1 s), by hash. Unknown keys are never cached (a key made a moment ago works at
        # once), and a revoked key stops working on every sidecar within `cache_seconds`.
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

    def create(self, name: str, role: Role, task_types: list[str] | None, actor: str) -> tuple[KeyInfo, str]:
        """Store a new key and return it with its plaintext (shown this once only)."""
        if reads_like_bootstrap_admin(name):
            raise ValidationFailed(
                f"The key name '{name}' reads like '{BOOTSTRAP_ADMIN}', which is reserved for the "
                "bootstrap admin key; pick another name.",
                code="reserved_name",
            )
        plaintext = generate_key()
        now = datetime.now(UTC)
        types = sorted(set(task_types)) if task_types else None
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(ApiKey).values(
                        id=uuid.uuid4(),
                        name=name,
                        role=role,
                        task_types=types,
                        key_hash=hash_key(plaintext),
                        created_at=now,
                        created_by=actor,
                        revoked=False,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(
                f"A key named '{name}' already exists; pick another name or revoke it first.",
                code="already_exists",
            ) from exc
        info = KeyInfo(name, role, types, now, actor, False, None)
        return info, plaintext

    def list(self) -> list[KeyInfo]:
        """Every key, revoked ones included, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ApiKey).order_by(ApiKey.name)).mappings().all()
        return [
            KeyInfo(
                r["name"],
                r["role"],
                r["task_types"],
                r["created_at"],
                r["created_by"],
                r["revoked"],
                r["revoked_at"],
            )
            for r in rows
        ]

    def revoke(self, name: str) -> None:
        """Revoke a key and end its dashboard sessions at once; NotFound when no live key has that name."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(ApiKey)
                .where(ApiKey.name == name, ApiKey.revoked.is_(False))
                .values(revoked=True, revoked_at=datetime.now(UTC))
            ).rowcount
            if done:
                end_sessions_of(conn, name)
        # At once here; other processes' caches let it go within cache_seconds.
        self._cache = {h: entry for h, entry in self._cache.items() if entry[1].name != name}
        if not done:
            raise NotFound(f"There is no active key named '{name}'.")

    def authenticate(self, plaintext: str) -> Principal | None:
        """The caller a presented key belongs to, or None for an unknown or revoked key."""
        digest = hash_key(plaintext)
        if self._bootstrap_hash is not None and hmac.compare_digest(digest, self._bootstrap_hash):
            return Principal(BOOTSTRAP_ADMIN, "admin")
        cached = self.cached(plaintext, digest)
        if cached is not None:
            return cached
        # Every request runs this one read: on PostgreSQL, autocommit spares its BEGIN and
        # ROLLBACK round trips (SQLite keeps its own transaction handling).
        options = dialect_of(self.engine).single_read_options()
        with self.engine.connect().execution_options(**options) as conn:
            row = conn.execute(
                select(ApiKey.name, ApiKey.role, ApiKey.task_types, ApiKey.key_hash).where(
                    ApiKey.key_hash == digest, ApiKey.revoked.is_(False)
                )
            ).first()
        # The lookup is by hash; the constant-time compare guards the final decision.
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        types = frozenset(row.task_types) if row.role == "consumer" and row.task_types else None
        if row.role == "consumer" and types is None:
            types = frozenset()
        principal = Principal(row.name, row.role, types)
        if self.cache_seconds > 0:
            if len(self._cache) > MAX_CACHED_KEYS:
                self._cache.clear()  # only a flood of distinct live keys gets here
            self._cache[digest] = (time.monotonic() + self.cache_seconds, principal)
        return principal

    def cached(self, plaintext: str, digest: str | None = None) -> Principal | None:
        """The principal of a live key looked up less than `cache_seconds` ago (no I/O), else None."""
        if self.cache_seconds <= 0:
            return None
        digest = digest or hash_key(plaintext)
        if self._bootstrap_hash is not None and hmac.compare_digest(digest, self._bootstrap_hash):
            return Principal(BOOTSTRAP_ADMIN, "admin")
        entry = self._cache.get(digest)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def live_session_key(self, name: str) -> SessionKey | None:
        """The live (not revoked) key named `name` with its stored hash, or None (dashboard sessions)."""
        if name == BOOTSTRAP_ADMIN:
            if self._bootstrap_hash is None:
                return None
            return SessionKey(Principal(BOOTSTRAP_ADMIN, "admin"), self._bootstrap_hash)
        with self.engine.connect() as conn:
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
