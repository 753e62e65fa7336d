"""The queue's promises, on SQLite and PostgreSQL: a holder whose lock ran out may complete until
somebody else gets the task (also on its last attempt, after the dead letter); run-out locks are
swept on a timer for every type; an idempotency key replayed with other data is refused.
Leases are 1 s; the tests poll the database for the state they wait for, never sleep a fixed time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from backoffice.queue.models import TaskEvent
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings
from tests.helpers import ADMIN, app_client, assert_error

TYPE = "EshopExport"
SWEEPER_THREAD = "task-lock-sweeper"


def create(client: TestClient, task_type: str = TYPE, **fields: Any) -> dict[str, Any]:
    """Create a task as the bootstrap admin; the task."""
    response = client.post("/api/tasks", json={"task_type": task_type, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


def lock(client: TestClient, task_type: str = TYPE) -> list[dict[str, Any]]:
    """Lock one task of `task_type` with a 1 s lease (the call also sweeps that type)."""
    body = {"task_type": task_type, "lease_seconds": 1}
    response = client.post("/api/tasks/lock", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def task(client: TestClient, task_id: str) -> dict[str, Any]:
    """The task as an operator reads it."""
    return dict(client.get(f"/api/tasks/{task_id}", headers=ADMIN).json())


def events(client: TestClient, task_id: str) -> list[str]:
    """The task's event names, oldest first."""
    return [e["event"] for e in client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def run_out(client: TestClient, task_id: str) -> None:
    """Wait until the task's lock ran out (reads `expired`, or `failed` once swept on its last attempt)."""
    wait_for("the lease ran out", lambda: task(client, task_id)["status"] in ("expired", "failed"))


def dead_letter_by_the_sweep(client: TestClient) -> dict[str, Any]:
    """A task (max_attempts 1) whose only lock ran out and was swept into `failed`; its lock."""
    created = create(client, max_attempts=1)
    [held] = lock(client)
    run_out(client, created["id"])
    assert lock(client) == []  # sweeps the run-out lock: no attempts left, so a dead letter
    assert task(client, created["id"])["status"] == "failed"
    return held


def complete(client: TestClient, task_id: str, token: str) -> Any:
    """POST a completion with `token`."""
    body = {"lock_token": token, "result": {"rows": 1}}
    return client.post(f"/api/tasks/{task_id}/complete", json=body, headers=ADMIN)


# --- a run-out lock's holder may still complete, also on its last attempt ---------------------


def test_last_attempt_holder_completes_the_dead_lettered_task(client: TestClient) -> None:
    """The sweep dead-letters a run-out lock on its last attempt; its holder's finished work still
    completes the task (200), once; the dead letter is never handed to another locker."""
    held = dead_letter_by_the_sweep(client)
    assert events(client, held["id"]) == ["created", "locked", "lock_expired", "failed"]

    done = complete(client, held["id"], held["lock_token"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["result"] == {"rows": 1}
    assert events(client, held["id"])[-1] == "completed"
    assert_error(complete(client, held["id"], held["lock_token"]), 409, "already_completed")
    assert lock(client) == []


def test_last_attempt_holder_completes_in_a_batch(client: TestClient) -> None:
    """The batch completion honours the same promise."""
    held = dead_letter_by_the_sweep(client)
    items = [{"id": held["id"], "lock_token": held["lock_token"], "result": None}]
    response = client.post("/api/tasks/complete", json={"items": items}, headers=ADMIN)
    assert response.json()["results"] == [{"id": held["id"], "ok": True, "error": None}]
    assert task(client, held["id"])["status"] == "completed"


def test_dead_letter_retried_by_an_operator_fences_the_old_holder(client: TestClient) -> None:
    """Once an operator retried the dead letter, the old token no longer completes it, and the
    409 says truthfully that nobody holds the task (not that another worker owns it)."""
    held = dead_letter_by_the_sweep(client)
    assert client.post(f"/api/tasks/{held['id']}/retry", headers=ADMIN).status_code == 200

    error = assert_error(complete(client, held["id"], held["lock_token"]), 409, "lock_lost")
    assert "nobody holds" in error["message"] and "another worker" not in error["message"]
    assert task(client, held["id"])["status"] == "pending"
    [again] = lock(client)
    assert again["id"] == held["id"] and again["attempts"] == 1


def test_dead_letter_holder_may_only_complete(client: TestClient) -> None:
    """Extend and fail with the dead letter's token are refused, saying that it may still complete."""
    held = dead_letter_by_the_sweep(client)
    for action, body in (("extend", {}), ("fail", {"error": "late"})):
        response = client.post(
            f"/api/tasks/{held['id']}/{action}",
            json={"lock_token": held["lock_token"], **body},
            headers=ADMIN,
        )
        error = assert_error(response, 409, "lock_lost")
        assert "may still complete" in error["message"]
    assert task(client, held["id"])["status"] == "failed"
    assert complete(client, held["id"], held["lock_token"]).status_code == 200


def test_lock_lost_names_who_holds_the_task_now(client: TestClient) -> None:
    """A stale token of a re-locked task: the 409 names the current holder."""
    created = create(client)
    [first] = lock(client)
    run_out(client, created["id"])
    [second] = lock(client)
    assert second["lock_token"] != first["lock_token"]

    error = assert_error(complete(client, created["id"], first["lock_token"]), 409, "lock_lost")
    assert f"'{second['locked_by']}' holds the task" in error["message"]
    assert error["status"] == "locked"


# --- the sweep runs on a timer, for every type ------------------------------------------------


def test_timer_sweeps_types_nobody_locks(make_settings: Callable[..., Settings]) -> None:
    """With nobody locking its type again, a run-out lock still gets its `lock_expired` event (and a
    last attempt its dead letter) from the sidecar's timer; closing the app stops the timer."""
    with app_client(make_settings(sweep_interval_seconds=0.2)) as client:
        expiring = create(client, "Unpolled")
        dying = create(client, "Unpolled.Too", max_attempts=1)
        [held] = lock(client, "Unpolled")
        lock(client, "Unpolled.Too")
        wait_for(
            "the timer swept a type nobody locks", lambda: "lock_expired" in events(client, expiring["id"])
        )
        assert task(client, expiring["id"])["status"] == "expired"
        wait_for("the timer dead-lettered", lambda: task(client, dying["id"])["status"] == "failed")
        assert events(client, dying["id"]) == ["created", "locked", "lock_expired", "failed"]
        assert events(client, expiring["id"]).count("lock_expired") == 1
        # The swept lock's holder may still complete.
        assert complete(client, held["id"], held["lock_token"]).status_code == 200
        assert any(t.name == SWEEPER_THREAD for t in threading.enumerate())
    assert not any(t.name == SWEEPER_THREAD for t in threading.enumerate())


def test_concurrent_sweeps_expire_each_lock_once(engine: Engine, settings: Settings) -> None:
    """Several sweeps at once (as several sidecars' timers do) share out the run-out locks: every
    lock gets exactly one `lock_expired` event, every dead letter one `failed` event."""
    store = TaskStore(engine, settings)
    try:
        ids = [store.create("t", "Swept", {"n": n}, max_attempts=1 + n % 2)[0].id for n in range(20)]
        assert len(store.lock("Swept", "w", limit=20, lease_seconds=1)) == 20
        wait_for("every lease ran out", lambda: all(store.get(i).status == "expired" for i in ids))

        start = threading.Barrier(4)
        swept: list[int] = []

        def sweep() -> None:
            start.wait()
            swept.append(store.sweep())

        threads = [threading.Thread(target=sweep) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(swept) == 20 and store.sweep() == 0
        with engine.connect() as conn:
            rows = conn.execute(select(TaskEvent.task_id, TaskEvent.event)).all()
        counts = Counter((r.task_id, r.event) for r in rows)
        assert all(counts[(i, "lock_expired")] == 1 for i in ids)
        assert sorted(counts[(i, "failed")] for i in ids) == [0] * 10 + [1] * 10
        assert Counter(store.get(i).status for i in ids) == {"expired": 10, "failed": 10}
    finally:
        store.close()


# --- an idempotency key replayed with other data is a conflict ---------------------------------


def test_idempotency_replay_with_other_data_is_409(client: TestClient) -> None:
    """The same key with different data: 409 idempotency_conflict naming the existing task."""
    first = create(client, data={"n": 1, "feed": ["a", "b"]}, idempotency_key="2026-11-28")
    body = {"task_type": TYPE, "data": {"n": 2, "feed": ["a", "b"]}, "idempotency_key": "2026-11-28"}
    error = assert_error(client.post("/api/tasks", json=body, headers=ADMIN), 409, "idempotency_conflict")
    assert first["id"] in error["message"] and error["task_id"] == first["id"]
    # JSON-equal means typed: true is not 1.
    body["data"] = {"n": True, "feed": ["a", "b"]}
    assert_error(client.post("/api/tasks", json=body, headers=ADMIN), 409, "idempotency_conflict")
    assert task(client, first["id"])["data"] == {"n": 1, "feed": ["a", "b"]}


def test_idempotency_replay_with_equal_data_is_200(client: TestClient) -> None:
    """JSON-equal data (keys in another order, 1.0 for 1) answers 200 with the existing task."""
    first = create(client, data={"n": 1, "feed": {"x": None, "y": "z"}}, idempotency_key="k")
    body = {"task_type": TYPE, "data": {"feed": {"y": "z", "x": None}, "n": 1.0}, "idempotency_key": "k"}
    again = client.post("/api/tasks", json=body, headers=ADMIN)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert uuid.UUID(again.headers["location"].rsplit("/", 1)[1]) == uuid.UUID(first["id"])
