"""Bodies of /api/jobs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool

from task_queue_api.schemas.base import RequestBody

Health = Literal["ok", "failed", "late", "disabled"]


class LastRunPublic(BaseModel):
    """The job's most recent run that started."""

    flow_run_id: uuid.UUID
    name: str
    state: str = Field(description="Prefect state name, e.g. Completed, Failed, Skipped, TimedOut")
    state_type: str
    start: datetime | None
    end: datetime | None
    duration_seconds: float | None


class JobPublic(BaseModel):
    """A recurring job: its schedule, Enabled record, next and last run, and a health word."""

    id: str = Field(description="Job id = Prefect deployment name")
    flow: str
    cron: str = Field(description="The cron in force: the override, else prefect.yaml's")
    timezone: str = Field(description="IANA zone the cron is read in")
    schedule_source: Literal["override", "catalog"] = Field(
        description="override: an operator's schedule (PUT /schedule); catalog: prefect.yaml's"
    )
    schedule_changed_at: datetime | None = Field(description="When the override was set (None: catalog)")
    schedule_changed_by: str | None = Field(
        description="Who set the override: a key name, cli:<user> or prefect-ui (None: catalog)"
    )
    catalog_cron: str = Field(description="The cron prefect.yaml declares (DELETE /schedule goes back to it)")
    catalog_timezone: str
    parameters: dict[str, Any]
    enabled: bool
    enabled_source: Literal["record", "default"] = Field(
        description="record: an Enabled record decides; default: prefect.yaml's enabled_by_default does"
    )
    changed_at: datetime | None = Field(description="When Enabled was last changed (None: never)")
    changed_by: str | None = Field(description="Who changed it: a key name, cli:<user> or prefect-ui")
    deployment_id: uuid.UUID | None = Field(description="None while the job is not deployed")
    next_run_at: datetime | None
    last_run: LastRunPublic | None
    running_now: bool
    health: Health = Field(description="disabled, failed (last run failed), late (overdue), else ok")


class JobList(BaseModel):
    """All jobs, in catalog order."""

    items: list[JobPublic]


class JobEnabledUpdate(RequestBody):
    """Enable or disable a job."""

    enabled: StrictBool


class JobRunCreate(RequestBody):
    """Overrides for a run started now; all optional."""

    day: date | None = Field(default=None, description="Business day for jobs that take one (YYYY-MM-DD)")
    force: StrictBool = Field(default=False, description="Run even when the job is disabled")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Other flow parameters")


class JobRunPublic(BaseModel):
    """The run just started."""

    job_id: str
    flow_run_id: uuid.UUID
    flow_run_name: str
    parameters: dict[str, Any]
    enabled: bool
    message: str
