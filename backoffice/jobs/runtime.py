"""Rules every job flow applies at the start of a run: which business day, and whether to run."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect.client.schemas.objects import State
from prefect.states import Completed

from backoffice.calendar import previous_business_day
from backoffice.db import create_db_engine
from backoffice.errors import NotFound
from backoffice.jobs.catalog import load_catalog
from backoffice.jobs.store import JobRecordStore
from backoffice.settings import get_settings

SKIPPED = "Skipped"


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
    """Whether the Enabled record of `job_id` says run (a missing row: the job's `enabled_by_default`)."""
    try:
        default = load_catalog().get(job_id).enabled_by_default
    except NotFound:  # a deployment the catalog does not declare: the store's plain default
        default = True
    engine = create_db_engine(get_settings())
    try:
        return JobRecordStore(engine).get(job_id, default).enabled
    finally:
        engine.dispose()


def skip_if_disabled(force: bool) -> State | None:
    """A `Skipped` state to return when this run's job is disabled and not forced, else None."""
    job_id = current_job_id()
    if force or job_id is None or job_enabled(job_id):
        return None
    return Completed(
        name=SKIPPED,
        message=f"Job {job_id} is disabled; nothing was done. Enable it, or run with force=true.",
    )
