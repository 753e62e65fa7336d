"""The overview page (`/`) and the fragments its sections poll: health, jobs, queue numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response

from backoffice.jobs.catalog import load_catalog
from task_queue_api.context import AppContext
from task_queue_api.dashboard import jobs_view
from task_queue_api.dashboard.auth import SessionDep
from task_queue_api.dashboard.health import all_checks
from task_queue_api.dashboard.views import render
from task_queue_api.deps import ContextDep

router = APIRouter(include_in_schema=False)


def _queue(ctx: AppContext) -> dict[str, Any]:
    definitions = {d.task_type: d for d in ctx.tasks.types.list()}
    undelivered = ctx.callbacks.undelivered() if ctx.callbacks is not None else {}
    return {
        "stats": ctx.tasks.type_stats(),
        "now": datetime.now(UTC),
        "definitions": definitions,
        "undelivered": undelivered,
    }


async def _health(ctx: AppContext) -> dict[str, Any]:
    return {"checks": await all_checks(ctx, load_catalog().ids)}


@router.get("/")
async def overview(request: Request, ctx: ContextDep, _: SessionDep) -> Response:
    """Health, jobs and the task queue on one page; the sections refresh themselves."""
    context: dict[str, Any] = await anyio.to_thread.run_sync(_queue, ctx)
    context.update(await _health(ctx))
    context.update(await jobs_view.jobs_context(ctx))
    context["done"] = jobs_view.done_message(request)
    return render(request, "index.html", **context)


@router.get("/fragments/queue")
async def queue_fragment(request: Request, ctx: ContextDep, _: SessionDep) -> Response:
    """The per-type counts table."""
    return render(request, "fragments/queue.html", **await anyio.to_thread.run_sync(_queue, ctx))


@router.get("/fragments/health")
async def health_fragment(request: Request, ctx: ContextDep, _: SessionDep) -> Response:
    """The health lights."""
    return render(request, "fragments/health.html", **await _health(ctx))


@router.get("/fragments/jobs")
async def jobs_fragment(request: Request, ctx: ContextDep, _: SessionDep) -> Response:
    """The jobs table."""
    return render(request, "fragments/jobs.html", **await jobs_view.jobs_context(ctx))
