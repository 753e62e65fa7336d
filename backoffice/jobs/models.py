"""The recurring jobs' records: Enabled (the seed's RecurringJob; a missing row = the catalog's
default), the schedule override (a missing row = the catalog's cron) and the audit of changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.schema import Base, JSONType, UTCDateTime


class RecurringJob(Base):
    """Whether a job (= a Prefect deployment of the same name) is enabled, and who said so."""

    __tablename__ = "recurring_jobs"

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(128))


class JobSchedule(Base):
    """An operator's cron for a job, in force instead of the one prefect.yaml declares."""

    __tablename__ = "job_schedules"

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(128))


class JobEvent(Base):
    """An audit event of a job (a schedule set or reset): who, when, and old → new in `details`."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    # The job's page lists its events newest first.
    __table_args__ = (Index("ix_job_events_job", "job_id", "id"),)
