"""What `GET /api/jobs`, `backoffice jobs list` and the dashboard show per job."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.sorting import FlowRunSort
from prefect.server.schemas.schedules import CronSchedule

from backoffice.jobs.catalog import Catalog, Job
from backoffice.jobs.prefect_api import read_deployments
from backoffice.jobs.schedule_store import ScheduleOverride
from backoffice.jobs.store import JobRecord

Health = Literal["ok", "failed", "late", "disabled"]
EnabledSource = Literal["record", "default"]
ScheduleSource = Literal["override", "catalog"]
# A waiting run this much past its time counts as late (the worker polls every few seconds).
LATE_AFTER = timedelta(minutes=2)
_FAILED = {StateType.FAILED, StateType.CRASHED}


@dataclass(frozen=True)
class LastRun:
    """The most recent run that started."""

    flow_run_id: UUID
    name: str
    state: str
    state_type: str
    start: datetime | None
    end: datetime | None
    duration_seconds: float | None


@dataclass(frozen=True)
class JobStatus:
    """One job: its declaration, its records and what Prefect says about its runs.

    `cron`/`timezone` are the schedule in force (an override, else prefect.yaml's, kept in
    `catalog_cron`/`catalog_timezone`); `enabled_source` says whether an Enabled record or the
    catalog's `enabled_by_default` decides `enabled`.
    """

    id: str
    flow: str
    cron: str
    timezone: str
    parameters: dict[str, object]
    enabled: bool
    changed_at: datetime | None
    changed_by: str | None
    deployment_id: UUID | None
    next_run_at: datetime | None
    last_run: LastRun | None
    running_now: bool
    health: Health
    enabled_source: EnabledSource = "record"
    schedule_source: ScheduleSource = "catalog"
    schedule_changed_at: datetime | None = None
    schedule_changed_by: str | None = None
    catalog_cron: str = ""
    catalog_timezone: str = ""


def _last_run(run: FlowRun | None) -> LastRun | None:
    if run is None:
        return None
    duration = None
    if run.start_time and run.end_time:
        duration = (run.end_time - run.start_time).total_seconds()
    return LastRun(
        flow_run_id=run.id,
        name=run.name,
        state=run.state_name or (run.state.name if run.state and run.state.name else "Unknown"),
        state_type=run.state_type.value if run.state_type else "UNKNOWN",
        start=run.start_time,
        end=run.end_time,
        duration_seconds=duration,
    )


def health_of(
    enabled: bool, deployed: bool, last: FlowRun | None, waiting: FlowRun | None, now: datetime
) -> Health:
    """disabled > failed (last run failed or crashed) > late (a run overdue, or not deployed) > ok."""
    if not enabled:
        return "disabled"
    if last is not None and last.state_type in _FAILED:
        return "failed"
    if not deployed:
        return "late"
    if waiting is not None and waiting.expected_start_time and waiting.expected_start_time < now - LATE_AFTER:
        return "late"
    return "ok"


async def next_slot(job: Job, after: datetime) -> datetime:
    """The first cron slot of `job` after `after`, from its cron and timezone (UTC-aware).

    Shown as the next run while Prefect has no scheduled run yet (its scheduler fills the
    horizon every few seconds), the way Hangfire shows the next execution from the cron.
    """
    (slot,) = await CronSchedule(cron=job.cron, timezone=job.timezone).get_dates(n=1, start=after)
    return datetime.fromtimestamp(slot.timestamp(), UTC)


def _runs_filter(deployment_id: UUID, **criteria: object) -> FlowRunFilter:
    return FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]), **criteria)


async def _job_status(
    client: PrefectClient,
    declared: Job,
    record: JobRecord,
    override: ScheduleOverride | None,
    deployment: DeploymentResponse | None,
    flow_names: dict[UUID, str],
    now: datetime,
) -> JobStatus:
    job = declared.on(override.schedule) if override is not None else declared
    waiting = last = None
    running = 0
    if deployment is not None:
        scheduled = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        started = FlowRunFilterStartTime(is_null_=False)
        runs_now = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
        next_runs, last_runs, running = await asyncio.gather(
            client.read_flow_runs(
                flow_run_filter=_runs_filter(deployment.id, state=scheduled),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=1,
            ),
            client.read_flow_runs(
                flow_run_filter=_runs_filter(deployment.id, start_time=started),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            ),
            client.count_flow_runs(flow_run_filter=_runs_filter(deployment.id, state=runs_now)),
        )
        waiting = next_runs[0] if next_runs else None
        last = last_runs[0] if last_runs else None
    next_run_at: datetime | None = waiting.expected_start_time if waiting else None
    if next_run_at is None and record.enabled:
        next_run_at = await next_slot(job, now)
    return JobStatus(
        id=job.id,
        flow=flow_names.get(deployment.flow_id, job.function) if deployment else job.function,
        cron=job.cron,
        timezone=job.timezone,
        parameters=dict(job.parameters),
        enabled=record.enabled,
        changed_at=record.changed_at,
        changed_by=record.changed_by,
        deployment_id=deployment.id if deployment else None,
        next_run_at=next_run_at,
        last_run=_last_run(last),
        running_now=running > 0,
        health=health_of(record.enabled, deployment is not None, last, waiting, now),
        enabled_source="record" if record.stored else "default",
        schedule_source="override" if override is not None else "catalog",
        schedule_changed_at=override.changed_at if override else None,
        schedule_changed_by=override.changed_by if override else None,
        catalog_cron=declared.cron,
        catalog_timezone=declared.timezone,
    )


async def job_statuses(
    client: PrefectClient,
    catalog: Catalog,
    records: dict[str, JobRecord],
    now: datetime | None = None,
    overrides: Mapping[str, ScheduleOverride] | None = None,
) -> list[JobStatus]:
    """The status of every job of the catalog, in catalog order, under the schedules in force."""
    overrides = overrides or {}
    now = now or datetime.now(UTC)
    deployments = await read_deployments(client, catalog.ids)
    flow_ids = list({d.flow_id for d in deployments.values()})
    flows = (
        await client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids))) if flow_ids else []
    )
    flow_names = {f.id: f.name for f in flows}
    return list(
        await asyncio.gather(
            *(
                _job_status(
                    client,
                    job,
                    records[job.id],
                    overrides.get(job.id),
                    deployments.get(job.id),
                    flow_names,
                    now,
                )
                for job in catalog.jobs
            )
        )
    )
