"""Tables of the scheduled-task queue: tasks, their audit events, function keys, dashboard sessions,
task-type definitions and the result-callback outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
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
# What a failure was: the worker's code (execution), bad input (validation), a lock that ran out
# (timeout), or the platform (system).
ERROR_KINDS = ("execution", "validation", "timeout", "system")
CALLBACK_STATUSES = ("pending", "delivered", "failed")


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
    # Filled by the hot path: the kind of the last failure (ERROR_KINDS), the first lock (for the
    # wait time), and where the result callback goes (the create checked it against the allow-list).
    last_error_kind: Mapped[str | None] = mapped_column(String(16))
    first_locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_url: Mapped[str | None] = mapped_column(String(2048))

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
        # Retention reads only finished rows, oldest first (updated_at of a finished task is when
        # it finished: completed and dead-lettered tasks are not changed by workers any more).
        Index(
            "ix_tasks_finished",
            "updated_at",
            postgresql_where=text("status IN ('completed', 'failed')"),
            sqlite_where=text("status IN ('completed', 'failed')"),
        ),
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


class TaskTypeDefinition(Base):
    """Optional settings of one task type; a type without a row behaves as before (defaults)."""

    __tablename__ = "task_types"

    task_type: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    lease_seconds: Mapped[int | None] = mapped_column(Integer)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    retry_backoff_seconds: Mapped[float | None] = mapped_column(Float)
    data_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(128))


class CallbackDelivery(Base):
    """The result-callback outbox: one row per (task, event) to POST, written in the transaction of
    the state change, delivered and retried by the sidecars' deliverers (backoffice/queue/callbacks.py)."""

    __tablename__ = "callback_deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Sent as X-Backoffice-Delivery, the same on every retry: receivers de-duplicate on it.
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A deliverer's claim: nobody else sends this delivery before claimed_until (fenced by the token).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The raw body (JSON text, not JSONB: key order kept), fixed at the first attempt so every
    # retry sends, and signs, the same bytes.
    body: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # The deliverers' poll reads only pending rows, due first.
        Index(
            "ix_callback_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_callback_deliveries_task", "task_id"),
    )
