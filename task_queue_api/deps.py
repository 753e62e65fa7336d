"""Dependencies of the routes: the app context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

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
    # The edge (edge.py) checked the key of an /api/ call before its body was read: its outcome
    # stands; any other caller is checked the same way here.
    checked: Principal | Exception | None = getattr(request.state, KEY_CHECK, None)
    if checked is None:
        checked = await anyio.to_thread.run_sync(authenticate_key, request, header_key or query_key)
    if isinstance(checked, Exception):
        raise checked
    request.state.principal = checked
    return checked


PrincipalDep = Annotated[Principal, Depends(get_principal)]


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
