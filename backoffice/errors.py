"""Every error a user of the sidecar, the CLI or the flows can meet.

    BackofficeError               (500 internal_error)
    ├── ValidationFailed          422 validation_error, reserved_name, unknown_task_type,
    │                                 invalid_data_schema, callback_not_allowed,
    │                                 invalid_schedule
    ├── Unauthorized              401 unauthorized
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── Conflict                  409 <code>: already_completed, lock_lost, task_locked,
    │                                         task_completed, not_retryable, already_exists,
    │                                         idempotency_conflict
    ├── PreconditionFailed        412 precondition_failed
    ├── PayloadTooLarge           413 payload_too_large
    ├── TooManyAttempts           429 too_many_attempts (with Retry-After)
    ├── DatabaseUnavailable       503 database_unavailable (with Retry-After)
    └── PrefectUnavailable        503 prefect_unavailable

Each carries a stable `code` and a sentence that says what to do; the sidecar maps them to
`{"error": code, "message": sentence}` in one handler.
"""

from __future__ import annotations

from typing import Any


class BackofficeError(Exception):
    """Base of every error we raise on purpose."""

    status_code = 500
    code = "internal_error"
    # Seconds a client should wait before trying again (the Retry-After header), when it should.
    retry_after: int | None = None

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra


class ValidationFailed(BackofficeError):
    status_code = 422
    code = "validation_error"


class Unauthorized(BackofficeError):
    status_code = 401
    code = "unauthorized"


class Forbidden(BackofficeError):
    status_code = 403
    code = "forbidden"


class NotFound(BackofficeError):
    status_code = 404
    code = "not_found"


class Conflict(BackofficeError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(BackofficeError):
    status_code = 412
    code = "precondition_failed"


class PayloadTooLarge(BackofficeError):
    status_code = 413
    code = "payload_too_large"


class TooManyAttempts(BackofficeError):
    """Too many failed key checks from one client address; `retry_after` says for how long."""

    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(BackofficeError):
    status_code = 503
    code = "database_unavailable"
    retry_after = 5


class PrefectUnavailable(BackofficeError):
    status_code = 503
    code = "prefect_unavailable"
