"""Reads of the task queue: one task, filtered lists with keyset paging, events, type stats."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from backoffice.errors import NotFound, ValidationFailed
from backoffice.queue.models import Task, TaskEvent
from backoffice.queue.records import TaskEventRecord, TaskRecord, TypeStats


@dataclass(frozen=True)
class TaskFilter:
    """Filters of the task list; `task_types` restricts a consumer to its own types."""

    task_type: str | None = None
    status: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    completed_from: datetime | None = None
    completed_to: datetime | None = None
    created_by: str | None = None
    completed_by: str | None = None
    task_types: frozenset[str] | None = None
    error_kind: str | None = None


def encode_cursor(created_at: datetime, task_id: uuid.UUID) -> str:
    """An opaque cursor pointing after (created_at, id)."""
    raw = f"{created_at.isoformat()}|{task_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) behind a cursor; ValidationFailed when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, task_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        # Ours always carry a zone; a naive or off-calendar time would only fail at the database.
        if created_at.tzinfo is None:
            raise ValueError("naive cursor time")
        return created_at.astimezone(UTC), uuid.UUID(task_id)
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed("The cursor is not valid; pass next_cursor from a previous page.") from exc


def _as_utc(value: datetime | str) -> datetime:
    # min() over a CASE loses the column type: SQLite hands back text, PostgreSQL a datetime.
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class TaskQueryStore:
    """Read side of the task store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, task_id: uuid.UUID, conn: Connection | None = None) -> TaskRecord | None:
        """A task, or None (read on `conn` when given)."""
        now = datetime.now(UTC)
        query = select(Task).where(Task.id == task_id)
        if conn is not None:
            row = conn.execute(query).mappings().first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        return TaskRecord.from_row(row, now) if row else None

    def get(self, task_id: uuid.UUID) -> TaskRecord:
        """A task; NotFound when there is none."""
        task = self.find(task_id)
        if task is None:
            raise NotFound(f"There is no task {task_id}.")
        return task

    def _by_idempotency_key(self, task_type: str, key: str) -> TaskRecord | None:
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(Task).where(Task.task_type == task_type, Task.idempotency_key == key))
                .mappings()
                .first()
            )
        return TaskRecord.from_row(row, now) if row else None

    def list_tasks(
        self, filters: TaskFilter, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[TaskRecord], str | None]:
        """Tasks matching `filters`, newest first, and the cursor of the next page (or None)."""
        now = datetime.now(UTC)
        query = select(Task).where(*self._conditions(filters, now))
        if cursor:
            created_at, task_id = decode_cursor(cursor)
            query = query.where(
                or_(Task.created_at < created_at, and_(Task.created_at == created_at, Task.id < task_id))
            )
        query = query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        items = [TaskRecord.from_row(r, now) for r in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor(items[-1].created_at, items[-1].id) if more else None

    @staticmethod
    def _conditions(f: TaskFilter, now: datetime) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if f.task_type is not None:
            conds.append(Task.task_type == f.task_type)
        if f.task_types is not None:
            conds.append(Task.task_type.in_(sorted(f.task_types)))
        if f.status == "expired":
            conds.append(
                or_(Task.status == "expired", and_(Task.status == "locked", Task.locked_until <= now))
            )
        elif f.status == "locked":
            conds.append(and_(Task.status == "locked", Task.locked_until > now))
        elif f.status is not None:
            conds.append(Task.status == f.status)
        bounds: list[tuple[Any, Any, Any]] = [
            (Task.created_at, f.created_from, f.created_to),
            (Task.completed_date, f.completed_from, f.completed_to),
        ]
        for column, low, high in bounds:
            if low is not None:
                conds.append(column >= low)
            if high is not None:
                conds.append(column < high)
        if f.created_by is not None:
            conds.append(Task.created_by == f.created_by)
        if f.completed_by is not None:
            conds.append(Task.completed_by == f.completed_by)
        if f.error_kind is not None:
            conds.append(Task.last_error_kind == f.error_kind)
        return conds

    def events(self, task_id: uuid.UUID) -> list[TaskEventRecord]:
        """A task's audit trail, oldest first (kept after the task is deleted)."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id))
                .mappings()
                .all()
            )
        return [TaskEventRecord(r["event"], r["actor"], r["at"], r["details"]) for r in rows]

    def event_task_type(self, task_id: uuid.UUID) -> str | None:
        """The task type recorded in a task's `created` event (for tasks since deleted)."""
        with self.engine.connect() as conn:
            details = conn.execute(
                select(TaskEvent.details)
                .where(TaskEvent.task_id == task_id, TaskEvent.event == "created")
                .limit(1)
            ).scalar_one_or_none()
        return str(details["task_type"]) if details and "task_type" in details else None

    def type_stats(self, task_types: frozenset[str] | None = None) -> list[TypeStats]:
        """Counts by status per task type, and the oldest pending task's creation time."""
        now = datetime.now(UTC)
        status = case(
            (and_(Task.status == "locked", Task.locked_until <= now), text("'expired'")),
            else_=Task.status,
        )
        query = select(
            Task.task_type,
            status.label("status"),
            func.count().label("n"),
            func.min(case((Task.status == "pending", Task.created_at))).label("oldest"),
        ).group_by(Task.task_type, status)
        if task_types is not None:
            query = query.where(Task.task_type.in_(sorted(task_types)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        counts: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = counts.setdefault(row.task_type, {"oldest_pending_at": None})
            entry[row.status] = entry.get(row.status, 0) + row.n
            if row.oldest is not None:
                oldest = (
                    row.oldest if isinstance(row.oldest, datetime) else datetime.fromisoformat(row.oldest)
                )
                entry["oldest_pending_at"] = oldest.replace(tzinfo=oldest.tzinfo or UTC)
        return [
            TypeStats(
                task_type=t,
                pending=c.get("pending", 0),
                locked=c.get("locked", 0),
                expired=c.get("expired", 0),
                completed=c.get("completed", 0),
                failed=c.get("failed", 0),
                oldest_pending_at=c["oldest_pending_at"],
            )
            for t, c in sorted(counts.items())
        ]

    def task_types_of(self, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The task type of each existing task among `task_ids`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Task.id, Task.task_type).where(Task.id.in_(task_ids))).all()
        return {r.id: r.task_type for r in rows}
