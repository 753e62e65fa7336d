"""The queue's asyncio hot path answers as the sync store does (PostgreSQL's one-statement lock
and completion, SQLite's store in a thread), and the key cache never outlives a revocation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from backoffice.queue.keys import KeyStore
from backoffice.queue.models import Task
from backoffice.settings import Settings
from tests.helpers import ADMIN, app_client, assert_error, statements_on

TYPE = "EshopExport"
GENEROUS = 60.0  # seconds: a deadline for a gate, not a duration anything relies on


def run_out(engine: Engine, task_id: str) -> None:
    """Make the task's lease have run out a minute ago (instead of waiting for it)."""
    with engine.begin() as conn:
        conn.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task_id))
            .values(locked_until=datetime.now(UTC) - timedelta(minutes=1))
        )


def lock(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """One lock call for TYPE."""
    response = client.post("/api/tasks/lock", json={"task_type": TYPE}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def events(client: TestClient, task_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(event, actor, details) of the task, oldest first."""
    items = client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]
    return [(e["event"], e["actor"], e["details"]) for e in items]


def test_a_lock_sweeps_and_relocks_a_run_out_lease_in_one_call(
    client: TestClient, engine: Engine, worker: dict[str, str]
) -> None:
    """A run-out lock is swept and re-locked by the same lock call: the same versions, statuses
    and events on both databases; on the last attempt the task is dead-lettered instead, and the
    last holder may still complete it."""
    created = client.post("/api/tasks", json={"task_type": TYPE, "max_attempts": 2}, headers=ADMIN).json()
    task_id = created["id"]
    [first] = lock(client, worker)
    assert (first["attempts"], first["version"]) == (1, 2)
    run_out(engine, task_id)

    [second] = lock(client, worker)
    assert second["id"] == task_id and second["lock_token"] != first["lock_token"]
    # swept (version 3) and locked again (version 4) by one call
    assert (second["status"], second["attempts"], second["version"]) == ("locked", 2, 4)
    trail = events(client, task_id)
    assert [e[0] for e in trail] == ["created", "locked", "lock_expired", "locked"]
    assert trail[2][1:] == ("system", {"locked_by": "worker-1", "attempt": 1})
    assert trail[3][2] is not None and trail[3][2]["attempt"] == 2

    run_out(engine, task_id)
    assert lock(client, worker) == []  # its attempts are used up: dead letter, not claimable
    task = client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()
    assert (task["status"], task["version"]) == ("failed", 5)
    assert task["last_error"] == "The lock ran out 2 times (max_attempts 2)."
    assert [e[0] for e in events(client, task_id)][-2:] == ["lock_expired", "failed"]

    done = client.post(
        f"/api/tasks/{task_id}/complete",
        json={"lock_token": second["lock_token"], "result": {}},
        headers=worker,
    )
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["version"]) == ("completed", 6)
    again = client.post(
        f"/api/tasks/{task_id}/complete",
        json={"lock_token": second["lock_token"], "result": {}},
        headers=worker,
    )
    assert_error(again, 409, "already_completed")


def test_a_lock_call_returns_tasks_in_claim_order(client: TestClient, worker: dict[str, str]) -> None:
    """limit > 1: priority first, then availability; the answer is in that order."""
    ids = [
        client.post("/api/tasks", json={"task_type": TYPE, "priority": p}, headers=ADMIN).json()["id"]
        for p in (5, 1, 3)
    ]
    response = client.post("/api/tasks/lock", json={"task_type": TYPE, "limit": 3}, headers=worker)
    assert [t["id"] for t in response.json()["items"]] == [ids[1], ids[2], ids[0]]


def test_a_key_is_looked_up_once_per_cache_window(engine: Engine) -> None:
    """Within cache_seconds a live key is answered from memory; revoking it here ends it at once."""
    keys = KeyStore(engine, cache_seconds=1.0)
    _, plaintext = keys.create("cached", "consumer", [TYPE], "admin")
    assert keys.authenticate(plaintext) is not None
    with statements_on(engine) as statements:
        principal = keys.authenticate(plaintext)
    assert principal is not None and principal.name == "cached" and statements == []
    keys.revoke("cached")
    assert keys.authenticate(plaintext) is None


def test_a_revoked_key_stops_working_on_another_sidecar(
    settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    """Two sidecars on one database; a key used on both (so cached on both) is revoked through
    one: refused there at once, and on the other within its cache window (gated, not timed)."""
    with app_client(settings) as first, app_client(make_settings()) as second:
        made = first.post(
            "/api/keys", json={"name": "leaving", "role": "consumer", "task_types": [TYPE]}, headers=ADMIN
        )
        headers = {"x-functions-key": made.json()["key"]}
        for client in (first, second):
            assert (
                client.post("/api/tasks/lock", json={"task_type": TYPE}, headers=headers).status_code == 200
            )
        assert first.delete("/api/keys/leaving", headers=ADMIN).status_code == 204
        assert_error(
            first.post("/api/tasks/lock", json={"task_type": TYPE}, headers=headers), 401, "unauthorized"
        )
        deadline = time.monotonic() + GENEROUS
        while (
            answer := second.post("/api/tasks/lock", json={"task_type": TYPE}, headers=headers)
        ).status_code != 401:
            assert answer.status_code == 200, answer.text
            assert time.monotonic() < deadline, "the revoked key still works on the other sidecar"
            time.sleep(0.05)
        assert_error(answer, 401, "unauthorized")
