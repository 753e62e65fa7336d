"""The jobs on the dashboard: the table, the enabled switch, the cron edit and reset, "Run now",
and a job's page with its audit trail.

Everything goes through JobControl (backoffice/jobs/control.py), the code behind `/api/jobs` and
`backoffice jobs`: the status shown is the API's, a switch is `set_enabled` (our record, then
Prefect's pause), a cron edit is `set_schedule` / `reset_schedule`, "Run now" is `run_now` — with
the signed-in key's name as the actor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from backoffice.errors import BackofficeError, PrefectUnavailable
from backoffice.jobs.catalog import load_catalog
from backoffice.settings import Settings
from task_queue_api.context import AppContext
from task_queue_api.dashboard.auth import CheckedSessionDep, SessionDep
from task_queue_api.dashboard.views import error_from, render
from task_queue_api.deps import ContextDep

router = APIRouter(include_in_schema=False)


def prefect_ui_url(settings: Settings) -> str | None:
    """BACKOFFICE_PREFECT_UI_URL, else the UI Prefect derives from PREFECT_API_URL."""
    if settings.prefect_ui_url:
        return settings.prefect_ui_url.rstrip("/")
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return str(ui).rstrip("/") if ui else None


async def jobs_context(ctx: AppContext) -> dict[str, Any]:
    """The jobs table's data; when Prefect is unreachable, the catalog and the reason."""
    catalog = load_catalog()
    jobs: list[Any] = []
    error = None
    try:
        jobs = await ctx.jobs.list()
    except PrefectUnavailable as exc:
        error = exc.message
    return {
        "jobs": jobs,
        "catalog": catalog.jobs,
        "jobs_error": error,
        "prefect_ui": prefect_ui_url(ctx.settings),
        "now": datetime.now(UTC),
    }


def done_message(request: Request) -> dict[str, str] | None:
    """The note shown after a job action (only known codes, job ids and run ids are echoed)."""
    done = request.query_params.get("done")
    job_id = request.query_params.get("job", "")
    if job_id not in load_catalog().ids:
        return None
    if done in ("enabled", "disabled"):
        return {"text": f"Job {job_id} is {done}."}
    if done == "schedule":
        return {"text": f"Job {job_id} runs on its new schedule; its next run follows it."}
    if done == "reset":
        return {"text": f"Job {job_id} is back on the schedule prefect.yaml declares."}
    if done == "run":
        try:
            run_id = str(uuid.UUID(request.query_params.get("run", "")))
        except ValueError:
            return None
        text = f"Started a run of {job_id}."
        if request.query_params.get("skipped"):
            text += " The job is disabled, so this run ends as Skipped."
        return {"text": text, "run_id": run_id}
    return None


@router.post("/jobs/{job_id}/enabled")
async def set_enabled(
    request: Request,
    job_id: str,
    ctx: ContextDep,
    session: CheckedSessionDep,
    enabled: Annotated[bool, Form()],
) -> Response:
    """Enable or disable a job (as PUT /api/jobs/{id}/enabled)."""
    try:
        session.principal.require_role("operator")
        await ctx.jobs.set_enabled(job_id, enabled, session.principal.name)
    except BackofficeError as exc:
        return error_from(request, exc)
    word = "enabled" if enabled else "disabled"
    return RedirectResponse(f"/?done={word}&job={quote(job_id)}#jobs", status_code=303)


@router.post("/jobs/{job_id}/schedule")
async def set_schedule(
    request: Request,
    job_id: str,
    ctx: ContextDep,
    session: CheckedSessionDep,
    cron: Annotated[str, Form()],
    timezone: Annotated[str, Form()],
) -> Response:
    """Put a cron in force (as PUT /api/jobs/{id}/schedule); a bad one shows invalid_schedule."""
    try:
        session.principal.require_role("operator")
        await ctx.jobs.set_schedule(job_id, cron, timezone.strip() or None, session.principal.name)
    except BackofficeError as exc:
        return error_from(request, exc)
    return RedirectResponse(f"/?done=schedule&job={quote(job_id)}#jobs", status_code=303)


@router.post("/jobs/{job_id}/schedule/reset")
async def reset_schedule(
    request: Request, job_id: str, ctx: ContextDep, session: CheckedSessionDep
) -> Response:
    """Back to prefect.yaml's cron (as DELETE /api/jobs/{id}/schedule)."""
    try:
        session.principal.require_role("operator")
        await ctx.jobs.reset_schedule(job_id, session.principal.name)
    except BackofficeError as exc:
        return error_from(request, exc)
    return RedirectResponse(f"/?done=reset&job={quote(job_id)}#jobs", status_code=303)


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str, ctx: ContextDep, _: SessionDep) -> Response:
    """One job: its schedule (in force and declared), Enabled, and its audit trail."""
    try:
        job = await ctx.jobs.status(job_id)
        events = await ctx.jobs.events(job_id)
    except BackofficeError as exc:
        return error_from(request, exc)
    return render(request, "job.html", job=job, events=events, done=None)


@router.post("/jobs/{job_id}/run")
async def run_now(request: Request, job_id: str, ctx: ContextDep, session: CheckedSessionDep) -> Response:
    """Start a run now (as POST /api/jobs/{id}/run)."""
    try:
        session.principal.require_role("operator")
        started = await ctx.jobs.run_now(job_id, session.principal.name)
    except BackofficeError as exc:
        return error_from(request, exc)
    skipped = "" if started.enabled else "&skipped=1"
    target = f"/?done=run&job={quote(job_id)}&run={started.flow_run_id}{skipped}#jobs"
    return RedirectResponse(target, status_code=303)
