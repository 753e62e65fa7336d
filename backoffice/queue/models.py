"""Tables of the scheduled-task queue: tasks, their audit events, function keys and dashboard sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.schema import Base, JSONType, UTCDateTime

# Stored statuses. `expired` is a lock that ran out and was swept: claimable again, but its
# last holder keeps its token and may still complete until somebody re-locks the task.
TASK_STATUSES = ("pending", "locked", "expired", "completed", "failed")


class Task(Base):
    """One unit of work for an outside consumer, drained through lock → complete/fail."""

    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    task_type: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the task may next be claimed: not_before or creation, later a retry's backoff.
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    lock_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    lock_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    completed_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(128))
    result: Mapped[Any | None] = mapped_column(JSONType)
    last_error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'locked', 'expired', 'completed', 'failed')", name="status"),
        UniqueConstraint("task_type", "idempotency_key", name="uq_tasks_type_idempotency_key"),
        # The claim index: equality column, then exactly the claim's ORDER BY, only over
        # claimable rows, so finished rows never slow a claim down.
        Index(
            "ix_tasks_claim",
            "task_type",
            "priority",
            "available_at",
            "id",
            postgresql_where=text("status IN ('pending', 'expired')"),
            sqlite_where=text("status IN ('pending', 'expired')"),
        ),
        # The sweep of run-out locks reads only locked rows.
        Index(
            "ix_tasks_lock_expiry",
            "task_type",
            "locked_until",
            postgresql_where=text("status = 'locked'"),
            sqlite_where=text("status = 'locked'"),
        ),
        # Listing is newest first with keyset paging on (created_at, id).
        Index("ix_tasks_created", "created_at", "id"),
        Index("ix_tasks_type_status", "task_type", "status"),
    )


class TaskEvent(Base):
    """An audit event; no foreign key, so a deleted task keeps its history."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        Index("ix_task_events_task", "task_id", "id"),
        Index("ix_task_events_event_at", "event", "at"),
    )


class ApiKey(Base):
    """A function key: only its SHA-256 is stored; the plaintext is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    task_types: Mapped[list[str] | None] = mapped_column(JSONType)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("role IN ('consumer', 'operator', 'admin')", name="role"),)


class DashboardSession(Base):
    """A signed-in dashboard session. The cookie holds a random token; only its SHA-256 is stored,
    so sign-out or revoking the key (deleting the row) ends it on every sidecar at once."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_name: Mapped[str] = mapped_column(String(128))
    # The key's hash at sign-in: a key replaced under the same name (or a new bootstrap key)
    # does not inherit the old key's sessions.
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_dashboard_sessions_key_name", "key_name"),
        Index("ix_dashboard_sessions_expires_at", "expires_at"),
    )
