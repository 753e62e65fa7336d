"""Rules every job flow applies at the start of a run: which business day, and whether to run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect.client.schemas.objects import State
from prefect.states import Completed
from sqlalchemy import select

from backoffice.db import create_db_engine
from backoffice.jobs.models import RecurringJob
from backoffice.settings import get_settings

PRAGUE = ZoneInfo("Europe/Prague")
SKIPPED = "Skipped"


def previous_business_day(reference: datetime) -> date:
    """The day before `reference`, as a date in Europe/Prague."""
    return reference.astimezone(PRAGUE).date() - timedelta(days=1)


def scheduled_start() -> datetime:
    """The running flow's scheduled start time (now outside a flow run)."""
    from prefect.runtime import flow_run

    start = flow_run.scheduled_start_time
    if start is None:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(start)) if not isinstance(start, datetime) else start


def business_day(day: date | None) -> date:
    """`day` when given, else the flow run's *scheduled* start in Prague minus one day.

    Not the wall clock: a run that starts late, or is re-run a week later, works on the day
    it was scheduled for.
    """
    return day if day is not None else previous_business_day(scheduled_start())


def current_job_id() -> str | None:
    """The job id (= deployment name) of the running flow, None for an ad-hoc run."""
    from prefect.runtime import deployment

    name = deployment.name
    return str(name) if name else None


def job_enabled(job_id: str) -> bool:
    """The Enabled record of a job; a missing row means enabled (as in the old system)."""
    engine = create_db_engine(get_settings())
    try:
        with engine.connect() as conn:
            enabled = conn.execute(
                select(RecurringJob.enabled).where(RecurringJob.job_id == job_id)
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    return enabled is None or bool(enabled)


def skip_if_disabled(force: bool) -> State | None:
    """A `Skipped` state to return when this run's job is disabled and not forced, else None."""
    job_id = current_job_id()
    if force or job_id is None or job_enabled(job_id):
        return None
    return Completed(
        name=SKIPPED,
        message=f"Job {job_id} is disabled; nothing was done. Enable it, or run with force=true.",
    )
