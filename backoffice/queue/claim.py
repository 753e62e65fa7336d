"""The few queue statements that differ between PostgreSQL and SQLite, one class per dialect.

PostgreSQL runs the hot path's one-statement SQL (`sql/*_postgresql.sql`, psycopg placeholders),
the very statements the asyncio hot path sends (async_store.py), here on the sync engine's
connection: one way of claiming and completing. SQLite, with its single writer (every
transaction is BEGIN IMMEDIATE), sweeps, claims and completes with plain `UPDATE … RETURNING`s.
Everything else in the task store is portable SQL.

Every completion and dead letter logs its event with `timing.timing_details` and records the
task's result callback (`callbacks.record_callback`) in the same statement or transaction.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, func, insert, select, text, update

from backoffice.dialects import Dialect
from backoffice.queue.callbacks import record_callback, record_callback_sql
from backoffice.queue.models import Task, TaskEvent
from backoffice.queue.records import TaskRecord
from backoffice.queue.timing import timing_details, timing_sql_postgresql

SQL_DIR = Path(__file__).parent / "sql"
NOTIFY_CHANNEL = "backoffice_tasks"
CLAIMABLE = text("tasks.status IN ('pending', 'expired')")
HELD = text("tasks.status IN ('locked', 'expired')")
# Completion also accepts a dead letter whose token is still set: only the sweep leaves one
# (a lock that ran out on its last attempt), and its holder may still complete it.
COMPLETABLE = text("tasks.status IN ('locked', 'expired', 'failed')")
# What `timing_details` needs of a task's row.
TIMING_COLUMNS = (
    Task.id,
    Task.task_type,
    Task.created_at,
    Task.not_before,
    Task.first_locked_at,
    Task.lock_date,
    Task.locked_until,
)


@cache
def load_sql(name: str) -> str:
    """A statement from `queue/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


# `{columns}`, `{timing:<cte>:<end>}` (end: `now` or a column of the CTE's rows) and
# `{callback:<cte>:<event>}` in the psycopg-style statements.
_PLACEHOLDER = re.compile(r"\{(columns|timing|callback)(?::(\w+):([\w.]+))?\}")


def _expand(match: re.Match[str]) -> str:
    kind, source, arg = match.groups()
    if kind == "columns":
        # Named, never `t.*`: a column added to the table does not break the records, and a
        # field added to TaskRecord is returned as soon as the table has it.
        return ", ".join(f"t.{f.name}" for f in fields(TaskRecord) if f.name in Task.__table__.c)
    if kind == "timing":
        ended = "CAST(%(now)s AS timestamptz)" if arg == "now" else f"{source}.{arg}"
        return timing_sql_postgresql(source, ended)
    return record_callback_sql(source, arg, now="%(now)s")


@cache
def statement(name: str) -> str:
    """A psycopg statement from `sql/<name>.sql` with its placeholders filled in (`_expand`),
    without its comments and indentation: psycopg caches the parsing of statements up to 4 KiB
    only, and the commented lock statement is larger (measured: 0.15 ms per call re-parsed)."""
    return _compact(_PLACEHOLDER.sub(_expand, load_sql(name)))


def _compact(sql: str) -> str:
    # The SQL files keep `--` out of string literals, so a line's `--` always starts a comment.
    lines = (line.split("--", 1)[0].strip() for line in sql.splitlines())
    return "\n".join(line for line in lines if line)


def in_utc(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row with its timestamps in UTC (psycopg hands timestamptz out in the session's zone)."""
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


def claim_params(
    task_type: str, limit: int, actor: str, now: datetime, locked_until: datetime
) -> dict[str, Any]:
    """The parameters of sql/lock_postgresql.sql."""
    return {
        "task_type": task_type,
        "limit": limit,
        "actor": actor,
        "now": now,
        "locked_until": locked_until,
        "locked_until_text": locked_until.isoformat(),
    }


def complete_params(
    items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]],
    actor: str,
    now: datetime,
    task_types: frozenset[str] | None,
) -> dict[str, Any]:
    """The parameters of sql/complete_batch_postgresql.sql."""
    return {
        "ids": [i[0] for i in items],
        "tokens": [i[1] for i in items],
        "results": [json.dumps(i[2]) for i in items],
        "actor": actor,
        "now": now,
        "task_types": sorted(task_types) if task_types is not None else None,
    }


class QueueDialect(Protocol):
    """What differs per database."""

    name: str
    # True when `claim` sweeps the type's run-out locks itself (else the store sweeps first).
    claim_sweeps: bool

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
    """PostgreSQL: the hot path's one-statement lock (with the type's sweep) and completion,
    NOTIFY for long-pollers."""

    name = "postgresql"
    # The lock statement sweeps the type's run-out locks itself.
    claim_sweeps = True

    def claim(
        self,
        conn: Connection,
        task_type: str,
        limit: int,
        actor: str,
        now: datetime,
        locked_until: datetime,
    ) -> Sequence[Mapping[Any, Any]]:
        params = claim_params(task_type, limit, actor, now, locked_until)
        # The generic plan, as on the hot path's pool (its plans: test_hot_path_plan.py). Left to
        # choose, the server keeps planning the statement anew on a big table, where the generic
        # plan's estimate (an unknown LIMIT) looks dear: 0.5 ms a call, measured by bench/.
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        rows = conn.exec_driver_sql(statement("lock_postgresql"), params).mappings().all()
        return sorted((in_utc(r) for r in rows), key=lambda r: (r["priority"], r["available_at"], r["id"]))

    def complete_many(
        self,
        conn: Connection,
        items: Sequence[tuple[uuid.UUID, uuid.UUID, Any]],
        actor: str,
        now: datetime,
    ) -> set[uuid.UUID]:
        params = complete_params(items, actor, now, None)
        return set(conn.exec_driver_sql(statement("complete_batch_postgresql"), params).scalars())

    def notify(self, conn: Connection, task_type: str) -> None:
        # Delivered at commit, so a woken long-poller always finds the committed task.
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": NOTIFY_CHANNEL, "payload": task_type}
        )


class SqliteQueue:
    """SQLite: the single writer makes a plain UPDATE … RETURNING atomic."""

    name = "sqlite"
    # The store sweeps the type's run-out locks before the claim, in the same transaction.
    claim_sweeps = False

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
        events: list[dict[str, Any]] = []
        for task_id, token, result in items:
            row = conn.execute(
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
                .returning(*TIMING_COLUMNS)
            ).first()
            if row is not None:
                done.add(task_id)
                details = timing_details(
                    row.task_type, row.created_at, row.not_before, row.first_locked_at, row.lock_date, now
                )
                events.append(
                    {"task_id": task_id, "event": "completed", "actor": actor, "at": now, "details": details}
                )
                record_callback(conn, task_id, "task.completed", now)
        if events:
            conn.execute(insert(TaskEvent), events)
        return done

    def notify(self, conn: Connection, task_type: str) -> None:
        """SQLite has no NOTIFY; long-pollers poll (and in-process waiters are woken directly)."""


def queue_dialect(dialect: Dialect) -> QueueDialect:
    """The queue statements for a database (see `backoffice.dialects.dialect_of`)."""
    return PostgresQueue() if dialect.name == "postgresql" else SqliteQueue()
