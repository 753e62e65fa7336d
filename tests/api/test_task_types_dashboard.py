"""The dashboard shows task-type definitions on the queue page, error kinds (with a filter),
undelivered callbacks, and a task's timing, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from backoffice.queue.callbacks import record_callback
from backoffice.queue.models import Task
from backoffice.settings import Settings
from tests.api.dashboard import signed_in
from tests.helpers import ADMIN, ADMIN_KEY, app_client


def test_queue_page_shows_definitions_and_undelivered_callbacks(
    make_settings: Callable[..., Settings], engine: Engine
) -> None:
    # Callbacks on, but the deliverer's first poll is an hour away: the delivery stays pending.
    settings = make_settings(
        callback_allowed_hosts="127.0.0.1", callback_secret="s", callback_poll_seconds=3600
    )
    with app_client(settings) as client:
        client.put(
            "/api/task-types/EshopExport", json={"max_attempts": 4, "retention_days": 7}, headers=ADMIN
        )
        task = client.post(
            "/api/tasks",
            json={"task_type": "EshopExport", "callback_url": "http://127.0.0.1/x"},
            headers=ADMIN,
        ).json()
        client.post("/api/tasks", json={"task_type": "Undefined"}, headers=ADMIN)
        with engine.begin() as conn:
            record_callback(conn, uuid.UUID(task["id"]), "task.completed")
        signed_in(client, ADMIN_KEY)
        page = client.get("/fragments/queue").text
    row = page.split('data-task-type="EshopExport"')[1].split("</tr>")[0]
    assert "4 attempts" in row and "kept 7 d" in row and "no schema" in row
    undefined = page.split('data-task-type="Undefined"')[1].split("</tr>")[0]
    assert 'data-label="Definition">—' in undefined
    assert "Result callbacks not delivered: 1 retrying, 0 given up." in page


def test_task_list_filters_by_error_kind_and_task_page_shows_kind_and_timing(
    client: TestClient, engine: Engine
) -> None:
    ids = [
        client.post("/api/tasks", json={"task_type": "EshopExport"}, headers=ADMIN).json()["id"]
        for _ in range(2)
    ]
    first = client.get(f"/api/tasks/{ids[0]}", headers=ADMIN).json()
    created = datetime.fromisoformat(first["created_at"])
    # What the queue stores (fail / a run-out lock, and the first lock), set here directly so the
    # waited time is a known one.
    with engine.begin() as conn:
        conn.execute(
            update(Task)
            .where(Task.id == uuid.UUID(ids[0]))
            .values(
                last_error_kind="timeout",
                last_error="The lock ran out.",
                first_locked_at=created + timedelta(seconds=125),
            )
        )
    signed_in(client, ADMIN_KEY)
    listed = client.get("/tasks", params={"error_kind": "timeout"}).text
    assert ids[0] in listed and ids[1] not in listed
    assert "The error kind must be one of" in client.get("/tasks", params={"error_kind": "bogus"}).text
    detail = client.get(f"/tasks/{ids[0]}").text
    assert '<small id="last-error-kind">(timeout)</small>' in detail
    assert '<dd id="task-timing">waited 2 min 5 s</dd>' in detail
