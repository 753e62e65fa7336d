"""The task queue: consumers lock and complete; operators create, change, retry and delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel

from backoffice.errors import ValidationFailed
from backoffice.principals import Principal
from backoffice.queue.async_store import HotPath
from backoffice.queue.long_poll import lock_or_wait
from backoffice.queue.queries import TaskFilter
from backoffice.queue.records import TaskRecord, TypeStats
from task_queue_api.context import AppContext
from task_queue_api.deps import KEY_SECURITY, CallerDep, ContextDep, OperatorDep, PrincipalDep
from task_queue_api.one_write import client_gone
from task_queue_api.schemas.base import UTCInstant, no_nul_in_url
from task_queue_api.schemas.errors import error_responses
from task_queue_api.schemas.tasks import (
    CompleteBatch,
    CompleteBatchResponse,
    CompleteOutcome,
    CompleteRequest,
    ErrorKind,
    ExtendRequest,
    FailRequest,
    LockedTaskPublic,
    LockRequest,
    LockResponse,
    Status,
    TaskCreate,
    TaskEventList,
    TaskEventPublic,
    TaskList,
    TaskPublic,
    TaskType,
    TaskTypeList,
    TaskTypeStats,
    TaskUpdate,
)

router = APIRouter(prefix="/api", tags=["tasks"], dependencies=[Depends(no_nul_in_url)])

ERRORS = error_responses(
    r401="Missing, unknown or revoked key",
    r403="Wrong role or task type",
    r404="No such task",
    r409="already_completed, lock_lost, task_locked, task_completed, not_retryable or idempotency_conflict",
    r413="data or result over the size limit",
    r422="Invalid request: validation_error (data_schema failures name the path), unknown_task_type, "
    "callback_not_allowed, invalid_data_schema",
    r503="Database unavailable",
)
ERRORS_412 = {**ERRORS, **error_responses(r412="The If-Match version is stale")}


def _visible_task(ctx: AppContext, principal: Principal, task_id: uuid.UUID) -> TaskRecord:
    task = ctx.tasks.get(task_id)
    principal.require_task_type(task.task_type)
    return task


def _check_lease(ctx: AppContext, lease_seconds: int | None) -> None:
    limit = ctx.settings.max_lease_seconds
    if lease_seconds is not None and lease_seconds > limit:
        raise ValidationFailed(f"lease_seconds may be at most {limit}.")


# --- the hot path: async handlers over ctx.hot (backoffice/queue/async_store.py) -------------
# On their own router, without the router's sync dependency (a worker-thread hop per request);
# each checks the URL for NULs itself. Answers are serialised once, by pydantic-core, and
# returned as a finished Response (FastAPI would otherwise validate and encode them again).
hot_router = APIRouter(prefix="/api", tags=["tasks"])


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def _hot(ctx: AppContext) -> HotPath:
    assert ctx.hot is not None, "the app's lifespan starts the hot path"
    return ctx.hot


@hot_router.post(
    "/tasks/lock",
    response_model=LockResponse,
    responses=ERRORS,
    operation_id="lock_tasks",
    openapi_extra=KEY_SECURITY,
)
async def lock_tasks(body: LockRequest, request: Request, caller: CallerDep) -> Response:
    """Get and lock the next tasks of a type (priority, then not_before/creation, then id).

    Each returned task carries a `lock_token`: pass it to complete, fail or extend. No task is
    handed to two lockers while a lock is valid; a lock that ran out makes the task available
    again (each lock counts an attempt). With `wait_seconds` the call waits for a task to
    arrive and returns as soon as one does; an empty `items` means none came. A caller that
    hangs up while waiting gets nothing locked for it.
    """
    no_nul_in_url(request)
    ctx, principal = caller.ctx, caller.principal
    principal.require_task_type(body.task_type)
    _check_lease(ctx, body.lease_seconds)
    assert ctx.listener is not None, "the app's lifespan starts the listener"
    tasks = await lock_or_wait(
        _hot(ctx),
        ctx.listener,
        client_gone(request),
        body.task_type,
        principal.name,
        body.limit,
        body.lease_seconds,
        body.wait_seconds,
    )
    return _json(LockResponse(items=[LockedTaskPublic.of(t) for t in tasks]))


@hot_router.post(
    "/tasks/complete",
    response_model=CompleteBatchResponse,
    responses=ERRORS,
    operation_id="complete_batch",
    openapi_extra=KEY_SECURITY,
)
async def complete_batch(body: CompleteBatch, request: Request, caller: CallerDep) -> Response:
    """Complete several held tasks at once; each item is judged on its own (`ok` or `error`)."""
    no_nul_in_url(request)
    ctx, principal = caller.ctx, caller.principal
    items = [(i.id, i.lock_token, i.result) for i in body.items]
    outcomes = await _hot(ctx).complete_many(items, principal.name, principal.task_types)
    results = [CompleteOutcome.model_validate(o, from_attributes=True) for o in outcomes]
    return _json(CompleteBatchResponse(results=results))


@hot_router.post(
    "/tasks/{task_id}/complete",
    response_model=TaskPublic,
    responses=ERRORS,
    operation_id="complete_task",
    openapi_extra=KEY_SECURITY,
)
async def complete_task(
    task_id: uuid.UUID, body: CompleteRequest, request: Request, caller: CallerDep
) -> Response:
    """Complete a held task with its result.

    409 `already_completed` says who completed it and when; 409 `lock_lost` means the token
    is no longer the task's (it says who holds the task now, or that nobody does): drop the
    work. A holder whose lock ran out may still complete as long as nobody re-locked the task,
    also on its last attempt, when the task is dead-lettered (`failed`) until an operator
    retries or deletes it.
    """
    no_nul_in_url(request)
    ctx, principal = caller.ctx, caller.principal
    # The consumer's task types are checked in the completing statement itself.
    hot = _hot(ctx)
    task = await hot.complete(task_id, body.lock_token, body.result, principal.name, principal.task_types)
    return _json(TaskPublic.of(task))


@hot_router.post(
    "/tasks/{task_id}/fail",
    response_model=TaskPublic,
    responses=ERRORS,
    operation_id="fail_task",
    openapi_extra=KEY_SECURITY,
)
async def fail_task(task_id: uuid.UUID, body: FailRequest, request: Request, caller: CallerDep) -> Response:
    """Give a held task back with an error: pending again after an exponential backoff (its base
    the type's `retry_backoff_seconds` when defined), or `failed` (dead letter) when `retry` is
    false or its attempts are used up. `error_kind` (execution, validation, timeout, system;
    default execution) becomes the task's `last_error_kind`. A dead letter's result callback is
    recorded with it."""
    no_nul_in_url(request)
    ctx, principal = caller.ctx, caller.principal
    task = await _hot(ctx).fail(
        task_id,
        body.lock_token,
        body.error,
        body.retry,
        body.error_kind,
        principal.name,
        principal.task_types,
    )
    return _json(TaskPublic.of(task))


@hot_router.post(
    "/tasks/{task_id}/extend",
    response_model=TaskPublic,
    responses=ERRORS,
    operation_id="extend_lock",
    openapi_extra=KEY_SECURITY,
)
async def extend_lock(
    task_id: uuid.UUID, body: ExtendRequest, request: Request, caller: CallerDep
) -> Response:
    """Keep a held lock alive: `locked_until` becomes now + `lease_seconds` (default: the lease a
    lock call gets, the type's `lease_seconds` or BACKOFFICE_LOCK_TIMEOUT_SECONDS)."""
    no_nul_in_url(request)
    ctx, principal = caller.ctx, caller.principal
    _check_lease(ctx, body.lease_seconds)
    task = await _hot(ctx).extend(
        task_id, body.lock_token, body.lease_seconds, principal.name, principal.task_types
    )
    return _json(TaskPublic.of(task))


@router.post(
    "/tasks", status_code=201, response_model=TaskPublic, responses=ERRORS, operation_id="create_task"
)
def create_task(body: TaskCreate, response: Response, ctx: ContextDep, operator: OperatorDep) -> TaskPublic:
    """Create a task (201). A repeated `idempotency_key` for the same type with JSON-equal `data`
    answers 200 with the existing task and creates nothing; with other `data` it is 409
    `idempotency_conflict`, naming the existing task (`task_id`).

    A type with a definition checks `data` against its `data_schema` (422 `validation_error`
    naming the failing path) and gives its `max_attempts` when the body has none. With
    BACKOFFICE_REQUIRE_TASK_TYPE_DEFINITIONS an undefined type is 422 `unknown_task_type`. A
    `callback_url` outside BACKOFFICE_CALLBACK_ALLOWED_HOSTS is 422 `callback_not_allowed`."""
    task, created = ctx.tasks.create(
        operator.name,
        body.task_type,
        body.data,
        body.priority,
        body.not_before,
        body.max_attempts,
        body.idempotency_key,
        body.callback_url,
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/tasks/{task.id}"
    return TaskPublic.of(task)


@router.get("/tasks", response_model=TaskList, responses=ERRORS, operation_id="list_tasks")
def list_tasks(
    ctx: ContextDep,
    principal: PrincipalDep,
    task_type: TaskType | None = None,
    status: Status | None = None,
    created_from: UTCInstant | None = None,
    created_to: UTCInstant | None = None,
    completed_from: UTCInstant | None = None,
    completed_to: UTCInstant | None = None,
    created_by: Annotated[str | None, Query(max_length=128)] = None,
    completed_by: Annotated[str | None, Query(max_length=128)] = None,
    error_kind: ErrorKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> TaskList:
    """Tasks newest first, filtered; follow `next_cursor` for the next page. Date bounds are
    `from` inclusive, `to` exclusive; `error_kind` filters by the kind of the last failure.
    Consumers see their own task types only."""
    if task_type is not None:
        principal.require_task_type(task_type)
    filters = TaskFilter(
        task_type,
        status,
        created_from,
        created_to,
        completed_from,
        completed_to,
        created_by,
        completed_by,
        principal.task_types,
        error_kind,
    )
    items, next_cursor = ctx.tasks.list_tasks(filters, limit, cursor)
    return TaskList(items=[TaskPublic.of(t) for t in items], next_cursor=next_cursor)


@router.get("/tasks/{task_id}", response_model=TaskPublic, responses=ERRORS, operation_id="get_task")
def get_task(task_id: uuid.UUID, ctx: ContextDep, principal: PrincipalDep) -> TaskPublic:
    """One task."""
    return TaskPublic.of(_visible_task(ctx, principal, task_id))


@router.patch("/tasks/{task_id}", response_model=TaskPublic, responses=ERRORS_412, operation_id="update_task")
def update_task(
    task_id: uuid.UUID,
    body: TaskUpdate,
    ctx: ContextDep,
    operator: OperatorDep,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> TaskPublic:
    """Change data, priority, not_before or max_attempts. `If-Match: <version>` makes the change
    conditional (412 when the task moved on). 409 while locked or once completed."""
    version = None
    if if_match is not None:
        raw = if_match.strip().removeprefix("W/").strip('"')
        if not raw.isdigit():
            raise ValidationFailed("If-Match must be the task's version number.")
        version = int(raw)
    changes = body.model_dump(exclude_unset=True)
    if "data" in changes and changes["data"] is None:
        raise ValidationFailed("data must be a JSON object.")
    # An explicit null would reach NOT NULL columns (500); only not_before may be cleared.
    nulls = [k for k in ("priority", "max_attempts") if k in changes and changes[k] is None]
    if nulls:
        raise ValidationFailed(f"{' and '.join(nulls)} may not be null; leave the field out to keep it.")
    return TaskPublic.of(ctx.tasks.update(task_id, operator.name, changes, version))


@router.delete(
    "/tasks/{task_id}", status_code=204, response_class=Response, responses=ERRORS, operation_id="delete_task"
)
def delete_task(task_id: uuid.UUID, ctx: ContextDep, operator: OperatorDep) -> Response:
    """Delete a task (its audit events stay). 409 `task_locked` while a worker holds it."""
    ctx.tasks.delete(task_id, operator.name)
    return Response(status_code=204)


@router.post("/tasks/{task_id}/retry", response_model=TaskPublic, responses=ERRORS, operation_id="retry_task")
def retry_task(task_id: uuid.UUID, ctx: ContextDep, operator: OperatorDep) -> TaskPublic:
    """Put a failed or expired task back to pending with its attempts reset (409 otherwise)."""
    return TaskPublic.of(ctx.tasks.retry(task_id, operator.name))


@router.get(
    "/tasks/{task_id}/events", response_model=TaskEventList, responses=ERRORS, operation_id="list_task_events"
)
def task_events(task_id: uuid.UUID, ctx: ContextDep, principal: PrincipalDep) -> TaskEventList:
    """A task's audit trail, oldest first; kept after the task is deleted."""
    if principal.task_types is not None:
        task = ctx.tasks.find(task_id)
        task_type = task.task_type if task else ctx.tasks.event_task_type(task_id)
        if task_type is not None:
            principal.require_task_type(task_type)
    events = ctx.tasks.events(task_id)
    if not events:
        ctx.tasks.get(task_id)  # 404 for an id that never existed
    return TaskEventList(items=[TaskEventPublic.of(e) for e in events])


@router.get("/task-types", response_model=TaskTypeList, responses=ERRORS, operation_id="list_task_types")
def task_types(ctx: ContextDep, principal: PrincipalDep) -> TaskTypeList:
    """Per task type: counts by status, when the oldest pending task was created, and the type's
    `definition` (null for a type without one). Defined types without tasks are listed too."""
    stats = {s.task_type: s for s in ctx.tasks.type_stats(principal.task_types)}
    definitions = {d.task_type: d for d in ctx.tasks.types.list(principal.task_types)}
    return TaskTypeList(
        items=[
            TaskTypeStats.of(stats.get(t) or TypeStats.empty(t), definitions.get(t))
            for t in sorted(stats.keys() | definitions.keys())
        ]
    )
