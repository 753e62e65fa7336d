"""Bodies of /api/keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from backoffice.principals import Role
from task_queue_api.schemas.base import RequestBody

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")]
TaskTypeName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]


class KeyCreate(RequestBody):
    """A new function key. Consumers must name the task types they may touch."""

    name: Name
    role: Role
    task_types: list[TaskTypeName] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _consumer_needs_types(self) -> KeyCreate:
        if self.role == "consumer" and not self.task_types:
            raise ValueError("a consumer key needs at least one task type")
        if self.role != "consumer" and self.task_types:
            raise ValueError("task_types apply to consumer keys only")
        return self


class KeyPublic(BaseModel):
    """A key without its secret."""

    name: str
    role: Role
    task_types: list[str] | None
    created_at: datetime
    created_by: str
    revoked: bool
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    """A key just created, with its plaintext: shown this once, store it now."""

    key: str


class KeyList(BaseModel):
    """All keys."""

    items: list[KeyPublic]
