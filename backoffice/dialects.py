"""What differs between SQLite and PostgreSQL, in one place: one small class per dialect.

The backoffice runs on SQLite (embedded default) and PostgreSQL (production). Outside the column
types (`backoffice.schema`), every choice that depends on the database is made here, so a store
never tests a dialect name or imports `sqlalchemy.dialects.*` itself: supporting a behaviour on
both databases, or changing how one of them does it, is a change to this file only. (The queue's
claim statements, which differ in whole, live beside the queue in `backoffice.queue.claim`.)

    dialect_of(engine_or_connection).insert(Table).on_conflict_do_update(...)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, TableClause
from sqlalchemy.dialects import postgresql, sqlite

# Both dialects' INSERT constructs carry `on_conflict_do_update` / `on_conflict_do_nothing`
# and `.excluded`, spelled the same way.
UpsertInsert = postgresql.Insert | sqlite.Insert


class Dialect(ABC):
    """The database-specific choices the stores need."""

    name: ClassVar[str]
    # Long-pollers re-check at least this often (not_before and run-out leases need no signal).
    poll_seconds: ClassVar[float]
    # True when other processes can wake long-pollers at once (LISTEN/NOTIFY).
    supports_listen_notify: ClassVar[bool]
    # Alembic must rebuild tables to alter them (ALTER TABLE is too limited).
    migrates_in_batches: ClassVar[bool]

    @abstractmethod
    def insert(self, table: type[Any] | TableClause) -> UpsertInsert:
        """The dialect's INSERT, the one with `on_conflict_do_update` / `on_conflict_do_nothing`."""

    @abstractmethod
    def single_read_options(self) -> dict[str, Any]:
        """Execution options for a connection that runs one read and nothing else."""


class SQLiteDialect(Dialect):
    """SQLite: one writer, no notifications; waiters in other processes poll."""

    name = "sqlite"
    # Nothing wakes a waiter in another process, so poll often (a local file is cheap to read).
    poll_seconds = 0.2
    supports_listen_notify = False
    migrates_in_batches = True

    def insert(self, table: type[Any] | TableClause) -> sqlite.Insert:
        return sqlite.insert(table)

    def single_read_options(self) -> dict[str, Any]:
        # The engine's own BEGIN handling (see backoffice.db) stays in charge.
        return {}


class PostgreSQLDialect(Dialect):
    """PostgreSQL: NOTIFY wakes long-pollers, so polling is only the fallback."""

    name = "postgresql"
    poll_seconds = 1.0
    supports_listen_notify = True
    migrates_in_batches = False

    def insert(self, table: type[Any] | TableClause) -> postgresql.Insert:
        return postgresql.insert(table)

    def single_read_options(self) -> dict[str, Any]:
        # Autocommit spares one read its BEGIN and ROLLBACK round trips.
        return {"isolation_level": "AUTOCOMMIT"}


_DIALECTS: dict[str, Dialect] = {d.name: d for d in (SQLiteDialect(), PostgreSQLDialect())}


def dialect_of(bind: Engine | Connection) -> Dialect:
    """The adapter for the database behind an engine or connection."""
    try:
        return _DIALECTS[bind.dialect.name]
    except KeyError:
        raise ValueError(f"Unsupported database dialect: {bind.dialect.name!r}") from None
