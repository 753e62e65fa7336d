"""The sidecar's edge: what every request passes before any route reads its body.

FastAPI reads a body before the route's dependencies run, so a keyless caller could make the
sidecar read (and hold) any body it liked. `EdgeGuard`, a pure ASGI middleware, runs before any
route (the hot lane, in front of it, makes the same two checks for its routes; hot_lane.py):

1. A body larger than `BACKOFFICE_MAX_REQUEST_BYTES` gets 413 `payload_too_large`: at once when
   its Content-Length says so, else (chunked) as soon as the bytes streamed in pass the limit;
   then the connection is closed, so the rest is never read. Every path, `/signin` included.
2. On `/api/` paths the function key is checked before the body is read (the failed-attempt
   throttle counts and refuses here too). The outcome waits in the request state for
   `deps.get_principal`: a principal is used as is (one lookup per request); a refusal (401,
   429, a database that cannot answer) is raised there, so the route answers it through the
   usual handlers and metrics, with an empty body in place of the client's, which stays unread.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backoffice.errors import BackofficeError, PayloadTooLarge, Unauthorized
from backoffice.principals import Principal
from task_queue_api.context import AppContext
from task_queue_api.errors import error_body
from task_queue_api.throttle import client_address

# The request-state name of the key check's outcome: a Principal, or the error to raise.
KEY_CHECK = "edge_key_check"
API_PREFIX = "/api/"
MISSING_KEY = "Send a function key in the x-functions-key header or the code parameter."
UNKNOWN_KEY = "The function key is unknown or revoked."


class EdgeGuard:
    """ASGI middleware: body size limit on every path, function key first on `/api/` paths."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        if scope["path"].startswith(API_PREFIX):
            state = scope.setdefault("state", {})
            outcome = state.get(KEY_CHECK)  # the hot lane, in front, may have checked it
            if outcome is None:
                outcome = state[KEY_CHECK] = await check_key(scope, headers)
            if not isinstance(outcome, Principal):
                has_body = (declared.isdigit() and int(declared) > 0) or "transfer-encoding" in headers
                await self.app(scope, _empty_body(), _closing(send) if has_body else send)
                return
        if declared.isdigit() and "transfer-encoding" not in headers:
            # Within the limit (checked above), and HTTP/1.1 framing (uvicorn's parsers) gives the
            # app no more body than the Content-Length says: nothing to count.
            await self.app(scope, receive, send)
            return
        await self._limited(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"The request body is larger than {self.max_body_bytes} bytes; send a smaller one "
            "(the limit is BACKOFFICE_MAX_REQUEST_BYTES)."
        )
        # Closing the connection is what keeps the rest of the body unread.
        response = JSONResponse(error_body(error.code, error.message), 413, headers={"connection": "close"})
        await response(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, counting the body as it streams in; past the limit, answer 413 instead."""
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not started:
                        await self._too_large(scope, receive, send)
                    refused = True
                    # The app sees a client that went away and stops reading.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out instead of whatever the app answers now
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed on the body we cut off; the client already has its 413.


async def check_key(scope: Scope, headers: Headers) -> Principal | Exception:
    """The principal behind the request's key, or the error that refuses it: on the event loop
    when the key is in the key cache (no I/O then), else read in a thread."""
    key = headers.get("x-functions-key") or QueryParams(scope.get("query_string", b"")).get("code")
    request = Request(scope)
    ctx: AppContext = request.app.state.ctx
    if key and ctx.migrated and ctx.keys.cached(key) is not None:
        return authenticate_key(request, key)
    return await anyio.to_thread.run_sync(authenticate_key, request, key)


def authenticate_key(request: Request, key: str | None) -> Principal | Exception:
    """The caller behind `key`, or the error that refuses it: 401 (missing, unknown), 429 (the
    address is throttled) or a database that cannot answer (its handlers say 503). Blocking."""
    if not key:
        return Unauthorized(MISSING_KEY)
    ctx: AppContext = request.app.state.ctx
    address = client_address(request)
    try:
        ctx.throttle.check(address)
        ctx.ensure_migrated()
        principal = ctx.keys.authenticate(key)
    except (BackofficeError, SQLAlchemyError) as exc:
        return exc
    if principal is None:
        ctx.throttle.failed(address)
        return Unauthorized(UNKNOWN_KEY)
    return principal


def _empty_body() -> Receive:
    """A receive that gives the app an empty body, then a disconnect: the client's body stays unread."""
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


def _closing(send: Send) -> Send:
    """`send` with `connection: close` on the response, so the unread body is dropped with it."""

    async def closing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["connection"] = "close"
        await send(message)

    return closing_send


def install_edge(app: FastAPI, max_body_bytes: int) -> None:
    """Guard every request of `app`; install before the request timer so refusals are timed too."""
    app.add_middleware(EdgeGuard, max_body_bytes=max_body_bytes)
