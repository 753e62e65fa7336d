"""The task queue on the dashboard: the filtered list, a task's detail, retry and delete.

Actions call the same TaskStore methods as the API routes, after the same role check, with the
signed-in key's name as the actor, so the audit trail cannot tell the two apart.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams
from starlette.responses import RedirectResponse, Response

from backoffice.calendar import day_bounds
from backoffice.errors import BackofficeError
from backoffice.queue.queries import TaskFilter
from backoffice.queue.records import TaskRecord
from backoffice.queue.timing import held_seconds, waited_seconds
from task_queue_api.dashboard.auth import CheckedSessionDep, SessionDep
from task_queue_api.dashboard.views import error_from, error_page, render
from task_queue_api.deps import ContextDep

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
STATUSES = ("pending", "locked", "expired", "completed", "failed")
TEXT_FIELDS = (
    "task_type",
    "status",
    "created_from",
    "created_to",
    "created_by",
    "completed_by",
    "error_kind",
)
ERROR_KINDS = ("execution", "validation", "timeout", "system")
MAX_FIELD = 128
TASK_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
DONE_MESSAGES = {
    "retried": "The task is pending again, its attempts reset.",
    "deleted": "The task was deleted; its audit trail is kept below.",
}


@dataclass
class ListQuery:
    """The list's filters as typed (for the form) and as a TaskFilter (for the store)."""

    values: dict[str, str]
    filters: TaskFilter
    errors: list[str] = field(default_factory=list)

    def url(self, **extra: str) -> str:
        """`/tasks?…` with these filters plus `extra`."""
        query = {k: v for k, v in {**self.values, **extra}.items() if v}
        return "/tasks" + ("?" + urlencode(query) if query else "")


def _day(text: str, errors: list[str], label: str) -> date | None:
    """A `YYYY-MM-DD` day of the form; empty or malformed (with a message) is None."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{label} must be a date like 2025-01-31.")
        return None


def parse_list_query(params: QueryParams) -> ListQuery:
    """Read the filter form; bad values become messages, never errors of the page."""
    values = {name: params.get(name, "").strip() for name in TEXT_FIELDS}
    errors: list[str] = []
    for name, text in values.items():
        if len(text) > MAX_FIELD:
            errors.append(f"{name.replace('_', ' ').capitalize()} may be at most {MAX_FIELD} characters.")
            values[name] = text[:MAX_FIELD]
    if values["task_type"] and not TASK_TYPE.fullmatch(values["task_type"]):
        errors.append("The task type may hold letters, digits, '_', '.' and '-' only.")
    if values["status"] and values["status"] not in STATUSES:
        errors.append(f"The status must be one of {', '.join(STATUSES)}.")
    if values["error_kind"] and values["error_kind"] not in ERROR_KINDS:
        errors.append(f"The error kind must be one of {', '.join(ERROR_KINDS)}.")
    first_day = _day(values["created_from"], errors, "From")
    last_day = _day(values["created_to"], errors, "To")
    # "To" names the last day shown: the bound is the end of that Prague day (exclusive).
    created_from = day_bounds(first_day)[0] if first_day else None
    created_to = day_bounds(last_day)[1] if last_day else None
    filters = TaskFilter(
        task_type=values["task_type"] or None,
        status=values["status"] or None,
        created_from=created_from,
        created_to=created_to,
        created_by=values["created_by"] or None,
        completed_by=values["completed_by"] or None,
        error_kind=values["error_kind"] or None,
    )
    return ListQuery(values, filters, errors)


@router.get("/tasks")
def task_list(request: Request, ctx: ContextDep, _: SessionDep) -> Response:
    """Tasks newest first, filtered, a page at a time."""
    query = parse_list_query(request.query_params)
    cursor = request.query_params.get("cursor") or None
    items: list[TaskRecord] = []
    next_cursor: str | None = None
    if not query.errors:
        try:
            items, next_cursor = ctx.tasks.list_tasks(query.filters, PAGE_SIZE, cursor)
        except BackofficeError as exc:
            return error_from(request, exc)
    return render(
        request,
        "tasks.html",
        400 if query.errors else 200,
        query=query,
        items=items,
        statuses=STATUSES,
        task_types=[s.task_type for s in ctx.tasks.type_stats()],
        next_url=query.url(cursor=next_cursor) if next_cursor else None,
        first_url=query.url() if cursor else None,
    )


def _task_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@router.get("/tasks/{task_id}")
def task_detail(request: Request, task_id: str, ctx: ContextDep, _: SessionDep) -> Response:
    """One task (or what is left of a deleted one): data, result, last error, audit trail."""
    parsed = _task_id(task_id)
    task = ctx.tasks.find(parsed) if parsed else None
    events = ctx.tasks.events(parsed) if parsed else []
    if task is None and not events:
        return error_page(request, 404, "not_found", f"There is no task {task_id}.")
    done = DONE_MESSAGES.get(request.query_params.get("done", ""))
    timing = _timing(task) if task else {}
    return render(request, "task.html", task=task, task_id=parsed, events=events, done=done, timing=timing)


def _timing(task: TaskRecord) -> dict[str, float]:
    """How long the task waited for its first lock and, once completed, was held by its last attempt."""
    found = {
        "waited": waited_seconds(task.created_at, task.not_before, task.first_locked_at),
        "held": held_seconds(task.lock_date, task.completed_date) if task.completed_date else None,
    }
    return {k: v for k, v in found.items() if v is not None}


@router.post("/tasks/{task_id}/retry")
def retry_task(request: Request, task_id: str, ctx: ContextDep, session: CheckedSessionDep) -> Response:
    """Retry a failed or expired task (TaskStore.retry, as POST /api/tasks/{id}/retry)."""
    parsed = _task_id(task_id)
    if parsed is None:
        return error_page(request, 404, "not_found", f"There is no task {task_id}.")
    try:
        session.principal.require_role("operator")
        ctx.tasks.retry(parsed, session.principal.name)
    except BackofficeError as exc:
        return error_from(request, exc)
    return RedirectResponse(f"/tasks/{parsed}?done=retried", status_code=303)


@router.post("/tasks/{task_id}/delete")
def delete_task(request: Request, task_id: str, ctx: ContextDep, session: CheckedSessionDep) -> Response:
    """Delete a task nobody holds (TaskStore.delete, as DELETE /api/tasks/{id})."""
    parsed = _task_id(task_id)
    if parsed is None:
        return error_page(request, 404, "not_found", f"There is no task {task_id}.")
    try:
        session.principal.require_role("operator")
        ctx.tasks.delete(parsed, session.principal.name)
    except BackofficeError as exc:
        return error_from(request, exc)
    return RedirectResponse(f"/tasks/{parsed}?done=deleted", status_code=303)
