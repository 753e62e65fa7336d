"""Bodies of /api/jobs/{id}/schedule and /api/jobs/{id}/events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from task_queue_api.schemas.base import RequestBody


class JobScheduleUpdate(RequestBody):
    """A cron for the job, in force instead of prefect.yaml's until reset."""

    cron: str = Field(
        description="Five fields: minute hour day-of-month month day-of-week", examples=["30 12 * * 1-5"]
    )
    timezone: str | None = Field(
        default=None,
        description="IANA zone the cron is read in; default: the zone of the schedule in force",
        examples=["Europe/Prague"],
    )


class JobEventPublic(BaseModel):
    """One audit event of a job: who changed what, when."""

    id: int
    event: str = Field(description="schedule_set or schedule_reset")
    actor: str = Field(description="A key name, cli:<user> or prefect-ui")
    at: datetime
    details: dict[str, Any] = Field(description="`old` and `new`: {cron, timezone, source}")


class JobEventList(BaseModel):
    """A job's audit events, newest first."""

    items: list[JobEventPublic]
