"""Leases: a lock that runs out makes its task available again, and fencing keeps the stale
holder from completing a task somebody re-locked. Leases are 1 s; the tests wait for the
task to read `expired` rather than sleeping a fixed time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from backoffice.settings import Settings
from tests.helpers import ADMIN
from tests.integration.queue_checks import ROOT, consumer_key
from tests.sidecar import Sidecar

TYPE = "EshopExport"


def create_task(client: Any, **fields: Any) -> str:
    """Create a task of TYPE as the bootstrap admin; its id."""
    response = client.post("/api/tasks", json={"task_type": TYPE, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


def lock(client: Any, lease: int = 1) -> list[dict[str, Any]]:
    """Lock one task of TYPE with a short lease."""
    response = client.post("/api/tasks/lock", json={"task_type": TYPE, "lease_seconds": lease}, headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_until_expired(client: Any, task_id: str, timeout: float = 30, dead: bool = False) -> None:
    """Poll until the task reads `expired` (its lease ran out); with `dead` (its last attempt)
    also `failed`, in case the sidecar's sweep timer dead-lettered it already."""
    deadline = time.monotonic() + timeout
    statuses = ("expired", "failed") if dead else ("expired",)
    while client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()["status"] not in statuses:
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.1)


def events(client: Any, task_id: str) -> list[str]:
    """The task's event names, oldest first."""
    return [e["event"] for e in client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]]


def complete(client: Any, task_id: str, token: str) -> Any:
    """POST a completion with `token`."""
    return client.post(
        f"/api/tasks/{task_id}/complete", json={"lock_token": token, "result": {"ok": True}}, headers=ADMIN
    )


def test_expired_lock_is_fenced(client: TestClient) -> None:
    """Expire, re-lock (token B): completing with A is 409 lock_lost, with B 200; attempts 2."""
    task_id = create_task(client)
    [first] = lock(client)
    token_a = first["lock_token"]
    wait_until_expired(client, task_id)

    [second] = lock(client)
    token_b = second["lock_token"]
    assert second["id"] == task_id and token_b != token_a and second["attempts"] == 2

    stale = complete(client, task_id, token_a)
    assert stale.status_code == 409 and stale.json()["error"] == "lock_lost"
    done = complete(client, task_id, token_b)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["attempts"] == 2
    again = complete(client, task_id, token_a)
    assert again.status_code == 409 and again.json()["error"] == "already_completed"
    assert events(client, task_id) == ["created", "locked", "lock_expired", "locked", "completed"]


def test_expired_holder_may_complete_until_relocked(client: TestClient) -> None:
    """A holder whose lease ran out still completes while nobody has re-locked the task."""
    task_id = create_task(client)
    [held] = lock(client)
    wait_until_expired(client, task_id)
    done = complete(client, task_id, held["lock_token"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["attempts"] == 1
    assert lock(client) == []


def test_task_expiring_max_attempts_times_fails(client: TestClient) -> None:
    """A task whose lock runs out max_attempts times ends `failed` (dead letter)."""
    task_id = create_task(client, max_attempts=3)
    for attempt in (1, 2, 3):
        [held] = lock(client)
        assert held["id"] == task_id and held["attempts"] == attempt
        wait_until_expired(client, task_id, dead=attempt == 3)

    assert lock(client) == []  # this call (or the timer) sweeps the third run-out lock: no attempts left
    task = client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()
    assert task["status"] == "failed" and task["attempts"] == 3
    assert "lock_token" not in task  # never shown to readers
    assert "3 times" in task["last_error"]
    assert events(client, task_id) == [
        "created",
        *["locked", "lock_expired"] * 3,
        "failed",
    ]
    # The dead letter is not claimable until an operator retries it.
    assert lock(client) == []
    retried = client.post(f"/api/tasks/{task_id}/retry", headers=ADMIN)
    assert retried.status_code == 200 and retried.json()["attempts"] == 0
    [again] = lock(client)
    assert again["id"] == task_id and again["attempts"] == 1


@pytest.mark.slow
def test_killed_worker_lock_comes_back_after_the_lease(settings: Settings, tmp_path: Path) -> None:
    """A worker process SIGKILLed while holding a lock: the task is locked again once the
    lease ran out, never before, and the dead worker's token is fenced off."""
    with Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar:
        key = consumer_key(sidecar.url, "worker", TYPE)
        with httpx.Client(base_url=sidecar.url, timeout=30) as client:
            task_id = create_task(client)
            hold = ["hold", sidecar.url, key, TYPE, "2"]
            worker = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.queue_workers", *hold],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            try:
                assert worker.stdout is not None
                held = json.loads(worker.stdout.readline())
            finally:
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
            assert worker.returncode == -signal.SIGKILL
            assert held["id"] == task_id
            locked_until = client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()["locked_until"]

            deadline = time.monotonic() + 30
            while not (items := lock(client)):
                assert time.monotonic() < deadline, "the dead worker's task never came back"
                time.sleep(0.2)
            [again] = items
            assert again["id"] == task_id and again["attempts"] == 2
            assert again["lock_token"] != held["lock_token"]
            # Handed out again only once the dead worker's lease had run out.
            assert datetime.fromisoformat(again["lock_date"]) >= datetime.fromisoformat(locked_until)
            assert complete(client, task_id, held["lock_token"]).json()["error"] == "lock_lost"
            assert complete(client, task_id, again["lock_token"]).status_code == 200
            assert events(client, task_id) == ["created", "locked", "lock_expired", "locked", "completed"]
