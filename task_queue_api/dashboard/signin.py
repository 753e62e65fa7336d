"""Sign-in with a function key (operator or admin) and sign-out.

Wrong keys count against the client address like the API's (`task_queue_api.throttle`); sign-out
deletes the session on the server, not just the cookie.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from backoffice.errors import TooManyAttempts
from backoffice.principals import Principal
from backoffice.queue.keys import hash_key
from task_queue_api.dashboard.auth import CSRF_FIELD, CheckedSessionDep, SignerDep
from task_queue_api.dashboard.sessions import SESSION_COOKIE, SESSION_SECONDS, SIGNIN_COOKIE
from task_queue_api.dashboard.views import render
from task_queue_api.deps import ContextDep
from task_queue_api.throttle import client_address

router = APIRouter(include_in_schema=False)

SIGNIN_SECONDS = 3600


def _signin_page(
    request: Request, signer: SignerDep, status_code: int = 200, error: str | None = None
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        status_code,
        error=error,
        csrf_token=signer.csrf_token("signin:" + nonce),
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=SIGNIN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/signin")
def signin_form(request: Request, signer: SignerDep) -> Response:
    """The sign-in form."""
    return _signin_page(request, signer)


@router.post("/signin")
def signin(
    request: Request,
    ctx: ContextDep,
    signer: SignerDep,
    key: Annotated[str, Form(max_length=512)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
) -> Response:
    """Check the key like the API does; an operator or admin gets a session cookie."""
    nonce = request.cookies.get(SIGNIN_COOKIE)
    if not signer.check_csrf("signin:" + nonce if nonce else None, csrf_token):
        return _signin_page(request, signer, 403, "The sign-in form expired; enter the key again.")
    throttle, address = ctx.throttle, client_address(request)
    try:
        throttle.check(address)
    except TooManyAttempts as exc:
        page = _signin_page(request, signer, 429, exc.message)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    principal: Principal | None = ctx.keys.authenticate(key) if key else None
    if principal is None:
        if key:
            throttle.failed(address)
        return _signin_page(request, signer, 401, "The function key is unknown or revoked.")
    if principal.role == "consumer":
        return _signin_page(
            request, signer, 403, f"Key '{principal.name}' is a consumer key; sign in with an operator key."
        )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        ctx.keys.sessions.start(principal.name, hash_key(key), SESSION_SECONDS),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(SIGNIN_COOKIE)
    return response


@router.post("/signout")
def signout(request: Request, ctx: ContextDep, session: CheckedSessionDep) -> Response:
    """End the session on the server (a copy of the cookie stops working too) and drop the cookie."""
    ctx.keys.sessions.end(session.cookie)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response
