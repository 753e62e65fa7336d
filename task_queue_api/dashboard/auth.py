"""The dashboard's dependencies: the signed-in session, and the CSRF check of state changes.

A missing, forged, ended or expired session cookie is no session: pages redirect to /signin,
polled fragments get 401, and a caller that asks for JSON gets the 401 error body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import HTMLResponse, RedirectResponse, Response

from task_queue_api.dashboard.sessions import SESSION_COOKIE, Session, SessionSigner, load_secret
from task_queue_api.dashboard.views import error_page
from task_queue_api.deps import ContextDep
from task_queue_api.errors import error_body

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Sent by dashboard.js when it polls a fragment: answer 401 instead of redirecting to sign-in.
FRAGMENT_HEADER = "x-fragment"


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class CsrfRejected(Exception):
    """A state-changing request without the right CSRF token."""


def get_signer(request: Request) -> SessionSigner:
    """The app's signer, built on first use (that is when `.data/session_secret` may be created)."""
    signer: SessionSigner | None = getattr(request.app.state, "dashboard_signer", None)
    if signer is None:
        signer = SessionSigner(load_secret(request.app.state.ctx.settings))
        request.app.state.dashboard_signer = signer
    return signer


SignerDep = Annotated[SessionSigner, Depends(get_signer)]


def get_session(request: Request, ctx: ContextDep, signer: SignerDep) -> Session:
    """The signed-in operator; SignInRequired when the cookie is missing, forged, ended or revoked."""
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = ctx.keys.sessions.find(cookie) if cookie else None
    # The role is read afresh: a key demoted since sign-in loses the dashboard at once.
    if cookie is None or principal is None or principal.role == "consumer":
        raise SignInRequired
    session = Session(principal, cookie)
    request.state.dashboard_session = session
    request.state.principal = principal
    request.state.csrf_token = signer.csrf_token(cookie)
    return session


SessionDep = Annotated[Session, Depends(get_session)]


async def checked_session(request: Request, session: SessionDep, signer: SignerDep) -> Session:
    """The session of a state-changing request whose CSRF token matches; CsrfRejected otherwise."""
    form = await request.form()
    token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not isinstance(token, str) or not signer.check_csrf(session.cookie, token):
        raise CsrfRejected
    return session


CheckedSessionDep = Annotated[Session, Depends(checked_session)]


def install_auth_handlers(app: FastAPI) -> None:
    """Turn SignInRequired into a redirect (401 for polled fragments and JSON callers), CsrfRejected
    into a 403 page (TooManyAttempts is the API's one error handler's: a 429 with Retry-After)."""

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        if request.headers.get(FRAGMENT_HEADER):
            return HTMLResponse("<p>Signed out.</p>", status_code=401)
        if "application/json" in request.headers.get("accept", ""):
            message = "There is no dashboard session (signed out, expired or revoked); sign in at /signin."
            return JSONResponse(error_body("unauthorized", message), status_code=401)
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _: CsrfRejected) -> Response:
        return error_page(
            request,
            403,
            "csrf_failed",
            "The form's security token is missing or does not match your session; "
            "reload the page and try again.",
        )
