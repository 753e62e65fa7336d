"""Helpers the tests share: the bootstrap admin key and its header, API error checks, the app client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from backoffice.settings import Settings
from task_queue_api.main import create_app

ADMIN_KEY = "test-admin-key"  # the bootstrap admin key of the test settings


def auth(key: str) -> dict[str, str]:
    """The header that presents `key` to the sidecar."""
    return {"x-functions-key": key}


ADMIN = auth(ADMIN_KEY)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert an error answer: `status`, this error `code` and a non-empty message; return its body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


def app_client(settings: Settings) -> TestClient:
    """A test client of the sidecar app on `settings`; `with app_client(...) as c` runs its lifespan."""
    return TestClient(create_app(settings))


@contextmanager
def statements_on(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement `engine` sends while the block runs, in order."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
