"""Issue #13 on the queue's hot path, on SQLite and PostgreSQL, over HTTP: the type's lease and
backoff, error kinds (fail's `error_kind`, `timeout` for a lock that ran out), the timing in the
`completed` / `failed` events, and result callbacks recorded with the completion or dead letter
and delivered to a real local receiver. The PostgreSQL path is the one-statement SQL
(sql/*_postgresql.sql), SQLite's the sync store: the same answers are asserted on both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text, update

from backoffice.queue.async_store import hot_path_for
from backoffice.queue.models import CallbackDelivery, Task, TaskEvent
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings
from tests.api.test_callbacks import SECRET, callback_settings, cb, create, hook, wait_for_event
from tests.callback_receiver import CallbackReceiver, json_of, valid_signature
from tests.helpers import ADMIN, assert_error, auth

__all__ = ["callback_settings", "cb", "hook"]  # fixtures shared with test_callbacks.py

TYPE = "EshopExport"


def run_out(engine: Engine, task_id: str) -> None:
    """Make the task's 10-minute lease have run out a minute ago (instead of waiting for it)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task_id))
            .values(lock_date=now - timedelta(minutes=11), locked_until=now - timedelta(minutes=1))
        )


def lock(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/tasks/lock", json={"task_type": TYPE, **body}, headers=headers)
    assert response.status_code == 200, response.text
    (task,) = response.json()["items"]
    return dict(task)


def new_task(client: TestClient, **body: Any) -> str:
    response = client.post("/api/tasks", json={"task_type": TYPE, **body}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def events(client: TestClient, task_id: str, name: str) -> list[dict[str, Any]]:
    items = client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]
    return [e["details"] for e in items if e["event"] == name]


def seconds_between(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def define(client: TestClient, **fields: Any) -> None:
    response = client.put(f"/api/task-types/{TYPE}", json=fields, headers=ADMIN)
    assert response.status_code in (200, 201), response.text


def test_a_lock_without_lease_takes_the_types_lease(
    client: TestClient, worker: dict[str, str], settings: Settings
) -> None:
    new_task(client)
    undefined = lock(client, worker)
    assert seconds_between(undefined["locked_until"], undefined["lock_date"]) == settings.lock_timeout_seconds
    define(client, lease_seconds=1234)
    new_task(client)
    typed = lock(client, worker)
    assert seconds_between(typed["locked_until"], typed["lock_date"]) == 1234
    new_task(client)
    asked = lock(client, worker, lease_seconds=77)  # the caller's lease wins
    assert seconds_between(asked["locked_until"], asked["lock_date"]) == 77


def test_an_extend_without_lease_takes_the_types_lease(
    client: TestClient, worker: dict[str, str], settings: Settings
) -> None:
    def extend(task: dict[str, Any], **body: Any) -> float:
        body = {"lock_token": task["lock_token"], **body}
        response = client.post(f"/api/tasks/{task['id']}/extend", json=body, headers=worker)
        assert response.status_code == 200, response.text
        extended = response.json()
        return seconds_between(extended["locked_until"], extended["updated_at"])

    new_task(client)
    undefined = lock(client, worker)
    assert extend(undefined) == settings.lock_timeout_seconds
    define(client, lease_seconds=1234)
    new_task(client)
    typed = lock(client, worker, lease_seconds=60)
    assert extend(typed) == 1234
    assert extend(typed, lease_seconds=77) == 77  # the caller's lease wins


def test_fail_backs_off_from_the_types_base_and_records_the_kind(
    client: TestClient, worker: dict[str, str], settings: Settings
) -> None:
    task_id = new_task(client)
    held = lock(client, worker)
    response = client.post(
        f"/api/tasks/{task_id}/fail", json={"lock_token": held["lock_token"], "error": "boom"}, headers=worker
    )
    assert response.status_code == 200, response.text
    failed = response.json()
    assert (failed["status"], failed["last_error_kind"]) == ("pending", "execution")  # the default
    (details,) = events(client, task_id, "failed")
    assert details["error_kind"] == "execution" and details["dead"] is False
    backoff = seconds_between(details["retry_at"], failed["updated_at"])
    assert backoff == settings.retry_backoff_base_seconds

    define(client, retry_backoff_seconds=1000)
    other = new_task(client)
    held = lock(client, worker)
    assert held["id"] == other
    response = client.post(
        f"/api/tasks/{other}/fail",
        json={"lock_token": held["lock_token"], "error": "slow", "error_kind": "system"},
        headers=worker,
    )
    failed = response.json()
    assert (failed["status"], failed["last_error_kind"]) == ("pending", "system")
    (details,) = events(client, other, "failed")
    assert seconds_between(details["retry_at"], failed["updated_at"]) == 1000
    assert details["error_kind"] == "system"
    assert {"task_type", "held_seconds", "waited_seconds"} <= details.keys()


def test_fail_without_retry_is_a_dead_letter_of_its_kind(client: TestClient, worker: dict[str, str]) -> None:
    task_id = new_task(client)
    held = lock(client, worker)
    bad = client.post(
        f"/api/tasks/{task_id}/fail",
        json={"lock_token": held["lock_token"], "error": "x", "error_kind": "bogus"},
        headers=worker,
    )
    assert_error(bad, 422, "validation_error")
    response = client.post(
        f"/api/tasks/{task_id}/fail",
        json={
            "lock_token": held["lock_token"],
            "error": "bad feed",
            "retry": False,
            "error_kind": "validation",
        },
        headers=worker,
    )
    assert (response.json()["status"], response.json()["last_error_kind"]) == ("failed", "validation")
    (details,) = events(client, task_id, "failed")
    assert details["dead"] is True and details["error_kind"] == "validation" and "retry_at" not in details
    assert details["task_type"] == TYPE and details["held_seconds"] >= 0 and details["waited_seconds"] >= 0
    listed = client.get("/api/tasks", params={"error_kind": "validation"}, headers=ADMIN).json()["items"]
    assert [t["id"] for t in listed] == [task_id]
    again = client.post(
        f"/api/tasks/{task_id}/fail", json={"lock_token": held["lock_token"], "error": "x"}, headers=worker
    )
    assert_error(again, 409, "lock_lost")  # the refusal is explained as before
    assert_error(
        client.post(
            f"/api/tasks/{uuid.uuid4()}/fail",
            json={"lock_token": held["lock_token"], "error": "x"},
            headers=worker,
        ),
        404,
        "not_found",
    )


def test_fail_and_extend_refuse_another_types_task(
    client: TestClient, worker: dict[str, str], make_key: Any
) -> None:
    task_id = new_task(client)
    held = lock(client, worker)
    stranger = make_key("stranger", "consumer", ["OtherType"])
    body = {"lock_token": held["lock_token"], "error": "x"}
    assert_error(client.post(f"/api/tasks/{task_id}/fail", json=body, headers=stranger), 403, "forbidden")
    extend = {"lock_token": held["lock_token"], "lease_seconds": 90}
    assert_error(client.post(f"/api/tasks/{task_id}/extend", json=extend, headers=stranger), 403, "forbidden")
    extended = client.post(f"/api/tasks/{task_id}/extend", json=extend, headers=worker).json()
    assert extended["status"] == "locked" and extended["version"] == held["version"] + 1
    (details,) = events(client, task_id, "lock_extended")
    assert datetime.fromisoformat(details["locked_until"]) == datetime.fromisoformat(extended["locked_until"])
    wrong = {"lock_token": str(uuid.uuid4()), "lease_seconds": 90}
    assert_error(client.post(f"/api/tasks/{task_id}/extend", json=wrong, headers=worker), 409, "lock_lost")


def test_a_lock_that_runs_out_records_timeout(
    client: TestClient, engine: Engine, worker: dict[str, str]
) -> None:
    """Swept by a lock call: to expired (and re-locked) with attempts left, else a dead letter
    whose failed event says timeout, held until the lock ran out."""
    task_id = new_task(client, max_attempts=2)
    first = lock(client, worker)
    run_out(engine, task_id)
    second = lock(client, worker)
    assert second["id"] == task_id and second["last_error_kind"] == "timeout"
    run_out(engine, task_id)
    new_task(client, priority=9)  # the lock call below sweeps, and claims this one instead
    lock(client, worker)
    task = client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()
    assert (task["status"], task["last_error_kind"]) == ("failed", "timeout")
    (details,) = events(client, task_id, "failed")
    assert details["error_kind"] == "timeout" and details["dead"] is True and details["attempt"] == 2
    with engine.connect() as conn:
        lock_date, locked_until = conn.execute(
            select(Task.lock_date, Task.locked_until).where(Task.id == uuid.UUID(task_id))
        ).one()
    # held until the lock ran out, not until the sweep: the 10-minute lease
    assert details["held_seconds"] == pytest.approx((locked_until - lock_date).total_seconds(), abs=1e-6)
    assert details["held_seconds"] == pytest.approx(600, abs=1e-3)
    assert first["lock_token"] != second["lock_token"]


def test_the_timers_sweep_records_timeout(
    client: TestClient, engine: Engine, worker: dict[str, str], settings: Settings
) -> None:
    expiring, dying = new_task(client, max_attempts=2), new_task(client, max_attempts=1)
    lock(client, worker)
    lock(client, worker)
    for task_id in (expiring, dying):
        run_out(engine, task_id)
    store = TaskStore(engine, settings)
    try:
        assert store.sweep() == 2
    finally:
        store.close()
    got = {t: client.get(f"/api/tasks/{t}", headers=ADMIN).json() for t in (expiring, dying)}
    assert (got[expiring]["status"], got[expiring]["last_error_kind"]) == ("expired", "timeout")
    assert (got[dying]["status"], got[dying]["last_error_kind"]) == ("failed", "timeout")
    (details,) = events(client, dying, "failed")
    assert details["error_kind"] == "timeout" and details["dead"] is True and "held_seconds" in details


def test_completions_carry_timing_for_metrics(client: TestClient, worker: dict[str, str]) -> None:
    single, batched = new_task(client), new_task(client)
    one = lock(client, worker)
    done = client.post(
        f"/api/tasks/{one['id']}/complete",
        json={"lock_token": one["lock_token"], "result": 1},
        headers=worker,
    )
    assert done.status_code == 200, done.text
    two = lock(client, worker)
    batch = client.post(
        "/api/tasks/complete",
        json={"items": [{"id": two["id"], "lock_token": two["lock_token"], "result": 2}]},
        headers=worker,
    )
    assert batch.json()["results"] == [{"id": two["id"], "ok": True, "error": None}]
    for task_id, held in ((single, one), (batched, two)):
        (details,) = events(client, task_id, "completed")
        assert details["task_type"] == TYPE
        assert 0 <= details["held_seconds"] < 60 and 0 <= details["waited_seconds"] < 60
        task = client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()
        expected = seconds_between(task["completed_date"], held["lock_date"])
        assert details["held_seconds"] == pytest.approx(expected, abs=1e-6)
    metrics = client.get("/metrics").text
    assert f'backoffice_task_held_seconds_count{{task_type="{TYPE}"}} 2.0' in metrics
    assert f'backoffice_task_waited_seconds_count{{task_type="{TYPE}"}} 2.0' in metrics


# --- result callbacks, end to end --------------------------------------------------------------


@pytest.fixture
def cb_worker(cb: TestClient) -> dict[str, str]:
    response = cb.post(
        "/api/keys", json={"name": "worker-1", "role": "consumer", "task_types": [TYPE]}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return auth(response.json()["key"])


def outbox(engine: Engine, task_id: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(CallbackDelivery.event, CallbackDelivery.status).where(
                CallbackDelivery.task_id == uuid.UUID(task_id)
            )
        ).all()
    return [(r.event, r.status) for r in rows]


def test_a_completion_over_http_is_called_back_once(
    cb: TestClient, cb_worker: dict[str, str], engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    receiver, base = hook
    task = create(cb, f"{base}/hook")
    held = lock(cb, cb_worker)
    done = cb.post(
        f"/api/tasks/{task['id']}/complete",
        json={"lock_token": held["lock_token"], "result": {"rows": 3}},
        headers=cb_worker,
    )
    assert done.status_code == 200, done.text
    (got,) = receiver.wait_for(1)
    assert valid_signature(SECRET, got) and got.headers["x-backoffice-event"] == "task.completed"
    body = json_of(got)
    assert body["event"] == "task.completed" and body["task"]["result"] == {"rows": 3}
    wait_for_event(cb, task["id"], "callback_delivered")
    # Delivered, once: one outbox row, settled, and the receiver got one request.
    assert outbox(engine, task["id"]) == [("task.completed", "delivered")]
    assert len(receiver.received) == 1


def test_a_batch_completion_and_a_dead_letter_are_called_back(
    cb: TestClient, cb_worker: dict[str, str], engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    receiver, base = hook
    completed, failed = create(cb, f"{base}/hook"), create(cb, f"{base}/hook")
    first, second = lock(cb, cb_worker), lock(cb, cb_worker)
    item = {"id": first["id"], "lock_token": first["lock_token"], "result": None}
    assert cb.post("/api/tasks/complete", json={"items": [item]}, headers=cb_worker).json()["results"][0][
        "ok"
    ]
    given = cb.post(
        f"/api/tasks/{second['id']}/fail",
        json={"lock_token": second["lock_token"], "error": "no", "retry": False},
        headers=cb_worker,
    )
    assert given.json()["status"] == "failed"
    got = receiver.wait_for(2)
    assert all(valid_signature(SECRET, g) for g in got)
    by_task = {json_of(g)["task"]["id"]: json_of(g)["event"] for g in got}
    assert by_task == {completed["id"]: "task.completed", failed["id"]: "task.failed"}
    wait_for_event(cb, failed["id"], "callback_delivered")
    wait_for_event(cb, completed["id"], "callback_delivered")
    assert outbox(engine, failed["id"]) == [("task.failed", "delivered")]


def test_only_a_dead_letter_is_called_back(
    cb: TestClient, cb_worker: dict[str, str], engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    """A failed attempt with a retry left records nothing; the lock running out on the last
    attempt (swept by a lock call) records task.failed."""
    _, base = hook
    task = create(cb, f"{base}/hook")
    held = lock(cb, cb_worker)
    cb.post(
        f"/api/tasks/{task['id']}/fail",
        json={"lock_token": held["lock_token"], "error": "again"},
        headers=cb_worker,
    )
    assert outbox(engine, task["id"]) == []
    with engine.begin() as conn:  # make it lockable now, on its last attempt
        conn.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task["id"]))
            .values(available_at=datetime.now(UTC), max_attempts=2)
        )
    lock(cb, cb_worker)
    run_out(engine, task["id"])
    assert cb.post("/api/tasks/lock", json={"task_type": TYPE}, headers=cb_worker).json()["items"] == []
    assert [e for e, _ in outbox(engine, task["id"])] == ["task.failed"]


# --- atomicity -------------------------------------------------------------------------------


@contextmanager
def refusing_outbox(engine: Engine, dialect: str) -> Iterator[None]:
    """A trigger that makes every insert into the outbox fail (as a full disk or a constraint would)."""
    with engine.begin() as conn:
        if dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON callback_deliveries "
                    "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON callback_deliveries "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as conn:
            if dialect == "sqlite":
                conn.execute(text("DROP TRIGGER refuse_outbox"))
            else:
                conn.execute(text("DROP TRIGGER refuse_outbox ON callback_deliveries"))
                conn.execute(text("DROP FUNCTION refuse_outbox()"))


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_completion_and_its_outbox_row_commit_together(
    cb: TestClient,
    cb_worker: dict[str, str],
    engine: Engine,
    dialect: str,
    callback_settings: Settings,
    hook: tuple[CallbackReceiver, str],
    batch: bool,
) -> None:
    """When the outbox row cannot be written the completion does not happen either; once it can,
    both happen (the hot path called directly, so the database's error is seen as it is)."""
    _, base = hook
    task = create(cb, f"{base}/hook")
    held = lock(cb, cb_worker)
    task_id, token = uuid.UUID(task["id"]), uuid.UUID(held["lock_token"])
    store = TaskStore(engine, callback_settings)

    async def complete() -> None:
        hot = hot_path_for(store)  # a pool opens once: one per run
        await hot.open()
        try:
            if batch:
                [outcome] = await hot.complete_many([(task_id, token, {"n": 1})], "worker-1", None)
                assert outcome.ok
            else:
                await hot.complete(task_id, token, {"n": 1}, "worker-1", frozenset([TYPE]))
        finally:
            await hot.close()

    def state() -> tuple[str, int, list[tuple[str, str]]]:
        with engine.connect() as conn:
            status = conn.execute(select(Task.status).where(Task.id == task_id)).scalar_one()
            completed = conn.execute(
                select(func.count()).where(TaskEvent.task_id == task_id, TaskEvent.event == "completed")
            ).scalar_one()
        return status, completed, [(e, "") for e, _ in outbox(engine, task["id"])]

    try:
        with refusing_outbox(engine, dialect), pytest.raises(Exception, match="outbox refused"):
            anyio.run(complete)
        assert state() == ("locked", 0, [])
        anyio.run(complete)
        assert state() == ("completed", 1, [("task.completed", "")])
    finally:
        store.close()
