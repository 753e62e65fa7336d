"""Dependencies of the routes: the app context and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery

from backoffice.principals import Principal
from task_queue_api.context import AppContext
from task_queue_api.edge import KEY_CHECK, authenticate_key

# Declared as security schemes so /docs offers both ways of sending a key.
_header_key = APIKeyHeader(name="x-functions-key", auto_error=False, description="Function key")
_query_key = APIKeyQuery(name="code", auto_error=False, description="Function key (query)")


async def get_context(request: Request) -> AppContext:
    """The process's AppContext; 503 while the database is not migrated."""
    # async, like get_principal: a sync dependency costs every request a worker-thread hop.
    ctx: AppContext = request.app.state.ctx
    if not ctx.migrated:
        await anyio.to_thread.run_sync(ctx.ensure_migrated)
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_principal(
    request: Request,
    ctx: ContextDep,
    header_key: Annotated[str | None, Depends(_header_key)],
    query_key: Annotated[str | None, Depends(_query_key)],
) -> Principal:
    """The caller behind `x-functions-key` (wins) or `?code=`; 401 when missing or unknown,
    429 after too many unknown keys from the caller's address."""
    return await _principal(request, header_key or query_key)


async def _principal(request: Request, key: str | None) -> Principal:
    # The edge (edge.py) checked the key of an /api/ call before its body was read: its outcome
    # stands; any other caller is checked the same way here.
    checked: Principal | Exception | None = getattr(request.state, KEY_CHECK, None)
    if checked is None:
        checked = await anyio.to_thread.run_sync(authenticate_key, request, key)
    if isinstance(checked, Exception):
        raise checked
    request.state.principal = checked
    return checked


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class Caller:
    """The app context and the authenticated caller."""

    ctx: AppContext
    principal: Principal


async def get_caller(request: Request) -> Caller:
    """ContextDep and PrincipalDep as one dependency without sub-dependencies, for the queue's
    hot routes: FastAPI solves each (sub-)dependency anew per request, and the six of the two
    cost a lock call about a fifth of the sidecar's time (measured). Refuses as they do. (Well-
    formed hot calls skip FastAPI's dispatch altogether: hot_lane.py.)"""
    ctx = await get_context(request)
    key = request.headers.get("x-functions-key") or request.query_params.get("code")
    return Caller(ctx, await _principal(request, key))


CallerDep = Annotated[Caller, Depends(get_caller)]
# What PrincipalDep's key schemes put in an operation's OpenAPI: the hot routes, whose one
# dependency declares no scheme, state it themselves (`openapi_extra`).
KEY_SECURITY: dict[str, Any] = {"security": [{"APIKeyHeader": []}, {"APIKeyQuery": []}]}


def require_operator(principal: PrincipalDep) -> Principal:
    """The caller, who must be an operator or admin."""
    principal.require_role("operator")
    return principal


def require_admin(principal: PrincipalDep) -> Principal:
    """The caller, who must be an admin."""
    principal.require_role("admin")
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]
AdminDep = Annotated[Principal, Depends(require_admin)]
