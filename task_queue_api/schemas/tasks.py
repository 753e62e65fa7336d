"""Bodies of /api/tasks and /api/task-types."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from backoffice.queue.records import TaskEventRecord, TaskRecord, TypeStats
from backoffice.queue.task_types import TaskTypeRecord
from task_queue_api.schemas.base import RequestBody, UTCInstant
from task_queue_api.schemas.task_types import TaskTypeDefinitionPublic

TaskType = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
Status = Literal["pending", "locked", "expired", "completed", "failed"]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
MaxAttempts = Annotated[int, Field(ge=1, le=1000)]
ErrorKind = Literal["execution", "validation", "timeout", "system"]
CallbackUrl = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://")]


class TaskCreate(RequestBody):
    """A new task. A repeated `idempotency_key` of the same type returns the existing task."""

    task_type: TaskType
    data: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = 0
    not_before: UTCInstant | None = None
    max_attempts: MaxAttempts | None = Field(
        default=None, description="Default: the task type's definition, else 5."
    )
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    callback_url: CallbackUrl | None = Field(
        default=None,
        description="POSTed the task when it completes or fails for good; its host must be allowed "
        "(BACKOFFICE_CALLBACK_ALLOWED_HOSTS), else 422 callback_not_allowed.",
    )


class TaskUpdate(RequestBody):
    """Fields an operator may change on a task nobody holds."""

    data: dict[str, Any] | None = None
    priority: Priority | None = None
    not_before: UTCInstant | None = None
    max_attempts: MaxAttempts | None = None


class TaskPublic(BaseModel):
    """A task as readers see it (no lock token)."""

    id: uuid.UUID
    task_type: str
    data: dict[str, Any]
    status: Status
    priority: int
    not_before: datetime | None
    attempts: int
    max_attempts: int
    lock_date: datetime | None
    locked_until: datetime | None
    locked_by: str | None
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
    last_error_kind: ErrorKind | None = None
    first_locked_at: datetime | None = None
    callback_url: str | None = None

    @classmethod
    def of(cls, task: TaskRecord) -> TaskPublic:
        """From a stored record, dropping the lock token."""
        return cls.model_validate(task, from_attributes=True)


class LockedTaskPublic(TaskPublic):
    """A task just locked by the caller, with the token that proves it."""

    lock_token: uuid.UUID

    @classmethod
    def of(cls, task: TaskRecord) -> LockedTaskPublic:
        """From a stored record, keeping the lock token (for the locker only)."""
        return cls.model_validate(task, from_attributes=True)


class LockRequest(RequestBody):
    """Lock up to `limit` tasks of a type."""

    task_type: TaskType
    limit: Annotated[int, Field(ge=1, le=100)] = 1
    lease_seconds: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Lock length; default BACKOFFICE_LOCK_TIMEOUT_SECONDS, max MAX_LEASE."
    )
    wait_seconds: Annotated[float, Field(ge=0, le=30)] = 0


class LockResponse(BaseModel):
    """Locked tasks; an empty list when none was available."""

    items: list[LockedTaskPublic]


class CompleteRequest(RequestBody):
    """Complete a task held with `lock_token`."""

    lock_token: uuid.UUID
    result: Any = None


class CompleteItem(CompleteRequest):
    """One item of a batch completion."""

    id: uuid.UUID


class CompleteBatch(RequestBody):
    """Several completions, each judged on its own."""

    items: Annotated[list[CompleteItem], Field(min_length=1, max_length=500)]


class CompleteOutcome(BaseModel):
    """How one item went; `error` is the code the single-task endpoint would answer."""

    id: uuid.UUID
    ok: bool
    error: str | None = None


class CompleteBatchResponse(BaseModel):
    """One outcome per item, in order."""

    results: list[CompleteOutcome]


class FailRequest(RequestBody):
    """Give a held task back with an error; `retry` false sends it to the dead letter."""

    lock_token: uuid.UUID
    error: Annotated[str, Field(min_length=1, max_length=10_000)]
    retry: bool = True
    # What went wrong: stored as the task's last_error_kind and in the `failed` event.
    error_kind: ErrorKind = "execution"


class ExtendRequest(RequestBody):
    """Keep a held lock alive."""

    lock_token: uuid.UUID
    lease_seconds: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="New lease from now; default the type's lease_seconds, else LOCK_TIMEOUT.",
    )


class TaskList(BaseModel):
    """A page of tasks, newest first."""

    items: list[TaskPublic]
    next_cursor: str | None


class TaskEventPublic(BaseModel):
    """One audit event."""

    event: str
    actor: str
    at: datetime
    details: dict[str, Any] | None

    @classmethod
    def of(cls, event: TaskEventRecord) -> TaskEventPublic:
        """From a stored event."""
        return cls.model_validate(event, from_attributes=True)


class TaskEventList(BaseModel):
    """A task's audit trail, oldest first."""

    items: list[TaskEventPublic]


class TaskTypeStats(BaseModel):
    """Counts by status of one task type."""

    task_type: str
    pending: int
    locked: int
    expired: int
    completed: int
    failed: int
    oldest_pending_at: datetime | None
    definition: TaskTypeDefinitionPublic | None = None

    @classmethod
    def of(cls, stats: TypeStats, definition: TaskTypeRecord | None = None) -> TaskTypeStats:
        """From stored stats and the type's definition (if any)."""
        public = TaskTypeDefinitionPublic.of(definition) if definition else None
        return cls.model_validate({**asdict(stats), "definition": public})


class TaskTypeList(BaseModel):
    """Stats and definition of every task type."""

    items: list[TaskTypeStats]
