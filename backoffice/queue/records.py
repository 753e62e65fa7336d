"""Plain records the task store hands out (no SQLAlchemy objects leave the storage layer)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TaskRecord:
    """A task as stored, with the status a reader sees (`expired` for a run-out lock)."""

    id: uuid.UUID
    task_type: str
    data: dict[str, Any]
    status: str
    priority: int
    not_before: datetime | None
    available_at: datetime
    attempts: int
    max_attempts: int
    lock_date: datetime | None
    locked_until: datetime | None
    locked_by: str | None
    lock_token: uuid.UUID | None
    completed_date: datetime | None
    completed_by: str | None
    result: Any
    last_error: str | None
    idempotency_key: str | None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    # Columns of migration 0008; defaults so a statement that does not return them still builds one.
    last_error_kind: str | None = None
    first_locked_at: datetime | None = None
    callback_url: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any], now: datetime) -> TaskRecord:
        """Build from a result row; a `locked` row whose lock ran out reads as `expired`."""
        values = {name: row[name] for name in _TASK_FIELDS if name in row}
        if values["status"] == "locked" and values["locked_until"] <= now:
            values["status"] = "expired"
        return cls(**values)


_TASK_FIELDS = tuple(f.name for f in fields(TaskRecord))


@dataclass(frozen=True)
class TaskEventRecord:
    """One audit event of a task."""

    event: str
    actor: str
    at: datetime
    details: dict[str, Any] | None


@dataclass(frozen=True)
class TypeStats:
    """Counts by status of one task type."""

    task_type: str
    pending: int
    locked: int
    expired: int
    completed: int
    failed: int
    oldest_pending_at: datetime | None

    @classmethod
    def empty(cls, task_type: str) -> TypeStats:
        """The stats of a type without tasks."""
        return cls(task_type, 0, 0, 0, 0, 0, None)


@dataclass(frozen=True)
class CompletionOutcome:
    """How one item of a batch completion went."""

    id: uuid.UUID
    ok: bool
    error: str | None = None
