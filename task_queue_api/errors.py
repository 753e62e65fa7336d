"""One place that turns errors into `{"error": code, "message": sentence}` responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from backoffice.errors import BackofficeError

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    """The JSON body of every error response."""
    return {"error": code, "message": message, **extra}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "The request is invalid: " + "; ".join(parts) + "."


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; nothing a client sends can produce a 500."""

    @app.exception_handler(BackofficeError)
    async def _backoffice(_: Request, exc: BackofficeError) -> JSONResponse:
        retry_after = exc.retry_after or (DATABASE_RETRY_AFTER_SECONDS if exc.status_code == 503 else None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.extra),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("validation_error", _describe_validation(exc)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            error_body(
                "database_unavailable",
                "The database cannot be reached right now; retry after a few seconds.",
            ),
            503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )

    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(PoolTimeout, _database)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _database(request, exc)
        raise exc
