"""The queue's hot routes dispatched without FastAPI's per-request machinery.

FastAPI spends about a third of a lock or complete call's CPU (measured with py-spy: routing,
dependency solving, JSON decoding then validation, its exception and exit-stack layers) on work these five
routes (`routes/tasks.py`, `hot_router`) do not need once the request is known to be well formed.
`HotLane`, an ASGI middleware in front of the whole stack (`SidecarApp`), takes a request to one
of them the short way: the edge's checks done here first (the body within the size limit by its
Content-Length, the function key, edge.py), the body validated straight from its JSON bytes, the
route's own endpoint called, its errors answered by the app's own exception handlers, the request
timed as the request timer would (metrics.py). Each middleware layer it skips (Starlette's server
error and exception layers, FastAPI's telemetry, the timer, the edge) costs a call frame and a
wrapped `send` per request.

Anything else goes to the stack as before, with the body it already read: a refused or missing
key (its outcome is kept for the edge, which does not check it again), a chunked or too large
body, a body that is not `application/json` or does not validate, a path parameter that is not a
UUID, a database not migrated yet. Those answers (401, 413, 422, 503...) are then FastAPI's,
exactly as without the lane; the lane only ever answers a request FastAPI would have accepted.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from backoffice.principals import Principal
from task_queue_api.context import AppContext
from task_queue_api.deps import Caller
from task_queue_api.edge import KEY_CHECK, check_key

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    route: APIRoute
    body: type[BaseModel]
    params: dict[str, TypeAdapter[Any]]  # path parameters and their types


class HotLane:
    """ASGI middleware: POSTs to the given routes, when well formed, straight to their endpoints."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, routes: list[APIRoute], max_body_bytes: int) -> None:
        self.app = app
        self.fastapi = fastapi
        self.routes = [_describe(route) for route in routes]
        self.max_body_bytes = max_body_bytes
        self._timers: dict[tuple[str, int], Any] = {}  # (route, status): its histogram child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = self._match(scope["path"])
        ctx: AppContext | None = getattr(self.fastapi.state, "ctx", None)
        if found is None or ctx is None or not ctx.migrated:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > self.max_body_bytes or "transfer-encoding" in headers:
            await self.app(scope, receive, send)  # the edge's size limit judges it
            return
        checked = scope.setdefault("state", {})[KEY_CHECK] = await check_key(scope, headers)
        if not isinstance(checked, Principal):
            await self.app(scope, receive, send)
            return
        hot, path_params = found
        request = Request(scope, receive)
        try:
            raw = await request.body()
        except ClientDisconnect:
            return  # the client went away: nobody to answer
        arguments = _arguments(hot, request, raw, path_params)
        if arguments is None:
            await self.app(scope, _replay(raw, receive), send)
            return
        scope["route"] = hot.route
        request.state.principal = checked
        started, status = time.perf_counter(), 500
        try:
            try:
                response = await hot.route.endpoint(caller=Caller(ctx, checked), **arguments)
            except Exception as exc:
                handler = self._handler(exc)
                if handler is None:
                    raise
                answer = handler(request, exc)  # the app's handlers are coroutines
                response = await answer if inspect.isawaitable(answer) else answer
            status = response.status_code
            await response(scope, receive, send)
        finally:
            self._timer(hot.route.path, status).observe(time.perf_counter() - started)

    def _timer(self, route: str, status: int) -> Any:
        timer = self._timers.get((route, status))
        if timer is None:
            histogram = self.fastapi.state.request_histogram
            timer = self._timers[(route, status)] = histogram.labels("POST", route, str(status))
        return timer

    def _match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        for hot in self.routes:
            match = hot.route.path_regex.match(path)
            if match:
                return hot, match.groupdict()
        return None

    def _handler(self, exc: Exception) -> Handler | None:
        # As Starlette's ExceptionMiddleware: the handler of the nearest class in the MRO.
        handlers: dict[Any, Handler] = self.fastapi.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


def _describe(route: APIRoute) -> _Route:
    hints = get_type_hints(route.endpoint)
    names = set(inspect.signature(route.endpoint).parameters)
    assert {"body", "request", "caller"} <= names, f"{route.path}: not a hot route's signature"
    params = {name: TypeAdapter(hints[name]) for name in re.findall(r"\{(\w+)\}", route.path)}
    return _Route(route, hints["body"], params)


def _arguments(
    hot: _Route, request: Request, raw: bytes, path_params: dict[str, str]
) -> dict[str, Any] | None:
    """The endpoint's arguments, or None when FastAPI should judge the request."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json" or not raw:
        return None
    try:
        arguments: dict[str, Any] = {
            name: adapter.validate_python(path_params[name]) for name, adapter in hot.params.items()
        }
        arguments["body"] = hot.body.model_validate_json(raw)
    except ValidationError:
        return None
    arguments["request"] = request
    return arguments


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then whatever the client sends next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def install_hot_lane(app: FastAPI, routes: list[APIRoute], max_body_bytes: int) -> None:
    """Serve `routes` (POST, `body`/`request`/`caller` endpoints) through the lane, which
    `SidecarApp` puts in front of the middleware stack."""
    app.add_middleware(HotLane, fastapi=app, routes=routes, max_body_bytes=max_body_bytes)


# Middleware that `SidecarApp` runs in front of Starlette's own layers, in this order.
OUTERMOST: tuple[object, ...] = (ProxyHeadersMiddleware, HotLane)


class SidecarApp(FastAPI):
    """FastAPI with the hot lane (and the proxy headers, which it needs for the client's address)
    in front of the whole middleware stack: Starlette puts its server-error layer (and FastAPI its
    telemetry layer) outside every added middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        everything = self.user_middleware
        outer = [m for m in everything if m.cls in OUTERMOST]
        self.user_middleware = [m for m in everything if m.cls not in OUTERMOST]
        try:
            app = super().build_middleware_stack()
        finally:
            self.user_middleware = everything
        for cls, args, kwargs in reversed(outer):  # the first listed is the outermost
            app = cls(app, *args, **kwargs)
        return app
