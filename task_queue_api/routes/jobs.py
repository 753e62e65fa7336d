"""Recurring jobs: list them, enable/disable them (operator), set or reset their cron (operator),
read their audit events, run one now (operator).

Job ids are the Prefect deployment names of prefect.yaml. Prefect unreachable → 503
`prefect_unavailable` (with Retry-After); unknown job → 404 `not_found`; a cron or zone that
cannot be used → 422 `invalid_schedule`.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends

from backoffice.jobs.status import JobStatus
from task_queue_api.deps import ContextDep, OperatorDep, PrincipalDep
from task_queue_api.schemas.base import no_nul_in_url
from task_queue_api.schemas.errors import error_responses
from task_queue_api.schemas.job_schedules import JobEventList, JobEventPublic, JobScheduleUpdate
from task_queue_api.schemas.jobs import JobEnabledUpdate, JobList, JobPublic, JobRunCreate, JobRunPublic

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(no_nul_in_url)])

RESPONSES = error_responses(r404="No such job", r503="Prefect cannot be reached (prefect_unavailable)")
WRITE_RESPONSES = error_responses(
    r404="No such job",
    r409="Prefect refused the change, or the job is not deployed yet",
    r422="Invalid body or parameters",
    r503="Prefect cannot be reached (prefect_unavailable)",
)


def _public(status: JobStatus) -> JobPublic:
    return JobPublic.model_validate(asdict(status))


@router.get("", response_model=JobList, responses=RESPONSES, operation_id="list_jobs")
async def list_jobs(ctx: ContextDep, _: PrincipalDep) -> JobList:
    """Every job with its cron and timezone, Enabled flag, next run, last run (state, start, end,
    duration), whether it runs now, and a health word: `ok`, `failed`, `late` or `disabled`."""
    return JobList(items=[_public(s) for s in await ctx.jobs.list()])


@router.get("/{job_id}", response_model=JobPublic, responses=RESPONSES, operation_id="get_job")
async def get_job(job_id: str, ctx: ContextDep, _: PrincipalDep) -> JobPublic:
    """One job, as in the list."""
    return _public(await ctx.jobs.status(job_id))


@router.put(
    "/{job_id}/enabled", response_model=JobPublic, responses=WRITE_RESPONSES, operation_id="set_job_enabled"
)
async def set_job_enabled(
    job_id: str, body: JobEnabledUpdate, ctx: ContextDep, operator: OperatorDep
) -> JobPublic:
    """Enable or disable a job. Disabling pauses its Prefect deployment and deletes its waiting
    runs; enabling resumes it and creates the next run. The change is recorded with your key's
    name and survives redeploys and restarts. When Prefect cannot be reached nothing changes (503)."""
    return _public(await ctx.jobs.set_enabled(job_id, body.enabled, operator.name))


@router.put(
    "/{job_id}/schedule", response_model=JobPublic, responses=WRITE_RESPONSES, operation_id="set_job_schedule"
)
async def set_job_schedule(
    job_id: str, body: JobScheduleUpdate, ctx: ContextDep, operator: OperatorDep
) -> JobPublic:
    """Run the job on this cron instead of prefect.yaml's (`schedule_source` becomes `override`).
    The Prefect deployment's schedule follows at once: runs waiting under the old cron are deleted
    and the next run is the new cron's next slot. Recorded with your key's name (and an audit
    event); survives redeploys, schedule edits lost to `prefect deploy`, and restarts; a disabled
    job keeps it. `timezone` defaults to the zone in force. 422 `invalid_schedule` says what is
    wrong with the cron or the zone."""
    return _public(await ctx.jobs.set_schedule(job_id, body.cron, body.timezone, operator.name))


@router.delete(
    "/{job_id}/schedule",
    response_model=JobPublic,
    responses=WRITE_RESPONSES,
    operation_id="reset_job_schedule",
)
async def reset_job_schedule(job_id: str, ctx: ContextDep, operator: OperatorDep) -> JobPublic:
    """Back to prefect.yaml's cron (`schedule_source: catalog`), in Prefect too; nothing to do when
    the job has no override."""
    return _public(await ctx.jobs.reset_schedule(job_id, operator.name))


@router.get(
    "/{job_id}/events", response_model=JobEventList, responses=RESPONSES, operation_id="list_job_events"
)
async def list_job_events(job_id: str, ctx: ContextDep, _: PrincipalDep) -> JobEventList:
    """The job's audit events, newest first: every schedule change, who made it, when, old → new."""
    events = await ctx.jobs.events(job_id)
    return JobEventList(items=[JobEventPublic.model_validate(asdict(e)) for e in events])


@router.post(
    "/{job_id}/run",
    status_code=201,
    response_model=JobRunPublic,
    responses=WRITE_RESPONSES,
    operation_id="run_job",
)
async def run_job(
    job_id: str, ctx: ContextDep, operator: OperatorDep, body: JobRunCreate | None = None
) -> JobRunPublic:
    """Start a run of the job now and return its flow run id. `day` sets the business day of jobs
    that take one; a disabled job's run ends as `Skipped` unless `force` is true.
    409 `not_deployed` before the first `backoffice deploy`; 422 for parameters the job lacks."""
    body = body or JobRunCreate()
    started = await ctx.jobs.run_now(
        job_id, operator.name, day=body.day, force=body.force, parameters=body.parameters
    )
    message = "Run created; the flow runner starts it within seconds."
    if not started.enabled and not body.force:
        message = "The job is disabled: this run ends as Skipped. Send force=true to run it anyway."
    return JobRunPublic(
        job_id=started.job_id,
        flow_run_id=started.flow_run_id,
        flow_run_name=started.flow_run_name,
        parameters=started.parameters,
        enabled=started.enabled,
        message=message,
    )
