"""Task-type definitions: optional per-type lease, attempts, backoff, data schema and retention.

The list of every type with its counts and definition is GET /api/task-types (routes/tasks.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from backoffice.errors import ValidationFailed
from backoffice.queue.records import TypeStats
from task_queue_api.deps import ContextDep, OperatorDep, PrincipalDep
from task_queue_api.schemas.base import no_nul_in_url
from task_queue_api.schemas.errors import error_responses
from task_queue_api.schemas.task_types import (
    TaskTypeCounts,
    TaskTypeDefinitionPublic,
    TaskTypeDefinitionPut,
    TaskTypeDetail,
)
from task_queue_api.schemas.tasks import TaskType

router = APIRouter(prefix="/api", tags=["task types"], dependencies=[Depends(no_nul_in_url)])

ERRORS = error_responses(
    r401="Missing, unknown or revoked key",
    r403="Wrong role or task type",
    r404="The type has no definition",
    r422="Invalid request, or data_schema is not a valid JSON Schema",
    r503="Database unavailable",
)


@router.put(
    "/task-types/{task_type}",
    response_model=TaskTypeDefinitionPublic,
    responses={**ERRORS, 201: {"model": TaskTypeDefinitionPublic, "description": "Defined now"}},
    operation_id="put_task_type",
)
def put_task_type(
    task_type: TaskType,
    body: TaskTypeDefinitionPut,
    response: Response,
    ctx: ContextDep,
    operator: OperatorDep,
) -> TaskTypeDefinitionPublic:
    """Define a task type, or replace its definition (201 when new, 200 when replaced).

    Every field is optional; a field left out means the global default. `data_schema` must be a
    valid JSON Schema (draft by `$schema`, 2020-12 by default; `$ref` stays inside the schema).
    Existing tasks are not re-checked; new creates and `data` changes are. Other sidecars see a
    change within BACKOFFICE_TASK_TYPE_CACHE_SECONDS."""
    limit = ctx.settings.max_lease_seconds
    if body.lease_seconds is not None and body.lease_seconds > limit:
        raise ValidationFailed(f"lease_seconds may be at most {limit}.")
    record, created = ctx.tasks.types.put(task_type, operator.name, body.model_dump())
    response.status_code = 201 if created else 200
    return TaskTypeDefinitionPublic.of(record)


@router.get(
    "/task-types/{task_type}", response_model=TaskTypeDetail, responses=ERRORS, operation_id="get_task_type"
)
def get_task_type(task_type: TaskType, ctx: ContextDep, principal: PrincipalDep) -> TaskTypeDetail:
    """A defined type: its definition and its tasks' counts by status (404 without a definition)."""
    principal.require_task_type(task_type)
    record = ctx.tasks.types.get(task_type)
    stats = ctx.tasks.type_stats(frozenset({task_type}))
    return TaskTypeDetail(
        task_type=task_type,
        definition=TaskTypeDefinitionPublic.of(record),
        counts=TaskTypeCounts.of(stats[0] if stats else TypeStats.empty(task_type)),
    )


@router.delete(
    "/task-types/{task_type}",
    status_code=204,
    response_class=Response,
    responses=ERRORS,
    operation_id="delete_task_type",
)
def delete_task_type(task_type: TaskType, ctx: ContextDep, operator: OperatorDep) -> Response:
    """Delete a type's definition (204); its tasks stay and the defaults apply again."""
    ctx.tasks.types.delete(task_type)
    return Response(status_code=204)
