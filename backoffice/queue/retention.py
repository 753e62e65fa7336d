"""Retention: delete finished tasks past their type's retention, and old audit events, in small batches.

A finished task is `completed` or `failed` (dead letter); its age is its `updated_at`, the moment
it finished (workers no longer change it). Pending, locked and expired tasks are never touched.
Each batch is its own short transaction over at most `retention_batch_size` rows picked through
the partial index ix_tasks_finished, so lock calls keep running beside a purge of millions
(bench/retention_bench.py). On PostgreSQL a row somebody holds (an operator retrying a dead
letter) is skipped with SKIP LOCKED and re-checked after its lock: a retried task is not deleted.

Events stay after their task is deleted (the audit trail outlives the task) for
`event_retention_days`; older events of deleted tasks go. Events of tasks that still exist stay.
Deleting a task writes no event: the trail ends with the task's `completed` / `failed`.
Delivered or abandoned callback deliveries go after `event_retention_days` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, exists, select, text
from sqlalchemy.sql.elements import ColumnElement

from backoffice.queue.models import CallbackDelivery, Task, TaskEvent, TaskTypeDefinition
from backoffice.settings import Settings

# A SQL literal, not bound: the planner matches it to the partial index's predicate.
FINISHED = text("tasks.status IN ('completed', 'failed')")


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run deleted."""

    tasks: int
    events: int
    deliveries: int
    # Per task type with its own retention_days: tasks deleted of that type (others under "*").
    tasks_by_rule: dict[str, int]


def _delete_tasks_in_batches(engine: Engine, conds: list[ColumnElement[bool]], batch: int) -> int:
    deleted = 0
    while True:
        picked = (
            select(Task.id)
            .where(FINISHED, *conds)
            .order_by(Task.updated_at)
            .limit(batch)
            # Rows in use elsewhere are skipped, not waited for (SQLite renders nothing).
            .with_for_update(skip_locked=True)
        )
        with engine.begin() as conn:
            n = conn.execute(delete(Task).where(Task.id.in_(picked.scalar_subquery()))).rowcount
        deleted += n
        if n < batch:
            return deleted


def purge_finished_tasks(engine: Engine, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Delete finished tasks older than their type's retention_days (default task_retention_days).

    Returns the count per rule: each type with its own retention_days, and "*" for the rest."""
    now = now or datetime.now(UTC)
    batch = settings.retention_batch_size
    with engine.connect() as conn:
        rows = conn.execute(
            select(TaskTypeDefinition.task_type, TaskTypeDefinition.retention_days).where(
                TaskTypeDefinition.retention_days.is_not(None)
            )
        ).all()
    rules = {task_type: days for task_type, days in rows if days is not None}
    counts: dict[str, int] = {}
    for task_type, days in sorted(rules.items()):
        cutoff = now - timedelta(days=days)
        counts[task_type] = _delete_tasks_in_batches(
            engine, [Task.task_type == task_type, Task.updated_at < cutoff], batch
        )
    default_cutoff = now - timedelta(days=settings.task_retention_days)
    others: list[ColumnElement[bool]] = [Task.updated_at < default_cutoff]
    if rules:
        others.append(Task.task_type.not_in(sorted(rules)))
    counts["*"] = _delete_tasks_in_batches(engine, others, batch)
    return counts


def purge_old_events(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Delete events older than event_retention_days whose task no longer exists, in batches."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.event_retention_days)
    batch = settings.retention_batch_size
    deleted = 0
    while True:
        picked = (
            select(TaskEvent.id)
            .where(TaskEvent.at < cutoff, ~exists().where(Task.id == TaskEvent.task_id))
            # Ids grow with time: the oldest events come first along the primary key.
            .order_by(TaskEvent.id)
            .limit(batch)
        )
        with engine.begin() as conn:
            n = conn.execute(delete(TaskEvent).where(TaskEvent.id.in_(picked.scalar_subquery()))).rowcount
        deleted += n
        if n < batch:
            return deleted


def purge_old_deliveries(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Delete delivered or abandoned callback deliveries older than event_retention_days."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.event_retention_days)
    with engine.begin() as conn:
        return int(
            conn.execute(
                delete(CallbackDelivery).where(
                    CallbackDelivery.status.in_(("delivered", "failed")), CallbackDelivery.created_at < cutoff
                )
            ).rowcount
        )


def run_retention(engine: Engine, settings: Settings, now: datetime | None = None) -> RetentionReport:
    """One retention pass: finished tasks, then old events of deleted tasks, then old deliveries."""
    now = now or datetime.now(UTC)
    by_rule = purge_finished_tasks(engine, settings, now)
    events = purge_old_events(engine, settings, now)
    deliveries = purge_old_deliveries(engine, settings, now)
    return RetentionReport(sum(by_rule.values()), events, deliveries, by_rule)
