"""The few queue statements that differ between PostgreSQL and SQLite, one class per dialect.

PostgreSQL claims with `FOR UPDATE SKIP LOCKED` in a CTE and logs events in the same
statement; SQLite, with its single writer (every transaction is BEGIN IMMEDIATE), claims with a
plain `UPDATE … RETURNING`. Everything else in the task store is portable SQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, func, insert, select, text, update

from backoffice.dialects import Dialect
from backoffice.queue.models import Task, TaskEvent
from backoffice.schema import UTCDateTime

SQL_DIR = Path(__file__).parent / "sql"
NOTIFY_CHANNEL = "backoffice_tasks"
CLAIMABLE = text("tasks.status IN ('pending', 'expired')")
HELD = text("tasks.status IN ('locked', 'expired')")
# Completion also accepts a dead letter whose token is still set: only the sweep leaves one
# (a lock that ran out on its last attempt), and its holder may still complete it.
COMPLETABLE = text("tasks.status IN ('locked', 'expired', 'failed')")


@cache
def load_sql(name: str) -> str:
    """A statement from `queue/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


class QueueDialect(Protocol):
    """What differs per database."""

    name: str

    def claim(
        self,
        conn: Connection,
        task_type: str,
        limit: int,
        actor: str,
        now: datetime,
        locked_until: datetime,
    ) -> Sequence[Mapping[Any, Any]]: ...

    def complete_many(
        self,
        conn: Connection,
        items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]],
        actor: str,
        now: datetime,
    ) -> set[uuid.UUID]: ...

    def notify(self, conn: Connection, task_type: str) -> None: ...


class PostgresQueue:
    """PostgreSQL: one-statement claim and batch completion, NOTIFY for long-pollers."""

    name = "postgresql"

    def __init__(self) -> None:
        timestamps = (bindparam("now", type_=UTCDateTime()),)
        self._claim = (
            text(load_sql("claim_postgresql"))
            .bindparams(*timestamps, bindparam("locked_until", type_=UTCDateTime()))
            .columns(*Task.__table__.c)
        )
        self._complete_many = text(load_sql("complete_many_postgresql")).bindparams(*timestamps)

    def claim(
        self,
        conn: Connection,
        task_type: str,
        limit: int,
        actor: str,
        now: datetime,
        locked_until: datetime,
    ) -> Sequence[Mapping[Any, Any]]:
        params = {
            "task_type": task_type,
            "limit": limit,
            "actor": actor,
            "now": now,
            "locked_until": locked_until,
            "locked_until_text": locked_until.isoformat(),
        }
        return conn.execute(self._claim, params).mappings().all()

    def complete_many(
        self,
        conn: Connection,
        items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]],
        actor: str,
        now: datetime,
    ) -> set[uuid.UUID]:
        params = {
            "ids": [i[0] for i in items],
            "tokens": [i[1] for i in items],
            "results": [json.dumps(i[2]) for i in items],
            "actor": actor,
            "now": now,
        }
        return set(conn.execute(self._complete_many, params).scalars())

    def notify(self, conn: Connection, task_type: str) -> None:
        # Delivered at commit, so a woken long-poller always finds the committed task.
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": NOTIFY_CHANNEL, "payload": task_type}
        )


class SqliteQueue:
    """SQLite: the single writer makes a plain UPDATE … RETURNING atomic."""

    name = "sqlite"

    def claim(
        self,
        conn: Connection,
        task_type: str,
        limit: int,
        actor: str,
        now: datetime,
        locked_until: datetime,
    ) -> Sequence[Mapping[Any, Any]]:
        next_ids = (
            select(Task.id)
            .where(Task.task_type == task_type, CLAIMABLE, Task.available_at <= now)
            .order_by(Task.priority, Task.available_at, Task.id)
            .limit(limit)
        )
        rows = (
            conn.execute(
                update(Task)
                .where(Task.id.in_(next_ids.scalar_subquery()))
                .values(
                    status="locked",
                    # 32 hex digits: the form SQLAlchemy's Uuid type stores on SQLite.
                    lock_token=func.lower(func.hex(func.randomblob(16))),
                    lock_date=now,
                    locked_until=locked_until,
                    locked_by=actor,
                    attempts=Task.attempts + 1,
                    first_locked_at=func.coalesce(Task.first_locked_at, now),
                    version=Task.version + 1,
                    updated_at=now,
                    updated_by=actor,
                )
                .returning(*Task.__table__.c)
            )
            .mappings()
            .all()
        )
        if rows:
            conn.execute(
                insert(TaskEvent),
                [
                    {
                        "task_id": r["id"],
                        "event": "locked",
                        "actor": actor,
                        "at": now,
                        "details": {"attempt": r["attempts"], "locked_until": locked_until.isoformat()},
                    }
                    for r in rows
                ],
            )
        # RETURNING order is unspecified in SQLite: restore the claim order.
        return sorted(rows, key=lambda r: (r["priority"], r["available_at"], str(r["id"])))

    def complete_many(
        self,
        conn: Connection,
        items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]],
        actor: str,
        now: datetime,
    ) -> set[uuid.UUID]:
        done: set[uuid.UUID] = set()
        for task_id, token, result in items:
            hit = conn.execute(
                update(Task)
                .where(Task.id == task_id, Task.lock_token == token, COMPLETABLE)
                .values(
                    status="completed",
                    completed_date=now,
                    completed_by=actor,
                    result=result,
                    lock_token=None,
                    locked_until=None,
                    version=Task.version + 1,
                    updated_at=now,
                    updated_by=actor,
                )
            ).rowcount
            if hit:
                done.add(task_id)
        if done:
            conn.execute(
                insert(TaskEvent),
                [
                    {"task_id": i, "event": "completed", "actor": actor, "at": now, "details": None}
                    for i in done
                ],
            )
        return done

    def notify(self, conn: Connection, task_type: str) -> None:
        """SQLite has no NOTIFY; long-pollers poll (and in-process waiters are woken directly)."""


def queue_dialect(dialect: Dialect) -> QueueDialect:
    """The queue statements for a database (see `backoffice.dialects.dialect_of`)."""
    return PostgresQueue() if dialect.name == "postgresql" else SqliteQueue()
