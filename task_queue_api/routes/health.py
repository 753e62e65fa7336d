"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from task_queue_api.deps import ContextDep

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process is up (says nothing about the database)."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "Database unreachable or not migrated"}}, operation_id="readyz"
)
def readyz(ctx: ContextDep) -> JSONResponse:
    """Ready to serve: the database answers and its schema is the newest migration."""
    problem = ctx.schema_problem()
    if problem is None:
        return JSONResponse({"status": "ready"})
    code, message = problem
    return JSONResponse({"error": code, "message": message}, 503, headers={"Retry-After": "5"})
