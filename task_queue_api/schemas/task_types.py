"""Bodies of /api/task-types/{task_type}: a type's optional definition."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from backoffice.queue.records import TypeStats
from backoffice.queue.task_types import TaskTypeRecord
from task_queue_api.schemas.base import RequestBody


class TaskTypeDefinitionPut(RequestBody):
    """A task type's definition; PUT replaces it whole (a field left out is unset: the default)."""

    description: Annotated[str, Field(max_length=2000)] | None = None
    lease_seconds: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Lock length of a lock call without lease_seconds (max MAX_LEASE)."
    )
    max_attempts: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="max_attempts of a task created without one."
    )
    retry_backoff_seconds: Annotated[float, Field(gt=0, le=86_400)] | None = Field(
        default=None, description="Base of the exponential backoff after a failed attempt."
    )
    data_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema every task's data must match (422 otherwise)."
    )
    retention_days: Annotated[int, Field(ge=1, le=36_500)] | None = Field(
        default=None,
        description="Finished tasks older than this are deleted (default BACKOFFICE_TASK_RETENTION_DAYS).",
    )


class TaskTypeDefinitionPublic(BaseModel):
    """A stored definition."""

    task_type: str
    description: str | None
    lease_seconds: int | None
    max_attempts: int | None
    retry_backoff_seconds: float | None
    data_schema: dict[str, Any] | None
    retention_days: int | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, record: TaskTypeRecord) -> TaskTypeDefinitionPublic:
        """From a stored definition."""
        return cls.model_validate(record, from_attributes=True)


class TaskTypeCounts(BaseModel):
    """A type's tasks by status."""

    pending: int
    locked: int
    expired: int
    completed: int
    failed: int
    oldest_pending_at: datetime | None

    @classmethod
    def of(cls, stats: TypeStats) -> TaskTypeCounts:
        """From stored stats."""
        return cls.model_validate(stats, from_attributes=True)


class TaskTypeDetail(BaseModel):
    """One defined type: its definition and its tasks' counts."""

    task_type: str
    definition: TaskTypeDefinitionPublic
    counts: TaskTypeCounts
